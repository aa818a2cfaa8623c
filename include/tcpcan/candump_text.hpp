// candump's text forms of a CAN frame, read and written without I/O or allocation.
//
// Output is candump's log format (`candump -l` files, `candump -L` on stdout):
//
//     (1700000000.123456) can0 123#11223344
//
// Input accepts that log line and the short forms that cansend takes. The frame syntax is
// can-utils' lib.c (parse_canframe / sprint_canframe):
//
//     123#11223344           classic, 3 hex digits = 11-bit id, 0..8 data bytes
//     1ABCDE0F#11.22.33      classic, 8 hex digits = 29-bit id; '.' may sit between bytes
//     123#                   classic, no data
//     123#R  123#R5          remote request, optionally with the requested length 0..8
//     123##5AABB             CAN FD: one flags digit, then 0..64 data bytes
//     20000080#0000000000000000
//                            error frame: 8 digits with CAN_ERR_FLAG (0x20000000) set
//
// Choices where lib.c is lenient or silent (lib.c ignores what it cannot use; we say why a
// line is refused and where, so a typo does not become a different frame on the bus):
// - Identifiers are exactly 3 or 8 hex digits. 3 digits above 0x7FF and 8 digits with
//   0x40000000 or 0x80000000 set are refused. 8 digits with 0x20000000 set are an error
//   frame (id = the class bits, 0x1FFFFFFF mask); it must have exactly 8 data bytes and
//   cannot be remote or FD (the kernel always sends 8 bytes, CAN_ERR_DLC).
// - Hex digits may be upper or lower case; 'R' or 'r' marks a remote frame.
// - '.' may stand before any data byte (lib.c's sprint_canframe with a separator writes one
//   right after the FD flags digit), but not twice in a row and not at the end.
// - A classic frame with more than 8 bytes, or an FD frame with more than 64, is refused
//   (lib.c silently drops the excess). An FD frame whose byte count is not a valid FD
//   length (0-8, 12, 16, 20, 24, 32, 48, 64) is refused, not padded.
// - FD flags digit: bit 0x1 BRS, 0x2 ESI, 0x4 FDF (CANFD_FDF, "this is FD"; implied by
//   '##' and ignored). 8-F are refused: 0x8 has no meaning.
// - The len8_dlc suffix `_9`..`_F` after exactly 8 classic bytes (`123#1122334455667788_E`,
//   `123#R8_E`) is accepted and dropped: Frame has no raw DLC field. So it does not survive
//   a round trip; anything else after '_' is refused.
// - Log line: `(SECONDS.MICROS) IFACE FRAME`. SECONDS is decimal; MICROS has 1 to 6 digits
//   and is scaled (`.5` = 500000 us). IFACE is any run of non-blank characters; candump
//   right-aligns names, so any amount of blank space may separate the fields. After the
//   frame one token `R` or `T` may follow (candump -x marks the direction that way); it is
//   returned in `direction`. Any other trailing text is refused.
// - Leading and trailing blanks (space, tab, CR, LF, VT, FF) are ignored. A line that is
//   empty after that, or whose first non-blank character is '#', is a `skip` result.
//
// Output follows current candump byte for byte: seconds zero-padded to 10 digits (`%010`),
// 6 micro digits, one space either side of the interface, ids as `%03X` / `%08X`, data as
// `%02X` without separators, RTR as `R` plus the length digit when it is not 0, and FD flags
// with FDF (0x4) set, as candump writes them since the kernel marks FD frames with CANFD_FDF
// (so a plain FD frame is `##4`, with BRS `##5`). No direction token and no newline.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "frame.hpp"

