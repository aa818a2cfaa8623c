// Fuzzes the candump text parser (parse_candump_line) against its formatter.
//
// Input: the whole input is one line.
//
// Invariants: no crash or over-read (ASan); an error names a position inside the line and
// leaves the frame empty; a parsed frame passes check_frame, its interface is a view into
// the line, its direction is 0, 'R' or 'T'; a trailing newline changes nothing; the frame
// written back with format_candump_line (and format_candump_frame) parses to the same frame
// (the len8_dlc suffix is dropped on input, and Frame has no field for it, so the frame
// still compares equal).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <tcpcan/candump_text.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

bool same_result(const CandumpParseResult& a, const CandumpParseResult& b) {
    return a.kind == b.kind && a.frame == b.frame && a.error == b.error && a.position == b.position &&
           a.interface == b.interface /* the text, not the pointer */ && a.direction == b.direction;
}

bool printable_name(std::string_view name) {
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= ' ' || u == 0x7F) {
            return false;
        }
    }
    return !name.empty();
}

void check_round_trip(const CandumpParseResult& r) {
    // The parsed interface when the formatter takes it, else a stand-in.
    const std::string_view iface = printable_name(r.interface) ? r.interface : std::string_view("can0");
    std::string line(max_candump_line + iface.size(), '\0');
    const std::size_t n = format_candump_line(r.frame, iface, std::span<char>(line.data(), line.size()));
    FUZZ_CHECK(n > 0);
    if (iface.size() <= max_candump_interface) {
        FUZZ_CHECK(n <= max_candump_line);
    }
    const CandumpParseResult back = parse_candump_line(std::string_view(line.data(), n));
    FUZZ_CHECK(back.kind == CandumpLineKind::frame);
    FUZZ_CHECK(back.frame == r.frame);
    FUZZ_CHECK(back.interface == iface);
    FUZZ_CHECK(back.direction == 0);

    char short_form[max_candump_frame];
    const std::size_t m = format_candump_frame(r.frame, short_form);
    FUZZ_CHECK(m > 0 && m <= max_candump_frame);
    const CandumpParseResult bare = parse_candump_line(std::string_view(short_form, m));
    Frame expected = r.frame;
    expected.timestamp_us = 0;  // the short form has no timestamp
    FUZZ_CHECK(bare.kind == CandumpLineKind::frame && bare.frame == expected && bare.interface.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    const CandumpParseResult r = parse_candump_line(line);
    switch (r.kind) {
    case CandumpLineKind::error:
        FUZZ_CHECK(r.error != CandumpParseError::none);
        FUZZ_CHECK(r.position <= line.size());
        FUZZ_CHECK(r.frame == Frame{});
        break;
    case CandumpLineKind::skip: FUZZ_CHECK(r.error == CandumpParseError::none); break;
    case CandumpLineKind::frame:
        FUZZ_CHECK(r.error == CandumpParseError::none);
        FUZZ_CHECK(check_frame(r.frame) == FrameProblem::none);
        FUZZ_CHECK(r.interface.empty() ||
                   (r.interface.data() >= line.data() && r.interface.data() + r.interface.size() <= line.data() + size));
        FUZZ_CHECK(r.direction == 0 || r.direction == 'R' || r.direction == 'T');
        check_round_trip(r);
        break;
    default: FUZZ_CHECK(false && "kind out of range");
    }

    // A line read with its newline parses the same (positions count from the line start).
    std::string with_newline(line);
    with_newline += '\n';
    const CandumpParseResult again = parse_candump_line(with_newline);
    FUZZ_CHECK(same_result(r, again));
    return 0;
}
