// candump text forms: parse_candump_line, format_candump_line, format_candump_frame.
#include <tcpcan/candump_text.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

// REQUIRE needs exceptions (the unit tests build without them): check, then leave the
// test case if the condition failed. The condition must be free of side effects.
#define CANDUMP_REQUIRE(...)  \
    do {                      \
        CHECK(__VA_ARGS__);   \
        if (!(__VA_ARGS__)) { \
            return;           \
        }                     \
    } while (false)

using namespace tcpcan;
using namespace std::string_view_literals;

namespace doctest {
template <>
struct StringMaker<CandumpParseError> {
    static String convert(CandumpParseError e) { return describe(e); }
};
template <>
struct StringMaker<CandumpLineKind> {
    static String convert(CandumpLineKind k) {
        switch (k) {
        case CandumpLineKind::frame: return "frame";
        case CandumpLineKind::skip: return "skip";
        case CandumpLineKind::error: return "error";
        }
        return "?";
    }
};
}  // namespace doctest

namespace {

// The line sits in a heap block of exactly its size, so an over-read shows up under
// AddressSanitizer (the tests' stand-in for picohttpparser's guard page).
struct Parsed {
    std::unique_ptr<char[]> storage;
    CandumpParseResult r;
};

Parsed parse_exact(std::string_view line) {
    Parsed p;
    p.storage = std::make_unique<char[]>(line.size());
    std::copy(line.begin(), line.end(), p.storage.get());
    p.r = parse_candump_line(std::string_view(p.storage.get(), line.size()));
    return p;
}

Frame make(std::uint32_t id, std::uint8_t flags, std::initializer_list<std::uint8_t> data,
           std::uint64_t timestamp_us = 0) {
    Frame f;
    f.id = id;
    f.flags = flags;
    f.len = static_cast<std::uint8_t>(data.size());
    std::copy(data.begin(), data.end(), f.data.begin());
    f.timestamp_us = timestamp_us;
    return f;
}

Frame make_remote(std::uint32_t id, std::uint8_t flags, std::uint8_t len) {
    Frame f;
    f.id = id;
    f.flags = static_cast<std::uint8_t>(flags | frame_flag::remote);
    f.len = len;
    return f;
}

// Frame with `len` bytes of a pattern that differs per position and per seed.
Frame make_pattern(std::uint32_t id, std::uint8_t flags, std::uint8_t len, std::uint8_t seed) {
    Frame f;
    f.id = id;
    f.flags = flags;
    f.len = len;
    for (std::uint8_t i = 0; i < len; ++i) {
        f.data[i] = static_cast<std::uint8_t>(seed + i * 37);
    }
    return f;
}

std::string frame_text(const Frame& f) {
    std::array<char, max_candump_frame> buf{};
    const std::size_t n = format_candump_frame(f, buf);
    return n == 0 ? std::string("<unformattable>") : std::string(buf.data(), n);
}

std::string line_text(const Frame& f, std::string_view iface) {
    std::array<char, max_candump_line> buf{};
    const std::size_t n = format_candump_line(f, iface, buf);
    return std::string(buf.data(), n);
}

void check_frame_line(std::string_view line, const Frame& expected, std::string_view iface = {}) {
    CAPTURE(line);
    const Parsed p = parse_exact(line);
    CANDUMP_REQUIRE(p.r.kind == CandumpLineKind::frame);
    CHECK(p.r.error == CandumpParseError::none);
    INFO("got " << frame_text(p.r.frame) << " len " << int{p.r.frame.len} << " flags " << int{p.r.frame.flags}
                << " ts " << p.r.frame.timestamp_us);
    CHECK(p.r.frame == expected);
    CHECK(p.r.interface == iface);
    CHECK(check_frame(p.r.frame) == FrameProblem::none);
}

void check_error(std::string_view line, CandumpParseError error, std::size_t position) {
    CAPTURE(line);
    const Parsed p = parse_exact(line);
    CHECK(p.r.kind == CandumpLineKind::error);
    CHECK(p.r.error == error);
    CHECK(p.r.position == position);
    CHECK(p.r.frame == Frame{});
}

std::string hex_bytes(std::size_t count, std::uint8_t seed) {
    constexpr std::string_view digits = "0123456789ABCDEF";
    std::string s;
    for (std::size_t i = 0; i < count; ++i) {
        const auto b = static_cast<std::uint8_t>(seed + i * 37);
        s += digits[b >> 4];
        s += digits[b & 0xF];
    }
    return s;
}

constexpr std::uint64_t max_u64 = UINT64_MAX;

}  // namespace