namespace tcpcan {

enum class CandumpLineKind : std::uint8_t {
    frame,  // `frame` holds the parsed frame
    skip,   // blank line or '#' comment
    error,  // `error` and `position` say what is wrong
};

enum class CandumpParseError : std::uint8_t {
    none,
    timestamp_not_closed,
    bad_timestamp,
    timestamp_fraction_too_long,
    timestamp_too_large,
    missing_interface,
    missing_frame,
    missing_id_delimiter,
    bad_id_digit,
    bad_id_length,
    standard_id_too_large,
    extended_id_too_large,
    bad_data_digit,
    odd_data_digits,
    misplaced_separator,
    classic_too_long,
    fd_too_long,
    bad_fd_length,
    bad_fd_flags,
    bad_remote_length,
    bad_len8_dlc,
    bad_error_frame,
    trailing_text,
};

[[nodiscard]] constexpr const char* describe(CandumpParseError error) {
    switch (error) {
    case CandumpParseError::none: return "no error";
    case CandumpParseError::timestamp_not_closed: return "timestamp not closed with ')'";
    case CandumpParseError::bad_timestamp: return "timestamp must be (SECONDS.MICROS) in decimal digits";
    case CandumpParseError::timestamp_fraction_too_long: return "timestamp has more than 6 fractional digits";
    case CandumpParseError::timestamp_too_large: return "timestamp does not fit in 64-bit microseconds";
    case CandumpParseError::missing_interface: return "interface name missing after the timestamp";
    case CandumpParseError::missing_frame: return "frame missing after the interface name";
    case CandumpParseError::missing_id_delimiter: return "no '#' after the identifier";
    case CandumpParseError::bad_id_digit: return "identifier contains a character that is not a hex digit";
    case CandumpParseError::bad_id_length:
        return "identifier must have 3 hex digits (standard) or 8 hex digits (extended or error frame)";
    case CandumpParseError::standard_id_too_large: return "3-digit (standard) identifier above 0x7FF";
    case CandumpParseError::extended_id_too_large:
        return "8-digit identifier has bit 0x40000000 or 0x80000000 set; extended identifiers end at "
               "0x1FFFFFFF and 0x20000000 marks an error frame";
    case CandumpParseError::bad_data_digit: return "data contains a character that is not a hex digit";
    case CandumpParseError::odd_data_digits: return "odd number of hex digits in data (a byte needs two)";
    case CandumpParseError::misplaced_separator: return "'.' must stand between data bytes";
    case CandumpParseError::classic_too_long: return "classic frame has more than 8 data bytes";
    case CandumpParseError::fd_too_long: return "CAN FD frame has more than 64 data bytes";
    case CandumpParseError::bad_fd_length:
        return "CAN FD data length is not one of 0-8, 12, 16, 20, 24, 32, 48, 64 bytes";
    case CandumpParseError::bad_fd_flags: return "bad CAN FD flags digit after '##' (use 0-7: 1 = BRS, 2 = ESI, 4 = FDF)";
    case CandumpParseError::bad_remote_length: return "remote frame length after 'R' must be one digit 0-8";
    case CandumpParseError::bad_len8_dlc:
        return "'_' DLC suffix needs exactly 8 classic data bytes and one hex digit 9-F";
    case CandumpParseError::bad_error_frame: return "error frame must have exactly 8 data bytes and no 'R' or '##'";
    case CandumpParseError::trailing_text:
        return "unexpected text after the frame (only a direction token R or T may follow)";
    }
    return "unknown error";
}

struct CandumpParseResult {
    CandumpLineKind kind = CandumpLineKind::skip;
    Frame frame{};  // meaningful when kind == frame; timestamp_us is 0 for a bare short form
    CandumpParseError error = CandumpParseError::none;
    std::size_t position = 0;      // 0-based column in the line given (before trimming) of the problem
    std::string_view interface{};  // IFACE of a log line (a view into the line); empty for a short form
    char direction = 0;            // 'R' or 'T' when candump -x's direction token followed; else 0
};

// Longest `ID#DATA` text: 8-digit id, "##", flags digit, 64 bytes of hex.
inline constexpr std::size_t max_candump_frame = 8 + 2 + 1 + 2 * max_fd_length;
// Longest interface name Linux allows (IFNAMSIZ 16 less the NUL).
inline constexpr std::size_t max_candump_interface = 15;
// "(" + up to 14 second digits (2^64 us) + "." + 6 + ")" + " " + iface + " " + frame.
inline constexpr std::size_t max_candump_line = 1 + 14 + 1 + 6 + 1 + 1 + max_candump_interface + 1 + max_candump_frame;

namespace detail::candump {

inline constexpr std::uint32_t err_flag = 0x2000'0000;  // Linux CAN_ERR_FLAG
inline constexpr std::uint8_t fd_flag_brs = 0x1;         // CANFD_BRS
inline constexpr std::uint8_t fd_flag_esi = 0x2;         // CANFD_ESI
inline constexpr std::uint8_t fd_flag_fdf = 0x4;         // CANFD_FDF
inline constexpr std::uint8_t no_nibble = 0xFF;

[[nodiscard]] constexpr bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

[[nodiscard]] constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

[[nodiscard]] constexpr std::uint8_t nibble(char c) {
    if (c >= '0' && c <= '9') {
        return static_cast<std::uint8_t>(c - '0');
    }
    if (c >= 'A' && c <= 'F') {
        return static_cast<std::uint8_t>(c - 'A' + 10);
    }
    if (c >= 'a' && c <= 'f') {
        return static_cast<std::uint8_t>(c - 'a' + 10);
    }
    return no_nibble;
}

[[nodiscard]] constexpr char hex_upper(unsigned value) {
    return "0123456789ABCDEF"[value & 0xF];
}

// s[begin, end) with begin <= end <= s.size(). Unlike substr it has no throwing path, which
// would pull std::__throw_out_of_range_fmt into a freestanding build.
[[nodiscard]] constexpr std::string_view slice(std::string_view s, std::size_t begin, std::size_t end) {
    return std::string_view(s.data() + begin, end - begin);
}

// Index of the first character at or after `pos` that is (want_blank) / is not (!want_blank) blank.
[[nodiscard]] constexpr std::size_t skip_while(std::string_view s, std::size_t pos, bool want_blank) {
    while (pos < s.size() && is_blank(s[pos]) == want_blank) {
        ++pos;
    }
    return pos;
}

struct Failure {
    CandumpParseError error = CandumpParseError::none;
    std::size_t position = 0;
};

// Parses one `ID#DATA` token that starts at column `base` of the line.
[[nodiscard]] constexpr Failure parse_frame_token(std::string_view t, std::size_t base, Frame& frame) {
    // Identifier: a run of hex digits that ends at '#'.
    std::size_t n = 0;
    std::uint32_t id = 0;
    while (n < t.size() && nibble(t[n]) != no_nibble) {
        if (n < 8) {
            id = (id << 4) | nibble(t[n]);
        }
        ++n;
    }
    if (n == t.size()) {
        return {CandumpParseError::missing_id_delimiter, base + n};
    }
    if (t[n] != '#') {
        return {CandumpParseError::bad_id_digit, base + n};
    }
    if (n != 3 && n != 8) {
        return {CandumpParseError::bad_id_length, base};
    }
    bool error_frame = false;
    if (n == 3) {
        if (id > max_standard_id) {
            return {CandumpParseError::standard_id_too_large, base};
        }
        frame.id = id;
    } else if ((id & ~(max_extended_id | err_flag)) != 0) {
        return {CandumpParseError::extended_id_too_large, base};
    } else if ((id & err_flag) != 0) {
        error_frame = true;
        frame.id = id & max_error_class;
        frame.flags = frame_flag::error;
    } else {
        frame.id = id;
        frame.flags = frame_flag::extended;
    }

    std::size_t i = n + 1;
    if (i < t.size() && (t[i] == 'R' || t[i] == 'r')) {
        if (error_frame) {
            return {CandumpParseError::bad_error_frame, base + i};
        }
        frame.flags |= frame_flag::remote;
        ++i;
        if (i < t.size()) {
            if (t[i] < '0' || t[i] > '8') {
                return {CandumpParseError::bad_remote_length, base + i};
            }
            frame.len = static_cast<std::uint8_t>(t[i] - '0');
            ++i;
        }
        if (i < t.size() && t[i] == '_') {
            const bool ok = frame.len == max_classic_length && i + 2 == t.size() && nibble(t[i + 1]) != no_nibble &&
                            nibble(t[i + 1]) > max_classic_length;
            if (!ok) {
                return {CandumpParseError::bad_len8_dlc, base + i};
            }
            i = t.size();
        }
        if (i < t.size()) {
            return {CandumpParseError::bad_remote_length, base + i};
        }
        return {};
    }

    bool fd = false;
    if (i < t.size() && t[i] == '#') {
        if (error_frame) {
            return {CandumpParseError::bad_error_frame, base + i};
        }
        ++i;
        const std::uint8_t fd_flags = i < t.size() ? nibble(t[i]) : no_nibble;
        if (fd_flags > (fd_flag_brs | fd_flag_esi | fd_flag_fdf)) {
            return {CandumpParseError::bad_fd_flags, base + i};
        }
        fd = true;
        frame.flags |= frame_flag::fd;
        if ((fd_flags & fd_flag_brs) != 0) {
            frame.flags |= frame_flag::brs;
        }
        if ((fd_flags & fd_flag_esi) != 0) {
            frame.flags |= frame_flag::esi;
        }
        ++i;
    }

    const std::size_t data_start = i;
    const std::size_t max_len = fd ? max_fd_length : max_classic_length;
    std::size_t count = 0;
    while (i < t.size()) {
        const char c = t[i];
        if (c == '.') {
            if ((i > data_start && t[i - 1] == '.') || i + 1 == t.size()) {
                return {CandumpParseError::misplaced_separator, base + i};
            }
            ++i;
            continue;
        }
        if (c == '_' && !fd) {
            const bool ok = count == max_classic_length && i + 2 == t.size() && nibble(t[i + 1]) != no_nibble &&
                            nibble(t[i + 1]) > max_classic_length;
            if (!ok) {
                return {CandumpParseError::bad_len8_dlc, base + i};
            }
            break;
        }
        const std::uint8_t hi = nibble(c);
        if (hi == no_nibble) {
            return {CandumpParseError::bad_data_digit, base + i};
        }
        if (count == max_len) {
            return {fd ? CandumpParseError::fd_too_long : CandumpParseError::classic_too_long, base + i};
        }
        if (i + 1 == t.size() || t[i + 1] == '.' || t[i + 1] == '_') {
            return {CandumpParseError::odd_data_digits, base + i};
        }
        const std::uint8_t lo = nibble(t[i + 1]);
        if (lo == no_nibble) {
            return {CandumpParseError::bad_data_digit, base + i + 1};
        }
        frame.data[count] = static_cast<std::uint8_t>((hi << 4) | lo);
        ++count;
        i += 2;
    }
    frame.len = static_cast<std::uint8_t>(count);
    if (error_frame && count != max_classic_length) {
        return {CandumpParseError::bad_error_frame, base + data_start};
    }
    if (fd && !is_valid_fd_length(frame.len)) {
        return {CandumpParseError::bad_fd_length, base + data_start};
    }
    return {};
}

// Parses `(SECONDS.MICROS)` starting at the '(' in column `pos`; on success `pos` is just past ')'.
[[nodiscard]] constexpr Failure parse_timestamp(std::string_view line, std::size_t& pos, std::uint64_t& out) {
    constexpr std::uint64_t max_seconds = UINT64_MAX / 1'000'000;
    constexpr std::uint64_t max_micros_at_max_seconds = UINT64_MAX % 1'000'000;
    const std::size_t start = pos + 1;
    std::size_t i = start;
    std::uint64_t seconds = 0;
    while (i < line.size() && is_digit(line[i])) {
        seconds = seconds * 10 + static_cast<std::uint64_t>(line[i] - '0');
        if (seconds > max_seconds) {
            return {CandumpParseError::timestamp_too_large, start};
        }
        ++i;
    }
    if (i == start || i == line.size() || line[i] != '.') {
        if (i > start && (i == line.size() || is_blank(line[i]))) {
            return {CandumpParseError::timestamp_not_closed, i};
        }
        return {CandumpParseError::bad_timestamp, i};
    }
    ++i;
    const std::size_t fraction_start = i;
    std::uint64_t micros = 0;
    while (i < line.size() && is_digit(line[i])) {
        if (i - fraction_start == 6) {
            return {CandumpParseError::timestamp_fraction_too_long, i};
        }
        micros = micros * 10 + static_cast<std::uint64_t>(line[i] - '0');
        ++i;
    }
    if (i == fraction_start) {
        return {CandumpParseError::bad_timestamp, i};
    }
    for (std::size_t digits = i - fraction_start; digits < 6; ++digits) {
        micros *= 10;
    }
    if (i == line.size() || is_blank(line[i])) {
        return {CandumpParseError::timestamp_not_closed, i};
    }
    if (line[i] != ')') {
        return {CandumpParseError::bad_timestamp, i};
    }
    if (seconds == max_seconds && micros > max_micros_at_max_seconds) {
        return {CandumpParseError::timestamp_too_large, start};
    }
    out = seconds * 1'000'000 + micros;
    pos = i + 1;
    return {};
}

// Writes `value` in decimal, at least `min_digits` wide with leading zeros; returns the end.
[[nodiscard]] constexpr std::size_t put_decimal(std::span<char> out, std::size_t at, std::uint64_t value,
                                                std::size_t min_digits) {
    std::array<char, 20> digits{};
    std::size_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n < min_digits) {
        digits[n++] = '0';
    }
    while (n > 0) {
        out[at++] = digits[--n];
    }
    return at;
}

[[nodiscard]] constexpr std::size_t decimal_width(std::uint64_t value, std::size_t min_digits) {
    std::size_t n = 0;
    do {
        ++n;
        value /= 10;
    } while (value != 0);
    return n < min_digits ? min_digits : n;
}

// Length of the `ID#DATA` text of a valid frame.
[[nodiscard]] constexpr std::size_t frame_text_length(const Frame& f) {
    const std::size_t id_digits = (f.is_extended() || f.is_error()) ? 8 : 3;
    if (f.is_remote()) {
        return id_digits + 2 + (f.len > 0 ? 1 : 0);
    }
    return id_digits + 1 + (f.is_fd() ? 2 : 0) + 2 * static_cast<std::size_t>(f.len);
}

// Writes the `ID#DATA` text of a valid frame; `out` must hold frame_text_length(f) from `at`.
[[nodiscard]] constexpr std::size_t put_frame(std::span<char> out, std::size_t at, const Frame& f) {
    const bool eight = f.is_extended() || f.is_error();
    const std::uint32_t id = f.is_error() ? (f.id | err_flag) : f.id;
    for (int shift = eight ? 28 : 8; shift >= 0; shift -= 4) {
        out[at++] = hex_upper(id >> static_cast<unsigned>(shift));
    }
    out[at++] = '#';
    if (f.is_remote()) {
        out[at++] = 'R';
        if (f.len > 0) {
            out[at++] = static_cast<char>('0' + f.len);
        }
        return at;
    }
    if (f.is_fd()) {
        unsigned flags = fd_flag_fdf;
        if ((f.flags & frame_flag::brs) != 0) {
            flags |= fd_flag_brs;
        }
        if ((f.flags & frame_flag::esi) != 0) {
            flags |= fd_flag_esi;
        }
        out[at++] = '#';
        out[at++] = hex_upper(flags);
    }
    for (std::size_t k = 0; k < f.len; ++k) {
        out[at++] = hex_upper(static_cast<unsigned>(f.data[k]) >> 4);
        out[at++] = hex_upper(f.data[k]);
    }
    return at;
}

}  // namespace detail::candump

