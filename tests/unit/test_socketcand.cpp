// socketcand text protocol (include/tcpcan/dialect/socketcand.hpp): the scanner across reads,
// every client quirk the parser takes, and the server's output byte for byte.
#include <tcpcan/dialect/socketcand.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#define SC_REQUIRE(...)       \
    do {                      \
        CHECK(__VA_ARGS__);   \
        if (!(__VA_ARGS__)) { \
            return;           \
        }                     \
    } while (false)

using namespace tcpcan;
using namespace tcpcan::socketcand;
using namespace std::string_view_literals;

namespace doctest {
template <>
struct StringMaker<CommandError> {
    static String convert(CommandError e) { return describe(e); }
};
template <>
struct StringMaker<ScanError> {
    static String convert(ScanError e) { return describe(e); }
};
template <>
struct StringMaker<FrameTextError> {
    static String convert(FrameTextError e) { return describe(e); }
};
}  // namespace doctest

namespace {

std::span<const std::uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct Scanned {
    std::vector<std::string> messages;
    ScanError error = ScanError::none;
    std::uint64_t error_offset = 0;
};

// Feeds `stream` in pieces of `piece` bytes (0 = whole) and collects the messages.
Scanned scan_all(std::string_view stream, std::size_t piece) {
    Scanned out;
    auto scanner = std::make_unique<MessageScanner>();
    const std::size_t step = piece == 0 ? stream.size() : piece;
    for (std::size_t at = 0; at < stream.size(); at += step) {
        auto input = bytes(stream.substr(at, step));
        while (!input.empty()) {
            const ScanResult r = scanner->scan(input);
            if (r.status == ScanStatus::error) {
                out.error = scanner->error();
                out.error_offset = scanner->error_offset();
                return out;
            }
            if (r.status == ScanStatus::message) {
                out.messages.emplace_back(scanner->message());
            }
            input = input.subspan(r.consumed);
        }
    }
    return out;
}

Command parse(std::string_view message, bool fd = false) {
    return parse_command(message, ParseOptions{fd});
}

std::string frame_text(const Frame& f, std::uint64_t ts) {
    std::array<char, max_frame_text> buf{};
    const std::size_t n = format_frame(f, ts, buf);
    return std::string(buf.data(), n);
}

Frame data_frame(std::uint32_t id, std::initializer_list<std::uint8_t> data, std::uint8_t flags = 0) {
    Frame f;
    f.id = id;
    f.flags = flags;
    for (std::uint8_t b : data) {
        f.data[f.len++] = b;
    }
    return f;
}

}  // namespace

TEST_CASE("socketcand scanner: messages whole, split at every byte, and glued together") {
    const std::string_view stream = "< open can0 >< rawmode >\r\n  < send 123 2 11 22 >< echo >";
    const std::vector<std::string> expected{"< open can0 >", "< rawmode >", "< send 123 2 11 22 >", "< echo >"};
    for (std::size_t piece : {0, 1, 2, 3, 5, 7, 13}) {
        CAPTURE(piece);
        const Scanned s = scan_all(stream, piece);
        CHECK(s.error == ScanError::none);
        CHECK(s.messages == expected);
    }
}

TEST_CASE("socketcand scanner: a message of 8290 bytes passes, one byte more is named") {
    std::string longest = "<" + std::string(max_message_size - 2, 'x') + ">";
    REQUIRE(longest.size() == 8290);
    for (std::size_t piece : {0, 1, 1000}) {
        const Scanned ok = scan_all(longest, piece);
        CHECK(ok.error == ScanError::none);
        SC_REQUIRE(ok.messages.size() == 1);
        CHECK(ok.messages[0].size() == 8290);
    }
    const std::string too_long = "<" + std::string(max_message_size - 1, 'x') + ">";
    for (std::size_t piece : {0, 1, 1000}) {
        const Scanned bad = scan_all(too_long, piece);
        CHECK(bad.error == ScanError::message_too_long);
        CHECK(bad.messages.empty());
    }
    // No '>' ever: refused once the buffer is full, not held forever.
    const Scanned endless = scan_all("< " + std::string(20000, 'a'), 4096);
    CHECK(endless.error == ScanError::message_too_long);
    CHECK(endless.error_offset == max_message_size);  // the byte that would be the 8291st
}

