#!/usr/bin/env python3
"""Fails if the core headers use the heap, exceptions, RTTI, I/O or a hosted header.

    check_banned.py INCLUDE_DIR        check every .hpp/.h under INCLUDE_DIR
    check_banned.py --self-test [INCLUDE_DIR]
                                       plant each construct in a temporary header and
                                       check that it is caught (and prose is not); with
                                       INCLUDE_DIR, also plant a throw in a copy of it

Comments, string literals and character literals are blanked before matching (line
numbers are kept), so documentation and messages may mention `new` or `throw`.
Each finding is printed as `file:line: construct: source line`.
"""

import os
import re
import shutil
import sys
import tempfile

# Standard headers the core may include: freestanding in C++20, or checked to compile and
# need nothing from a hosted library with arm-none-eabi-g++ -ffreestanding (see
# /work/shared/notes/cortex-m-in-qemu.md). A new one must be checked the same way first.
ALLOWED_HEADERS = {
    "array", "atomic", "bit", "cfloat", "climits", "compare", "concepts", "cstddef", "cstdint",
    "cstring", "initializer_list", "iterator", "limits", "optional", "ranges", "span", "string_view",
    "tuple", "type_traits", "utility", "variant", "version", "algorithm", "numeric", "ratio",
    "source_location",
}

# Named explicitly so the message says why.
DENIED_HEADERS = {
    "vector": "heap container", "string": "heap string (use std::string_view)", "memory": "heap / smart pointers",
    "memory_resource": "heap", "functional": "std::function allocates", "map": "heap container",
    "set": "heap container", "unordered_map": "heap container", "unordered_set": "heap container",
    "list": "heap container", "forward_list": "heap container", "deque": "heap container",
    "queue": "heap container", "stack": "heap container", "any": "may allocate", "regex": "heap",
    "new": "heap (operator new)", "stdexcept": "exceptions", "exception": "exceptions",
    "system_error": "exceptions", "typeinfo": "RTTI", "typeindex": "RTTI",
    "iostream": "I/O", "istream": "I/O", "ostream": "I/O", "sstream": "I/O and heap", "fstream": "I/O",
    "iomanip": "I/O", "ios": "I/O", "streambuf": "I/O", "cstdio": "I/O", "stdio.h": "I/O",
    "format": "heap and locale", "print": "I/O", "locale": "hosted", "chrono": "hosted clock (pass `now`)",
    "thread": "hosted threads", "mutex": "hosted threads", "condition_variable": "hosted threads",
    "future": "hosted threads", "filesystem": "I/O", "cstdlib": "heap (malloc) and exit",
    "stdlib.h": "heap (malloc) and exit", "malloc.h": "heap", "csignal": "hosted", "ctime": "hosted clock",
}

PATTERNS = [
    (r"\bnew\b", "new (heap or placement new)"),
    (r"\boperator\s+delete\b", "operator delete"),
    (r"\bdelete\b", "delete expression"),  # `= delete` is filtered out below
    (r"\b(malloc|calloc|realloc|aligned_alloc|alloca|free)\s*\(", "C heap allocation"),
    (r"\bstd\s*::\s*(vector|basic_string|string|wstring|u8string|u16string|u32string|function|"
     r"unique_ptr|shared_ptr|weak_ptr|allocator|pmr|map|multimap|set|multiset|unordered_map|"
     r"unordered_set|list|forward_list|deque|any|stringstream|ostringstream)\b", "heap-using std type"),
    (r"\b(make_unique|make_shared|allocate_shared)\b", "heap smart pointer"),
    (r"\bthrow\b", "throw"),
    (r"\btry\b", "try"),
    (r"\bcatch\b", "catch"),
    (r"\bdynamic_cast\b", "dynamic_cast (RTTI)"),
    (r"\btypeid\b", "typeid (RTTI)"),
    (r"\bstd\s*::\s*(cout|cerr|clog|cin|printf|puts|fopen|FILE)\b", "I/O"),
    (r"\b(printf|fprintf|sprintf|snprintf|puts|fputs|fopen|fwrite|fread)\s*\(", "I/O"),
]

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.MULTILINE)


