// The program that links every header-alone translation unit (see header_alone.cpp.in).
// Linking is the check: a non-inline function or variable defined in a header is then
// defined in several objects and the link fails.
int main() { return 0; }