TEST_CASE("socketcand scanner: text outside a message is named with its offset, and the error sticks") {
    const Scanned s = scan_all("< echo >hello< echo >", 1);
    CHECK(s.error == ScanError::text_outside_message);
    CHECK(s.error_offset == 8);
    CHECK(s.messages == std::vector<std::string>{"< echo >"});

    auto scanner = std::make_unique<MessageScanner>();
    CHECK(scanner->scan(bytes("x")).status == ScanStatus::error);
    CHECK(scanner->scan(bytes("< echo >")).status == ScanStatus::error);
    CHECK(scanner->error() == ScanError::text_outside_message);
}

TEST_CASE("socketcand commands: modes, open, echo, statistics") {
    CHECK(parse("< rawmode >").kind == CommandKind::rawmode);
    CHECK(parse("<rawmode>").kind == CommandKind::rawmode);
    CHECK(parse("< bcmmode >").kind == CommandKind::bcmmode);
    CHECK(parse("< controlmode >").kind == CommandKind::controlmode);
    CHECK(parse("< isotpmode >").kind == CommandKind::isotpmode);
    CHECK(parse("< fdmode >").kind == CommandKind::fdmode);
    CHECK(parse("< echo >").kind == CommandKind::echo);
    const Command open = parse("< open vcan0 >");
    CHECK(open.kind == CommandKind::open);
    CHECK(open.text == "vcan0");
    CHECK(parse("< open >").error == CommandError::missing_bus_name);
    CHECK(parse("< open a b >").error == CommandError::extra_arguments);
    CHECK(parse("< rawmode now >").error == CommandError::extra_arguments);
    const Command stat = parse("< statistics 1000 >");
    CHECK(stat.kind == CommandKind::statistics);
    CHECK(stat.number == 1000);
    CHECK(parse("< statistics 0 >").number == 0);
    CHECK(parse("< statistics x >").error == CommandError::bad_interval);
    CHECK(parse("< statistics >").error == CommandError::bad_interval);
    CHECK(parse("< subscribe 0 0 123 >").kind == CommandKind::bcm_command);
    CHECK(parse("< add 1 0 123 8 11 22 33 44 55 66 77 88 >").kind == CommandKind::bcm_command);
    CHECK(parse("< isotpconf 1 2 0 0 0 >").kind == CommandKind::isotp_command);
    CHECK(parse("< sendrtr 123 0 >").kind == CommandKind::send_remote);
    const Command unknown = parse("< dance 1 2 >");
    CHECK(unknown.kind == CommandKind::unknown);
    CHECK(unknown.word == "dance");
    CHECK(parse("<   >").error == CommandError::empty_message);
    CHECK(parse("< echo").error == CommandError::not_a_message);
}

TEST_CASE("socketcand send: socketcand's own form, standard and 8-digit extended") {
    const Command c = parse("< send 123 2 11 F1 >");
    SC_REQUIRE(c.kind == CommandKind::send);
    CHECK(c.frame == data_frame(0x123, {0x11, 0xF1}));
    const Command e = parse("< send 1AAAAAAA 2 1 f1 >");
    SC_REQUIRE(e.kind == CommandKind::send);
    CHECK(e.frame == data_frame(0x1AAAAAAA, {0x01, 0xF1}, frame_flag::extended));
    const Command padded = parse("< send 00000123 0 >");
    SC_REQUIRE(padded.kind == CommandKind::send);
    CHECK(padded.frame == data_frame(0x123, {}, frame_flag::extended));
}