// Parses one line (with or without its '\n'). Never reads outside `line`.
[[nodiscard]] constexpr CandumpParseResult parse_candump_line(std::string_view line) {
    using namespace detail::candump;
    CandumpParseResult result{};
    const auto fail = [&result](Failure f) {
        result.kind = CandumpLineKind::error;
        result.frame = Frame{};
        result.error = f.error;
        result.position = f.position;
        return result;
    };

    std::size_t end = line.size();
    while (end > 0 && is_blank(line[end - 1])) {
        --end;
    }
    const std::string_view text = slice(line, 0, end);
    std::size_t pos = skip_while(text, 0, true);
    if (pos == text.size() || text[pos] == '#') {
        result.kind = CandumpLineKind::skip;
        return result;
    }

    std::uint64_t timestamp = 0;
    if (text[pos] == '(') {
        if (const Failure f = parse_timestamp(text, pos, timestamp); f.error != CandumpParseError::none) {
            return fail(f);
        }
        pos = skip_while(text, pos, true);
        if (pos == text.size()) {
            return fail({CandumpParseError::missing_interface, pos});
        }
        const std::size_t iface_end = skip_while(text, pos, false);
        result.interface = slice(text, pos, iface_end);
        pos = skip_while(text, iface_end, true);
        if (pos == text.size()) {
            return fail({CandumpParseError::missing_frame, pos});
        }
    }

    const std::size_t token_end = skip_while(text, pos, false);
    Frame frame{};
    if (const Failure f = parse_frame_token(slice(text, pos, token_end), pos, frame);
        f.error != CandumpParseError::none) {
        return fail(f);
    }
    frame.timestamp_us = timestamp;

    pos = skip_while(text, token_end, true);
    if (pos < text.size()) {
        const std::size_t extra_end = skip_while(text, pos, false);
        const bool direction = extra_end == pos + 1 && (text[pos] == 'R' || text[pos] == 'T');
        if (!direction || skip_while(text, extra_end, true) != text.size()) {
            return fail({CandumpParseError::trailing_text, direction ? skip_while(text, extra_end, true) : pos});
        }
        result.direction = text[pos];
    }

    result.kind = CandumpLineKind::frame;
    result.frame = frame;
    return result;
}