RAW_PREFIXES = {"R", "u8R", "uR", "UR", "LR"}


def string_prefix(text, i, extra="_"):
    """The run of identifier characters (plus `extra`) just before offset i."""
    k = i
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] in extra):
        k -= 1
    return text[k:i]


def blank(text):
    """Returns `text` with comments and string/char literal contents replaced by spaces.

    Newlines are kept, so offsets map to the same line numbers. Handles // and /* */
    comments, "..." and '...' with escapes, raw strings R"d(...)d" and digit separators
    (5'000'000), which are not character literals.
    """
    out = list(text)
    i, n = 0, len(text)

    def wipe(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            wipe(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            wipe(i, j)
            i = j
        elif c == '"' and string_prefix(text, i) in RAW_PREFIXES:
            m = re.match(r'"([^()\\ \t\n]{0,16})\(', text[i:])
            if not m:
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            end = n if end < 0 else end + len(m.group(1)) + 2
            wipe(i + 1, end - 1)
            i = end
        elif c in "\"'":
            if c == "'":
                # A digit separator: the quote sits inside a number (the run before it starts with a digit).
                run = string_prefix(text, i, "_.'")
                if run and run[0].isdigit():
                    i += 1
                    continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            wipe(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return "".join(out)


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def check_file(path, include_root, display):
    with open(path, encoding="utf-8") as f:
        original = f.read()
    code = blank(original)
    lines = original.splitlines()
    findings = []

    def report(offset, what):
        ln = line_of(code, offset)
        findings.append(f"{display}:{ln}: {what}: {lines[ln - 1].strip() if ln <= len(lines) else ''}")

    for pattern, what in PATTERNS:
        for m in re.finditer(pattern, code):
            if what == "delete expression":
                before = code[: m.start()].rstrip()
                if before.endswith("=") or re.search(r"\boperator\s*$", before):
                    continue  # `= delete` (a deleted function) / already reported as operator delete
            report(m.start(), what)

    # #include lines are matched in the original text: blanking empties "..." includes.
    for m in INCLUDE.finditer(original):
        if code[m.start():m.end()].strip() == "":
            continue  # inside a comment
        kind, name = m.group(1), m.group(2).strip()
        base = os.path.basename(name)
        if kind == '"' or name.startswith("tcpcan"):
            here = os.path.join(os.path.dirname(path), name) if kind == '"' else None
            there = os.path.join(include_root, name)
            if not ((here and os.path.isfile(here)) or os.path.isfile(there)):
                report(m.start(), f"#include of {name}, which is not a header of this project")
            continue
        if base in DENIED_HEADERS:
            report(m.start(), f"#include <{name}> ({DENIED_HEADERS[base]})")
        elif name not in ALLOWED_HEADERS:
            report(m.start(), f"#include <{name}> is not on the freestanding allow-list in check_banned.py")
    return findings


def check_tree(root):
    findings = []
    count = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            if name.endswith((".hpp", ".h", ".hh", ".ipp", ".tpp", ".inl")):
                path = os.path.join(dirpath, name)
                count += 1
                findings += check_file(path, root, os.path.relpath(path, os.path.dirname(os.path.abspath(root))))
    return findings, count


# (snippet, expected construct or None when it must pass)
SELF_TEST = [
    ("void f() { throw 1; }", "throw"),
    ("void f() { try { g(); } catch (...) {} }", "try"),
    ("int* p = new int(3);", "new"),
    ("void* operator new(unsigned long);", "new"),
    ("void f(int* p) { delete p; }", "delete expression"),
    ("void f(int* p) { delete[] p; }", "delete expression"),
    ("void f() { void* p = malloc(4); free(p); }", "C heap allocation"),
    ("void* q = calloc (1, 2);", "C heap allocation"),
    ("std::vector<int> v;", "heap-using std type"),
    ("std::string s;", "heap-using std type"),
    ("std::function<void()> f;", "heap-using std type"),
    ("auto p = std::make_unique<int>();", "heap smart pointer"),
    ("auto* d = dynamic_cast<D*>(b);", "dynamic_cast"),
    ("auto& t = typeid(x);", "typeid"),
    ("#include <vector>", "#include <vector>"),
    ("#include <memory>", "#include <memory>"),
    ("#include <iostream>", "#include <iostream>"),
    ("#include <stdexcept>", "#include <stdexcept>"),
    ("#include <functional>", "#include <functional>"),
    ("#include <map>", "#include <map>"),
    ("#include <random>", "not on the freestanding allow-list"),
    ('#include "missing.hpp"', "not a header of this project"),
    ('void f() { printf("x"); }', "I/O"),
    # Prose, literals and look-alikes must pass.
    ("// throw new std::vector<int>; try catch malloc(1) typeid dynamic_cast\nint x;", None),
    ("/* a multi-line comment:\n   throw, new, delete p; free(p) */ int y;", None),
    ('const char* s = "no throw, no new, std::string, free(x)";', None),
    ("const char c = '\"'; const char* s = \"throw\";", None),
    ("constexpr unsigned long t = 5'000'000; int renew = 1, newer = 2, trying = 3;", None),
    ("struct A { A(const A&) = delete; A& operator=(const A&) =\n delete; };", None),
    ("std::string_view v; std::u8string_view w;", None),
    ("#include <string_view>\n#include <span>\n#include <array>", None),
    ("const char* r = R\"x(throw new \"quoted\" )x\"; int z;", None),
    ("// #include <vector>\nint w;", None),
]


def self_test(real_include=None):
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "include")
        os.makedirs(os.path.join(root, "tcpcan"))
        for i, (snippet, expected) in enumerate(SELF_TEST):
            path = os.path.join(root, "tcpcan", "planted.hpp")
            with open(path, "w", encoding="utf-8") as f:
                f.write("#pragma once\n" + snippet + "\n")
            findings, _ = check_tree(root)
            hit = any(expected in x for x in findings) if expected else not findings
            status = "ok " if hit else "BAD"
            failures += 0 if hit else 1
            shown = snippet.replace("\n", "\\n")
            print(f"{status} {'caught ' + repr(expected) if expected else 'passes'}: {shown}")
            for x in findings:
                print(f"      {x}")
    if real_include:
        failures += plant_in_copy(real_include)
    return failures


def plant_in_copy(real_include):
    """Copies the real include tree, plants a throw in one header and expects exactly it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "include")
        shutil.copytree(real_include, root)
        before, _ = check_tree(root)
        target = os.path.join(root, "tcpcan", "frame.hpp")
        with open(target, encoding="utf-8") as f:
            lines = f.read().splitlines()
        with open(target, "a", encoding="utf-8") as f:
            f.write("inline void planted_by_self_test() { throw 42; }  // not a comment-only mention\n")
        planted_line = len(lines) + 1
        after, _ = check_tree(root)
        new = [x for x in after if x not in before]
        want = f"tcpcan/frame.hpp:{planted_line}: throw:"
        ok = len(new) == 1 and want in new[0]
        print(f"{'ok ' if ok else 'BAD'} throw planted in a copy of {real_include} at line {planted_line} is reported:")
        for x in new:
            print(f"      {x}")
        return 0 if ok else 1


def main(argv):
    if len(argv) in (2, 3) and argv[1] == "--self-test":
        failures = self_test(argv[2] if len(argv) == 3 else None)
        print("PASS" if failures == 0 else f"FAIL: {failures} self-test case(s) wrong")
        return 1 if failures else 0
    if len(argv) != 2:
        print(__doc__)
        return 2
    findings, count = check_tree(argv[1])
    for x in findings:
        print(x)
    if count == 0:
        print(f"FAIL: no headers found under {argv[1]}")
        return 1
    print(f"{count} headers checked: {'FAIL, ' + str(len(findings)) + ' banned construct(s)' if findings else 'PASS'}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