TEST_CASE("socketcand send: python-can 4.1's unpadded ids, hex length and empty frames") {
    // 0x1234 extended is written "1234": longer than 3 digits = extended.
    const Command four = parse("< send 1234 3 a b c >");
    SC_REQUIRE(four.kind == CommandKind::send);
    CHECK(four.frame == data_frame(0x1234, {0x0A, 0x0B, 0x0C}, frame_flag::extended));
    // Above 0x7FF in 3 digits cannot be standard.
    const Command big = parse("< send 800 0  >");
    SC_REQUIRE(big.kind == CommandKind::send);
    CHECK(big.frame == data_frame(0x800, {}, frame_flag::extended));
    // Short standard ids.
    const Command one = parse("< send 5 1 ff >");
    SC_REQUIRE(one.kind == CommandKind::send);
    CHECK(one.frame == data_frame(0x5, {0xFF}));
    // Empty frame as python-can writes it: two spaces before '>'.
    const Command empty = parse("< send 123 0  >");
    SC_REQUIRE(empty.kind == CommandKind::send);
    CHECK(empty.frame == data_frame(0x123, {}));
    // Length in hex ("C" = 12) in FD mode.
    std::string twelve = "< send 123 C";
    for (int i = 0; i < 12; ++i) {
        twelve += " " + std::to_string(i);
    }
    twelve += " >";
    const Command fd = parse(twelve, true);
    SC_REQUIRE(fd.kind == CommandKind::send);
    CHECK(fd.frame.len == 12);
    CHECK(fd.frame.is_fd());
    CHECK(fd.frame.data[11] == 0x11);
}

TEST_CASE("socketcand send: LEN read as decimal or as hex, whichever matches the bytes") {
    auto send_with = [](std::string_view len, int count) {
        std::string s = "< send 123 " + std::string(len);
        for (int i = 0; i < count; ++i) {
            s += " aa";
        }
        return parse(s + " >", true);
    };
    CHECK(send_with("20", 20).frame.len == 20);  // decimal (SavvyCAN)
    CHECK(send_with("20", 32).frame.len == 32);  // hex (python-can)
    CHECK(send_with("40", 64).frame.len == 64);
    CHECK(send_with("64", 64).frame.len == 64);
    CHECK(send_with("30", 48).frame.len == 48);
    CHECK(send_with("20", 24).error == CommandError::length_mismatch);
    CHECK(send_with("10", 10).error == CommandError::bad_fd_length);
    CHECK(send_with("zz", 1).error == CommandError::bad_length);
    CHECK(send_with("100", 1).error == CommandError::bad_length);
    CHECK(send_with("3", 2).error == CommandError::length_mismatch);
    CHECK(send_with("40", 65).error == CommandError::too_many_bytes);
}

TEST_CASE("socketcand send: SavvyCAN's sign-extended bytes and bit-31 ids") {
    // Qt 5: QString::number(char, 16) of 0x80 is "ffffff80"; extended ids carry bit 31.
    const Command q5 = parse("< send 80000123 3 ffffff80 7f ffffffff >");
    SC_REQUIRE(q5.kind == CommandKind::send);
    CHECK(q5.frame == data_frame(0x123, {0x80, 0x7F, 0xFF}, frame_flag::extended));
    const Command big = parse("< send 9fffffff 1 ffffffab >");
    SC_REQUIRE(big.kind == CommandKind::send);
    CHECK(big.frame == data_frame(0x1FFFFFFF, {0xAB}, frame_flag::extended));
    // Qt 6 writes the same negative numbers with a minus sign.
    const Command q6 = parse("< send -7ffffedd 2 -80 -1 >");
    SC_REQUIRE(q6.kind == CommandKind::send);
    CHECK(q6.frame == data_frame(0x123, {0x80, 0xFF}, frame_flag::extended));
    // Not a sign extension: refused rather than truncated.
    CHECK(parse("< send 123 1 0000ff80 >").error == CommandError::bad_byte);
    CHECK(parse("< send 123 1 ffffff7f >").error == CommandError::bad_byte);
    CHECK(parse("< send 123 1 100 >").error == CommandError::bad_byte);
    CHECK(parse("< send 123 1 -81 >").error == CommandError::bad_byte);
    CHECK(parse("< send 123 1 -0 >").error == CommandError::bad_byte);
    CHECK(parse("< send 123 1 g >").error == CommandError::bad_byte);
}