TEST_SUITE("candump_text") {

TEST_CASE("classic short forms parse") {
    check_frame_line("123#11223344", make(0x123, 0, {0x11, 0x22, 0x33, 0x44}));
    check_frame_line("1ABCDE0F#11.22.33", make(0x1ABCDE0F, frame_flag::extended, {0x11, 0x22, 0x33}));
    check_frame_line("123#", make(0x123, 0, {}));
    check_frame_line("000#", make(0x000, 0, {}));
    check_frame_line("7FF#0102030405060708", make(0x7FF, 0, {1, 2, 3, 4, 5, 6, 7, 8}));
    check_frame_line("00000123#", make(0x123, frame_flag::extended, {}));
    check_frame_line("1FFFFFFF#FF", make(0x1FFFFFFF, frame_flag::extended, {0xFF}));
    check_frame_line("1abcde0f#aabbcc", make(0x1ABCDE0F, frame_flag::extended, {0xAA, 0xBB, 0xCC}));
    check_frame_line("7ff#0a", make(0x7FF, 0, {0x0A}));
    // '.' may stand before any byte, as lib.c skips one before each byte.
    check_frame_line("123#.11.22", make(0x123, 0, {0x11, 0x22}));
    check_frame_line("123#11.2233.44", make(0x123, 0, {0x11, 0x22, 0x33, 0x44}));
}

TEST_CASE("remote short forms parse") {
    check_frame_line("123#R", make_remote(0x123, 0, 0));
    check_frame_line("123#r", make_remote(0x123, 0, 0));
    check_frame_line("123#R0", make_remote(0x123, 0, 0));
    check_frame_line("123#R5", make_remote(0x123, 0, 5));
    check_frame_line("123#R8", make_remote(0x123, 0, 8));
    check_frame_line("1ABCDE0F#R3", make_remote(0x1ABCDE0F, frame_flag::extended, 3));
    check_frame_line("00000000#R", make_remote(0, frame_flag::extended, 0));
}

TEST_CASE("len8_dlc suffix is accepted and dropped") {
    check_frame_line("123#1122334455667788_E", make(0x123, 0, {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}));
    check_frame_line("123#1122334455667788_9", make(0x123, 0, {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}));
    check_frame_line("123#11.22.33.44.55.66.77.88_f",
                     make(0x123, 0, {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}));
    check_frame_line("123#R8_E", make_remote(0x123, 0, 8));
    // Not reproduced on output: Frame has no raw DLC.
    CHECK(frame_text(parse_exact("123#1122334455667788_E").r.frame) == "123#1122334455667788");
}

TEST_CASE("CAN FD short forms parse") {
    check_frame_line("123##1AABB", make(0x123, frame_flag::fd | frame_flag::brs, {0xAA, 0xBB}));
    check_frame_line("123##0", make(0x123, frame_flag::fd, {}));
    check_frame_line("123##4", make(0x123, frame_flag::fd, {}));
    check_frame_line("123##2AA", make(0x123, frame_flag::fd | frame_flag::esi, {0xAA}));
    check_frame_line("123##3AA", make(0x123, frame_flag::fd | frame_flag::brs | frame_flag::esi, {0xAA}));
    check_frame_line("123##5AA", make(0x123, frame_flag::fd | frame_flag::brs, {0xAA}));
    check_frame_line("123##6AA", make(0x123, frame_flag::fd | frame_flag::esi, {0xAA}));
    check_frame_line("123##7AA", make(0x123, frame_flag::fd | frame_flag::brs | frame_flag::esi, {0xAA}));
    check_frame_line("1ABCDE0F##1.AA.BB", make(0x1ABCDE0F, frame_flag::extended | frame_flag::fd | frame_flag::brs,
                                               {0xAA, 0xBB}));
    check_frame_line("123##1" + hex_bytes(12, 3), make_pattern(0x123, frame_flag::fd | frame_flag::brs, 12, 3));
    check_frame_line("12345678##0" + hex_bytes(64, 9),
                     make_pattern(0x12345678, frame_flag::extended | frame_flag::fd, 64, 9));
}

TEST_CASE("error frames parse") {
    check_frame_line("20000080#0000000000000000", make(0x80, frame_flag::error, {0, 0, 0, 0, 0, 0, 0, 0}));
    check_frame_line("20000004#0004000000000000", make(0x04, frame_flag::error, {0, 0x04, 0, 0, 0, 0, 0, 0}));
    check_frame_line("3FFFFFFF#0102030405060708", make(0x1FFFFFFF, frame_flag::error, {1, 2, 3, 4, 5, 6, 7, 8}));
    check_frame_line("20000000#00.00.00.00.00.00.00.01", make(0, frame_flag::error, {0, 0, 0, 0, 0, 0, 0, 1}));
}

TEST_CASE("log lines parse") {
    check_frame_line("(1700000000.123456) can0 123#11223344",
                     make(0x123, 0, {0x11, 0x22, 0x33, 0x44}, 1'700'000'000'123'456), "can0");
    // candump right-aligns interface names (%*s), so blank space may be wider.
    check_frame_line("(1700000000.123456)   vcan0   1ABCDE0F#R", [] {
        Frame f = make_remote(0x1ABCDE0F, frame_flag::extended, 0);
        f.timestamp_us = 1'700'000'000'123'456;
        return f;
    }(), "vcan0");
    check_frame_line("(0000000000.000000) can0 123#", make(0x123, 0, {}), "can0");
    check_frame_line("(0.000001) can0 123#", make(0x123, 0, {}, 1), "can0");
    check_frame_line("(1.5) can0 123#", make(0x123, 0, {}, 1'500'000), "can0");
    check_frame_line("(1.05) can0 123#", make(0x123, 0, {}, 1'050'000), "can0");
    check_frame_line("(12.345) can0 123#", make(0x123, 0, {}, 12'345'000), "can0");
    check_frame_line("(12.3456) can0 123#", make(0x123, 0, {}, 12'345'600), "can0");
    check_frame_line("(12.34567) can0 123#", make(0x123, 0, {}, 12'345'670), "can0");
    check_frame_line("(12.000007) can0 123#", make(0x123, 0, {}, 12'000'007), "can0");
    check_frame_line("(18446744073709.551615) can0 123#", make(0x123, 0, {}, max_u64), "can0");
    check_frame_line("(1700000000.000000) any-name_0.x 123##5AA",
                     make(0x123, frame_flag::fd | frame_flag::brs, {0xAA}, 1'700'000'000'000'000), "any-name_0.x");
    check_frame_line("(1700000000.000001) can1 20000080#0000000000000000",
                     make(0x80, frame_flag::error, {0, 0, 0, 0, 0, 0, 0, 0}, 1'700'000'000'000'001), "can1");
}

TEST_CASE("blank space, CR and direction tokens") {
    check_frame_line("  123#11\r\n", make(0x123, 0, {0x11}));
    check_frame_line("\t123#11 \t\r", make(0x123, 0, {0x11}));
    check_frame_line(" (1.000000)\tcan0\t123#11\r", make(0x123, 0, {0x11}, 1'000'000), "can0");

    const Parsed rx = parse_exact("(1700000000.123456) can0 123#11 R");
    CANDUMP_REQUIRE(rx.r.kind == CandumpLineKind::frame);
    CHECK(rx.r.direction == 'R');
    CHECK(rx.r.frame == make(0x123, 0, {0x11}, 1'700'000'000'123'456));

    const Parsed tx = parse_exact("(1700000000.123456) can0 123#R T\r\n");
    CANDUMP_REQUIRE(tx.r.kind == CandumpLineKind::frame);
    CHECK(tx.r.direction == 'T');
    CHECK(tx.r.frame.is_remote());

    const Parsed none = parse_exact("(1700000000.123456) can0 123#11");
    CHECK(none.r.direction == 0);
    const Parsed bare = parse_exact("123#11 T");
    CHECK(bare.r.kind == CandumpLineKind::frame);
    CHECK(bare.r.direction == 'T');
}

TEST_CASE("skip lines") {
    for (const std::string_view line : {""sv, " "sv, "\r"sv, "\r\n"sv, " \t \r\n"sv, "#"sv, "# comment 123#11"sv,
                                        "   #123#11"sv, "#(1.0) can0 123#"sv}) {
        CAPTURE(line);
        const Parsed p = parse_exact(line);
        CHECK(p.r.kind == CandumpLineKind::skip);
        CHECK(p.r.error == CandumpParseError::none);
    }
}

TEST_CASE("timestamp errors") {
    check_error("(1700000000.123456 can0 123#", CandumpParseError::timestamp_not_closed, 18);
    check_error("(1.5", CandumpParseError::timestamp_not_closed, 4);
    check_error("(1700000000 can0 123#", CandumpParseError::timestamp_not_closed, 11);
    check_error("(abc) can0 123#", CandumpParseError::bad_timestamp, 1);
    check_error("(", CandumpParseError::bad_timestamp, 1);
    check_error("(1700000000) can0 123#", CandumpParseError::bad_timestamp, 11);
    check_error("(1.) can0 123#", CandumpParseError::bad_timestamp, 3);
    check_error("(.5) can0 123#", CandumpParseError::bad_timestamp, 1);
    check_error("(1.5x) can0 123#", CandumpParseError::bad_timestamp, 4);
    check_error("(-1.5) can0 123#", CandumpParseError::bad_timestamp, 1);
    check_error("  (1,5) can0 123#", CandumpParseError::bad_timestamp, 4);
    check_error("(1.1234567) can0 123#", CandumpParseError::timestamp_fraction_too_long, 9);
    check_error("(1700000000.123456789) can0 123#", CandumpParseError::timestamp_fraction_too_long, 18);
    check_error("(18446744073709.551616) can0 123#", CandumpParseError::timestamp_too_large, 1);
    check_error("(18446744073710.0) can0 123#", CandumpParseError::timestamp_too_large, 1);
    check_error(" (99999999999999999999999.0) can0 123#", CandumpParseError::timestamp_too_large, 2);
}

TEST_CASE("log line structure errors") {
    check_error("(1.0)", CandumpParseError::missing_interface, 5);
    check_error("(1.0)   \r\n", CandumpParseError::missing_interface, 5);
    check_error("(1.0) can0", CandumpParseError::missing_frame, 10);
    check_error("(1.0) can0  \r", CandumpParseError::missing_frame, 10);
    check_error("123#11 foo", CandumpParseError::trailing_text, 7);
    check_error("123#11 RT", CandumpParseError::trailing_text, 7);
    check_error("123#11 r", CandumpParseError::trailing_text, 7);
    check_error("(1.0) can0 123#11 R x", CandumpParseError::trailing_text, 20);
    check_error("(1.0) can0 123#11 can1 123#22", CandumpParseError::trailing_text, 18);
}

TEST_CASE("identifier errors") {
    check_error("123", CandumpParseError::missing_id_delimiter, 3);
    check_error("(1.0) can0 12345678", CandumpParseError::missing_id_delimiter, 19);
    check_error("12G#11", CandumpParseError::bad_id_digit, 2);
    check_error("0x123#11", CandumpParseError::bad_id_digit, 1);
    check_error("can0 123#11", CandumpParseError::bad_id_digit, 2);
    check_error("R#", CandumpParseError::bad_id_digit, 0);
    check_error("12345#11", CandumpParseError::bad_id_length, 0);
    check_error("1234#", CandumpParseError::bad_id_length, 0);
    check_error("12#", CandumpParseError::bad_id_length, 0);
    check_error("  1234567#", CandumpParseError::bad_id_length, 2);
    check_error("123456789#", CandumpParseError::bad_id_length, 0);
    check_error("(1.0) can0 #11", CandumpParseError::bad_id_length, 11);
    check_error("800#", CandumpParseError::standard_id_too_large, 0);
    check_error("(1.0) can0 FFF#", CandumpParseError::standard_id_too_large, 11);
    check_error("80000123#11", CandumpParseError::extended_id_too_large, 0);
    check_error("40000000#", CandumpParseError::extended_id_too_large, 0);
    check_error("E0000000#0000000000000000", CandumpParseError::extended_id_too_large, 0);
}

TEST_CASE("data errors") {
    check_error("123#11G2", CandumpParseError::bad_data_digit, 6);
    check_error("123#1G", CandumpParseError::bad_data_digit, 5);
    check_error("123##1AAXX", CandumpParseError::bad_data_digit, 8);
    check_error("123#11#22", CandumpParseError::bad_data_digit, 6);
    check_error("123##1AA_1", CandumpParseError::bad_data_digit, 8);
    check_error("123#112", CandumpParseError::odd_data_digits, 6);
    check_error("123#1.22", CandumpParseError::odd_data_digits, 4);
    check_error("123##1A", CandumpParseError::odd_data_digits, 6);
    check_error("123#1_E", CandumpParseError::odd_data_digits, 4);
    check_error("123#11..22", CandumpParseError::misplaced_separator, 7);
    check_error("123#11.", CandumpParseError::misplaced_separator, 6);
    check_error("123#.", CandumpParseError::misplaced_separator, 4);
    check_error("123##1.", CandumpParseError::misplaced_separator, 6);
    check_error("123#112233445566778899", CandumpParseError::classic_too_long, 20);
    check_error("123#11.22.33.44.55.66.77.88.99", CandumpParseError::classic_too_long, 28);
    check_error("123##1" + hex_bytes(65, 1), CandumpParseError::fd_too_long, 6 + 128);
    check_error("123##1" + hex_bytes(9, 1), CandumpParseError::bad_fd_length, 6);
    check_error("(1.0) can0 123##1" + hex_bytes(13, 1), CandumpParseError::bad_fd_length, 17);
    check_error("12345678##0" + hex_bytes(63, 1), CandumpParseError::bad_fd_length, 11);
}

TEST_CASE("FD flags, remote length, len8_dlc and error frame errors") {
    check_error("123##", CandumpParseError::bad_fd_flags, 5);
    check_error("123##G11", CandumpParseError::bad_fd_flags, 5);
    check_error("123##8", CandumpParseError::bad_fd_flags, 5);
    check_error("123##F11", CandumpParseError::bad_fd_flags, 5);
    check_error("123##.1", CandumpParseError::bad_fd_flags, 5);

    check_error("123#R9", CandumpParseError::bad_remote_length, 5);
    check_error("123#RX", CandumpParseError::bad_remote_length, 5);
    check_error("123#R55", CandumpParseError::bad_remote_length, 6);
    check_error("123#R_E", CandumpParseError::bad_remote_length, 5);
    check_error("123#R11", CandumpParseError::bad_remote_length, 6);

    check_error("123#11223344_E", CandumpParseError::bad_len8_dlc, 12);
    check_error("123#_E", CandumpParseError::bad_len8_dlc, 4);
    check_error("123#1122334455667788_8", CandumpParseError::bad_len8_dlc, 20);
    check_error("123#1122334455667788_", CandumpParseError::bad_len8_dlc, 20);
    check_error("123#1122334455667788_EE", CandumpParseError::bad_len8_dlc, 20);
    check_error("123#1122334455667788_G", CandumpParseError::bad_len8_dlc, 20);
    check_error("123#R5_E", CandumpParseError::bad_len8_dlc, 6);
    check_error("123#R8_2", CandumpParseError::bad_len8_dlc, 6);
    check_error("123#R8_", CandumpParseError::bad_len8_dlc, 6);

    check_error("20000080#00", CandumpParseError::bad_error_frame, 9);
    check_error("20000080#", CandumpParseError::bad_error_frame, 9);
    check_error("20000080#R", CandumpParseError::bad_error_frame, 9);
    check_error("20000080##10000000000000000", CandumpParseError::bad_error_frame, 9);
    check_error("(1.0) can0 20000080#000000000000000000", CandumpParseError::classic_too_long, 36);
}

TEST_CASE("every error has its own clear message") {
    constexpr std::array all{
        CandumpParseError::timestamp_not_closed, CandumpParseError::bad_timestamp,
        CandumpParseError::timestamp_fraction_too_long, CandumpParseError::timestamp_too_large,
        CandumpParseError::missing_interface, CandumpParseError::missing_frame,
        CandumpParseError::missing_id_delimiter, CandumpParseError::bad_id_digit, CandumpParseError::bad_id_length,
        CandumpParseError::standard_id_too_large, CandumpParseError::extended_id_too_large,
        CandumpParseError::bad_data_digit, CandumpParseError::odd_data_digits,
        CandumpParseError::misplaced_separator, CandumpParseError::classic_too_long, CandumpParseError::fd_too_long,
        CandumpParseError::bad_fd_length, CandumpParseError::bad_fd_flags, CandumpParseError::bad_remote_length,
        CandumpParseError::bad_len8_dlc, CandumpParseError::bad_error_frame, CandumpParseError::trailing_text,
    };
    static_assert(all.size() == static_cast<std::size_t>(CandumpParseError::trailing_text));
    for (std::size_t i = 0; i < all.size(); ++i) {
        const std::string_view text = describe(all[i]);
        CAPTURE(text);
        CHECK(text.size() > 10);
        CHECK(text != describe(CandumpParseError::none));
        CHECK(text != "unknown error");
        for (std::size_t j = 0; j < i; ++j) {
            CHECK(text != std::string_view(describe(all[j])));
        }
    }
    CHECK(describe(CandumpParseError::timestamp_not_closed) == "timestamp not closed with ')'"sv);
    CHECK(describe(CandumpParseError::classic_too_long) == "classic frame has more than 8 data bytes"sv);
}

TEST_CASE("format exact strings") {
    const Frame classic = make(0x123, 0, {0x11, 0x22, 0x33, 0x44}, 1'700'000'000'123'456);
    CHECK(line_text(classic, "can0") == "(1700000000.123456) can0 123#11223344");
    CHECK(frame_text(classic) == "123#11223344");

    CHECK(line_text(make(0x7, 0, {}, 0), "can0") == "(0000000000.000000) can0 007#");
    CHECK(line_text(make(0x7FF, 0, {0xAB, 0xCD, 0xEF}, 1'500'000), "vcan10") == "(0000000001.500000) vcan10 7FF#ABCDEF");
    CHECK(line_text(make(0x123, 0, {}, 12'000'007), "c") == "(0000000012.000007) c 123#");
    CHECK(line_text(make(0x123, 0, {}, max_u64), "can0") == "(18446744073709.551615) can0 123#");

    CHECK(frame_text(make(0x123, frame_flag::extended, {})) == "00000123#");
    CHECK(frame_text(make(0x1ABCDE0F, frame_flag::extended, {0xAA, 0x0B})) == "1ABCDE0F#AA0B");
    CHECK(frame_text(make(0x123, 0, {1, 2, 3, 4, 5, 6, 7, 8})) == "123#0102030405060708");

    CHECK(frame_text(make_remote(0x123, 0, 0)) == "123#R");
    CHECK(frame_text(make_remote(0x123, 0, 5)) == "123#R5");
    CHECK(frame_text(make_remote(0x123, 0, 8)) == "123#R8");
    CHECK(frame_text(make_remote(0x1ABCDE0F, frame_flag::extended, 1)) == "1ABCDE0F#R1");

    // FD flags digit carries FDF (0x4) as current candump prints it.
    CHECK(frame_text(make(0x123, frame_flag::fd, {})) == "123##4");
    CHECK(frame_text(make(0x123, frame_flag::fd | frame_flag::brs, {0xAA, 0xBB})) == "123##5AABB");
    CHECK(frame_text(make(0x123, frame_flag::fd | frame_flag::esi, {0x01})) == "123##601");
    CHECK(frame_text(make(0x123, frame_flag::fd | frame_flag::brs | frame_flag::esi, {0xFF})) == "123##7FF");
    CHECK(frame_text(make_pattern(0x1ABCDE0F, frame_flag::extended | frame_flag::fd, 12, 3)) ==
          "1ABCDE0F##4" + hex_bytes(12, 3));

    CHECK(frame_text(make(0x80, frame_flag::error, {0, 0, 0, 0, 0, 0, 0, 0})) == "20000080#0000000000000000");
    CHECK(frame_text(make(0x1FFFFFFF, frame_flag::error, {1, 2, 3, 4, 5, 6, 7, 8})) == "3FFFFFFF#0102030405060708");
    CHECK(line_text(make(0x04, frame_flag::error, {0, 4, 0, 0, 0, 0, 0, 0}, 1'000'000),
                    "can0") == "(0000000001.000000) can0 20000004#0004000000000000");
}

TEST_CASE("format refuses what it cannot write") {
    const Frame ok = make(0x123, 0, {0x11});
    CHECK(line_text(ok, "") == "");
    CHECK(line_text(ok, "can 0") == "");
    CHECK(line_text(ok, "can\t0") == "");
    CHECK(line_text(ok, "can0\n") == "");

    std::array<char, max_candump_frame> buf{};
    CHECK(format_candump_frame(make(0x800, 0, {}), buf) == 0);
    CHECK(format_candump_frame(make_pattern(0x123, frame_flag::fd, 9, 0), buf) == 0);
    CHECK(format_candump_frame(make(0x80, frame_flag::error, {0, 0, 0, 0, 0, 0, 0}), buf) == 0);
    CHECK(format_candump_frame(make_remote(0x123, frame_flag::fd, 0), buf) == 0);
    CHECK(format_candump_frame(make(0x123, frame_flag::brs, {}), buf) == 0);
    std::array<char, max_candump_line> line_buf{};
    CHECK(format_candump_line(make(0x800, 0, {}), "can0", line_buf) == 0);

    // Too small by one: nothing written at all. Exactly big enough: whole text.
    const std::string_view expected_line = "(1700000000.123456) can0 123#11";
    Frame timed = ok;
    timed.timestamp_us = 1'700'000'000'123'456;
    std::array<char, 64> big{};
    big.fill('~');
    CHECK(format_candump_line(timed, "can0", std::span<char>(big.data(), expected_line.size() - 1)) == 0);
    CHECK(std::all_of(big.begin(), big.end(), [](char c) { return c == '~'; }));
    CANDUMP_REQUIRE(format_candump_line(timed, "can0", std::span<char>(big.data(), expected_line.size())) ==
            expected_line.size());
    CHECK(std::string_view(big.data(), expected_line.size()) == expected_line);
    CHECK(big[expected_line.size()] == '~');

    big.fill('~');
    CHECK(format_candump_frame(ok, std::span<char>(big.data(), 5)) == 0);
    CHECK(std::all_of(big.begin(), big.end(), [](char c) { return c == '~'; }));
    CANDUMP_REQUIRE(format_candump_frame(ok, std::span<char>(big.data(), 6)) == 6);
    CHECK(std::string_view(big.data(), 6) == "123#11");
    CHECK(big[6] == '~');
}

TEST_CASE("size bounds are exact") {
    Frame longest = make_pattern(0x1FFFFFFF, frame_flag::extended | frame_flag::fd | frame_flag::brs, 64, 5);
    longest.timestamp_us = max_u64;
    std::array<char, max_candump_frame> frame_buf{};
    CHECK(format_candump_frame(longest, frame_buf) == max_candump_frame);
    std::array<char, max_candump_line> line_buf{};
    CHECK(format_candump_line(longest, "abcdefghijklmno", line_buf) == max_candump_line);
    CHECK(format_candump_line(longest, "abcdefghijklmnop", line_buf) == 0);

    const Parsed back = parse_exact(std::string_view(line_buf.data(), max_candump_line));
    CANDUMP_REQUIRE(back.r.kind == CandumpLineKind::frame);
    CHECK(back.r.frame == longest);
    CHECK(back.r.interface == "abcdefghijklmno");
}

TEST_CASE("round trips for every frame kind") {
    std::array<Frame, 2000> frames{};
    std::size_t count = 0;
    const auto add = [&](Frame f) { frames.at(count++) = f; };

    for (std::uint8_t len = 0; len <= max_classic_length; ++len) {
        add(make_pattern(0x000, 0, len, len));
        add(make_pattern(0x7FF, 0, len, static_cast<std::uint8_t>(len + 100)));
        add(make_pattern(0x0000'0000, frame_flag::extended, len, static_cast<std::uint8_t>(len + 7)));
        add(make_pattern(0x1FFF'FFFF, frame_flag::extended, len, static_cast<std::uint8_t>(len + 200)));
        add(make_remote(0x123, 0, len));
        add(make_remote(0x1ABC'DE0F, frame_flag::extended, len));
    }
    for (std::uint8_t dlc = 0; dlc < 16; ++dlc) {
        const std::uint8_t len = dlc_to_length(dlc);
        for (const std::uint8_t extra : {std::uint8_t{0}, frame_flag::brs, frame_flag::esi,
                                         static_cast<std::uint8_t>(frame_flag::brs | frame_flag::esi)}) {
            add(make_pattern(0x456, static_cast<std::uint8_t>(frame_flag::fd | extra), len, dlc));
            add(make_pattern(0x1234'5678, static_cast<std::uint8_t>(frame_flag::extended | frame_flag::fd | extra),
                             len, static_cast<std::uint8_t>(dlc + 50)));
        }
    }
    add(make(0x80, frame_flag::error, {0, 0, 0, 0, 0, 0, 0, 0}));
    add(make(0x1FFF'FFFF, frame_flag::error, {0xFF, 1, 2, 3, 4, 5, 6, 0xFE}));
    add(make(0x0, frame_flag::error, {1, 0, 0, 0, 0, 0, 0, 0}));

    constexpr std::array<std::uint64_t, 6> stamps{0, 1, 999'999, 1'000'000, 1'700'000'000'123'456, max_u64};
    constexpr std::array<std::string_view, 3> ifaces{"can0", "v", "abcdefghijklmno"};
    std::size_t checked = 0;
    for (std::size_t i = 0; i < count; ++i) {
        Frame f = frames[i];
        CANDUMP_REQUIRE(check_frame(f) == FrameProblem::none);
        const std::string short_form = frame_text(f);
        CAPTURE(short_form);
        const Parsed bare = parse_exact(short_form);
        CANDUMP_REQUIRE(bare.r.kind == CandumpLineKind::frame);
        CHECK(bare.r.frame == f);
        // The size check is exact: the text fits a span of its own length, not one shorter.
        std::array<char, max_candump_frame> exact{};
        CHECK(format_candump_frame(f, std::span<char>(exact.data(), short_form.size())) == short_form.size());
        CHECK(format_candump_frame(f, std::span<char>(exact.data(), short_form.size() - 1)) == 0);

        for (std::size_t s = 0; s < stamps.size(); ++s) {
            f.timestamp_us = stamps[s];
            const std::string_view iface = ifaces[(i + s) % ifaces.size()];
            const std::string line = line_text(f, iface);
            CAPTURE(line);
            const Parsed back = parse_exact(line);
            CANDUMP_REQUIRE(back.r.kind == CandumpLineKind::frame);
            CHECK(back.r.frame == f);
            CHECK(back.r.interface == iface);
            // Formatting the parsed frame again gives the same text byte for byte.
            CHECK(line_text(back.r.frame, back.r.interface) == line);
            std::array<char, max_candump_line> exact_line{};
            CHECK(format_candump_line(f, iface, std::span<char>(exact_line.data(), line.size())) == line.size());
            CHECK(format_candump_line(f, iface, std::span<char>(exact_line.data(), line.size() - 1)) == 0);
            ++checked;
        }
    }
    CHECK(checked == count * stamps.size());
    CHECK(count == 9 * 6 + 16 * 4 * 2 + 3);
}

TEST_CASE("every prefix of a valid line is handled within bounds") {
    // Run under AddressSanitizer, parse_exact catches a read one past any prefix.
    for (const std::string_view line :
         {"(1700000000.123456) can0 123#11223344 R"sv, "(1.5) vcan0 1ABCDE0F#R8_E"sv,
          "123##5.AA.BB.CC.DD.EE.FF.00.11.22.33.44.55"sv, "20000080#0000000000000000"sv,
          "123#1122334455667788_E"sv}) {
        for (std::size_t n = 0; n <= line.size(); ++n) {
            const Parsed p = parse_exact(line.substr(0, n));
            CAPTURE(line.substr(0, n));
            CHECK(p.r.position <= n);
            if (p.r.kind == CandumpLineKind::frame) {
                CHECK(check_frame(p.r.frame) == FrameProblem::none);
            }
        }
    }
}

TEST_CASE("parsing and formatting work at compile time") {
    constexpr auto round_trip = [] {
        Frame f;
        f.id = 0x1ABCDE0F;
        f.flags = frame_flag::extended | frame_flag::fd | frame_flag::brs;
        f.len = 12;
        for (std::uint8_t i = 0; i < f.len; ++i) {
            f.data[i] = static_cast<std::uint8_t>(i * 17);
        }
        f.timestamp_us = 1'700'000'000'123'456;
        std::array<char, max_candump_line> buf{};
        const std::size_t n = format_candump_line(f, "can0", buf);
        const CandumpParseResult r = parse_candump_line(std::string_view(buf.data(), n));
        return n != 0 && r.kind == CandumpLineKind::frame && r.frame == f && r.interface == "can0";
    };
    static_assert(round_trip());
    static_assert(parse_candump_line("123#R5").frame.len == 5);
    static_assert(parse_candump_line("123#12345").error == CandumpParseError::odd_data_digits);
    static_assert(parse_candump_line("123#12345").position == 8);
    CHECK(round_trip());
}

}  // TEST_SUITE