// Writes the `ID#DATA` part (no timestamp, no newline, no NUL) and returns its length;
// 0 if the frame fails check_frame or `out` is too small. max_candump_frame always fits.
[[nodiscard]] constexpr std::size_t format_candump_frame(const Frame& frame, std::span<char> out) {
    using namespace detail::candump;
    if (check_frame(frame) != FrameProblem::none) {
        return 0;
    }
    const std::size_t length = frame_text_length(frame);
    if (out.size() < length) {
        return 0;
    }
    return put_frame(out, 0, frame);
}

// Writes `(SECONDS.MICROS) IFACE ID#DATA` (no newline, no NUL) and returns its length; 0 if
// the frame fails check_frame, `iface` is empty or has a blank or control character, or
// `out` is too small. max_candump_line fits every line whose interface has at most 15 chars.
[[nodiscard]] constexpr std::size_t format_candump_line(const Frame& frame, std::string_view iface,
                                                        std::span<char> out) {
    using namespace detail::candump;
    if (check_frame(frame) != FrameProblem::none || iface.empty()) {
        return 0;
    }
    for (const char c : iface) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= ' ' || u == 0x7F) {
            return 0;
        }
    }
    const std::uint64_t seconds = frame.timestamp_us / 1'000'000;
    const std::uint64_t micros = frame.timestamp_us % 1'000'000;
    const std::size_t length =
        1 + decimal_width(seconds, 10) + 1 + 6 + 2 + iface.size() + 1 + frame_text_length(frame);
    if (out.size() < length) {
        return 0;
    }
    std::size_t at = 0;
    out[at++] = '(';
    at = put_decimal(out, at, seconds, 10);
    out[at++] = '.';
    at = put_decimal(out, at, micros, 6);
    out[at++] = ')';
    out[at++] = ' ';
    for (const char c : iface) {
        out[at++] = c;
    }
    out[at++] = ' ';
    return put_frame(out, at, frame);
}

}  // namespace tcpcan