TEST_CASE("socketcand send: bad input is named") {
    CHECK(parse("< send >").error == CommandError::missing_id);
    CHECK(parse("< send 123 >").error == CommandError::missing_length);
    CHECK(parse("< send 12G 0 >").error == CommandError::bad_id);
    CHECK(parse("< send 123456789 0 >").error == CommandError::id_too_long);
    CHECK(parse("< send 20000000 0 >").error == CommandError::id_too_large);
    CHECK(parse("< send 40000123 0 >").error == CommandError::id_too_large);
    CHECK(parse("< send -1 0 >").error == CommandError::id_too_large);  // 0xFFFFFFFF: bits 29, 30
    CHECK(parse("< send 123 9 1 2 3 4 5 6 7 8 9 >").error == CommandError::classic_too_long);
    CHECK(parse("< send 123 9 >").error == CommandError::classic_too_long);  // DLC > 8
    CHECK(parse("< send 123 2 11 >").error == CommandError::length_mismatch);
    CHECK(parse("< send 123 1 11 22 >").error == CommandError::length_mismatch);
    CHECK(parse("< send 123 0 11 >").error == CommandError::length_mismatch);
}

TEST_CASE("socketcand output: socketcand's bytes, ID width, empty frames, error frames") {
    CHECK(frame_text(data_frame(0x123, {0x11, 0x22, 0xAB}), 1'700'000'000'123'456) ==
          "< frame 123 1700000000.123456 1122AB >");
    CHECK(frame_text(data_frame(0x5, {0x01}), 5) == "< frame 005 0.000005 01 >");
    CHECK(frame_text(data_frame(0x1ABCDE, {}, frame_flag::extended), 1'000'000) == "< frame 001ABCDE 1.000000  >");
    CHECK(frame_text(data_frame(0x123, {}), 1'000'000) == "< frame 123 1.000000  >");
    Frame err;
    err.id = 0x004;
    err.flags = frame_flag::error;
    err.len = 8;
    CHECK(frame_text(err, 2'500'000) == "< error 004 2.500000 >");
    err.id = 0x12345;
    CHECK(frame_text(err, 0) == "< error 12345 0.000000 >");
    Frame rtr = data_frame(0x123, {});
    rtr.flags = frame_flag::remote;
    CHECK(frame_text(rtr, 0).empty());

    std::array<char, 64> buf{};
    CHECK(std::string_view(buf.data(), format_reply("hi", buf)) == "< hi >");
    CHECK(std::string_view(buf.data(), format_reply("ok", buf)) == "< ok >");
    CHECK(std::string_view(buf.data(), format_error("unknown command", buf)) == "< error unknown command >");
    CHECK(std::string_view(buf.data(), format_error("a <b>", buf)) == "< error a _b_ >");
    CHECK(std::string_view(buf.data(), format_stat(10, 2, 0, 18446744073709551615ull, buf)) ==
          "< stat 10 2 0 18446744073709551615 >");
    std::array<char, 5> tiny{};
    CHECK(format_reply("ok", tiny) == 0);
}

TEST_CASE("socketcand output: the longest frame fits max_frame_text and reads back") {
    Frame f;
    f.id = 0x1FFFFFFF;
    f.flags = frame_flag::extended | frame_flag::fd;
    f.len = 64;
    for (std::uint8_t i = 0; i < 64; ++i) {
        f.data[i] = static_cast<std::uint8_t>(0xF0 + i);
    }
    f.timestamp_us = 18446744073709551615ull;
    const std::string text = frame_text(f, f.timestamp_us);
    CHECK(text.size() == max_frame_text);
    Frame back;
    // 14 second digits are more than this reader takes (it would overflow); real clocks have 10.
    CHECK(parse_frame(text, ParseOptions{true}, back) == FrameTextError::bad_timestamp);
    f.timestamp_us = 1'700'000'000'000'001;
    CHECK(parse_frame(frame_text(f, f.timestamp_us), ParseOptions{true}, back) == FrameTextError::none);
    CHECK(back == f);
    CHECK(parse_frame(frame_text(f, f.timestamp_us), ParseOptions{false}, back) == FrameTextError::too_long);
}

TEST_CASE("socketcand: what a client sends, the server writes back the same frame") {
    const std::array<std::string_view, 6> sends{
        "< send 123 3 de ad be >", "< send 1FFFFFFF 8 1 2 3 4 5 6 7 8 >", "< send 7FF 0  >",
        "< send 80000001 1 ffffff80 >", "< send abc 1 -1 >", "< send 0 0 >"};
    for (std::string_view s : sends) {
        CAPTURE(s);
        const Command c = parse(s);
        SC_REQUIRE(c.kind == CommandKind::send);
        Frame f = c.frame;
        f.timestamp_us = 42'000'001;
        Frame back;
        CHECK(parse_frame(frame_text(f, f.timestamp_us), ParseOptions{}, back) == FrameTextError::none);
        CHECK(back == f);
    }
}

TEST_CASE("socketcand parse_frame: bad server text is named") {
    Frame f;
    CHECK(parse_frame("< frame 12 1.000000 11 >", {}, f) == FrameTextError::bad_id);
    CHECK(parse_frame("< frame 800 1.000000 11 >", {}, f) == FrameTextError::bad_id);
    CHECK(parse_frame("< frame 123 1.00 11 >", {}, f) == FrameTextError::bad_timestamp);
    CHECK(parse_frame("< frame 123 1.000000 1 >", {}, f) == FrameTextError::bad_data);
    CHECK(parse_frame("< frame 123 1.000000 1122334455667788AA >", {}, f) == FrameTextError::too_long);
    CHECK(parse_frame("< stat 1 2 3 4 >", {}, f) == FrameTextError::not_a_frame);
    CHECK(parse_frame("< frame 123 1.000000  >", {}, f) == FrameTextError::none);
    CHECK(f.len == 0);
}

TEST_CASE("socketcand beacon: socketcand's datagram, every listener and bus, names escaped") {
    const std::array<std::string_view, 2> urls{"can://192.168.1.5:29536", "can://10.0.0.1:29537"};
    const std::array<std::string_view, 3> buses{"can0", "vcan1", "fd:3,4"};
    std::array<char, 512> buf{};
    const std::size_t n = format_beacon("pi", "tcpcan 0.1", urls, buses, buf);
    CHECK(std::string_view(buf.data(), n) ==
          "<CANBeacon name=\"pi\" type=\"SocketCAN\" description=\"tcpcan 0.1\">\n"
          "<URL>can://192.168.1.5:29536</URL><URL>can://10.0.0.1:29537</URL>"
          "<Bus name=\"can0\"/><Bus name=\"vcan1\"/><Bus name=\"fd:3,4\"/></CANBeacon>");
    const std::array<std::string_view, 1> odd{"a\"<&>"};
    const std::size_t m = format_beacon("h", "", {}, odd, buf);
    CHECK(std::string_view(buf.data(), m) ==
          "<CANBeacon name=\"h\" type=\"SocketCAN\" description=\"\">\n<Bus name=\"a&quot;&lt;&amp;&gt;\"/></CANBeacon>");
    std::array<char, 40> small{};
    CHECK(format_beacon("pi", "tcpcan", urls, buses, small) == 0);
}
