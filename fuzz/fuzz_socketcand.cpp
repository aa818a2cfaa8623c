// Fuzzes the socketcand text scanner and command parser (include/tcpcan/dialect/socketcand.hpp).
//
// Input: byte 0 picks the read size the stream is cut into (1 + byte % 64) and, in bit 7,
// whether the client asked for CAN FD; the rest is what a client sends.
//
// Invariants: no crash or over-read (ASan); the scanner finds the same messages and the same
// error, at the same offset, whether the stream comes whole or in pieces (a command split
// across reads is the same command); every message starts with '<', ends with '>' and has
// at most max_message_size bytes, and an error lies inside the stream (or just past its end); the scanner never
// holds more than one partial message. A parsed `< send >` is a valid frame (check_frame),
// classic unless FD was asked for; formatted as `< frame >` it fits max_frame_text and reads
// back as the same frame; a parse is deterministic.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <tcpcan/dialect/socketcand.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;
using namespace tcpcan::socketcand;

struct Scan {
    std::vector<std::string> messages;
    ScanError error = ScanError::none;
    std::uint64_t error_offset = 0;
};

Scan scan(std::span<const std::uint8_t> stream, std::size_t piece) {
    Scan out;
    auto scanner = std::make_unique<MessageScanner>();
    for (std::size_t at = 0; at < stream.size(); at += piece) {
        std::span<const std::uint8_t> input = stream.subspan(at, std::min(piece, stream.size() - at));
        while (!input.empty()) {
            const ScanResult r = scanner->scan(input);
            FUZZ_CHECK(r.consumed <= input.size());
            FUZZ_CHECK(scanner->pending() < socketcand::max_message_size);
            if (r.status == ScanStatus::error) {
                out.error = scanner->error();
                out.error_offset = scanner->error_offset();
                FUZZ_CHECK(out.error != ScanError::none);
                FUZZ_CHECK(out.error_offset <= stream.size());  // = size: an unfinished message already too long
                FUZZ_CHECK(scanner->scan(input).status == ScanStatus::error);  // sticky
                return out;
            }
            if (r.status == ScanStatus::message) {
                const std::string_view m = scanner->message();
                FUZZ_CHECK(m.size() >= 2 && m.size() <= socketcand::max_message_size);
                FUZZ_CHECK(m.front() == '<' && m.back() == '>');
                out.messages.emplace_back(m);
            } else {
                FUZZ_CHECK(r.consumed == input.size());
            }
            input = input.subspan(r.consumed);
        }
    }
    return out;
}

bool same_command(const Command& a, const Command& b) {
    return a.kind == b.kind && a.error == b.error && a.word == b.word && a.text == b.text && a.number == b.number &&
           a.frame == b.frame;
}

void check_command(std::string_view message, const ParseOptions& options) {
    const Command c = parse_command(message, options);
    FUZZ_CHECK(same_command(c, parse_command(message, options)));
    FUZZ_CHECK((c.kind == CommandKind::invalid) == (c.error != CommandError::none));
    if (c.kind != CommandKind::send) {
        return;
    }
    FUZZ_CHECK(check_frame(c.frame) == FrameProblem::none);
    FUZZ_CHECK(!c.frame.is_remote() && !c.frame.is_error());
    FUZZ_CHECK(options.fd || !c.frame.is_fd());
    FUZZ_CHECK(c.frame.is_fd() == (c.frame.len > max_classic_length));
    Frame f = c.frame;
    f.timestamp_us = 1'700'000'000'123'456;
    char text[max_frame_text];
    const std::size_t n = format_frame(f, f.timestamp_us, text);
    FUZZ_CHECK(n > 0 && n <= max_frame_text);
    Frame back;
    FUZZ_CHECK(parse_frame(std::string_view(text, n), options, back) == FrameTextError::none);
    FUZZ_CHECK(back == f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::size_t piece = 1 + data[0] % 64;
    const ParseOptions options{(data[0] & 0x80) != 0};
    const std::span<const std::uint8_t> stream(data + 1, size - 1);

    const Scan whole = scan(stream, stream.empty() ? 1 : stream.size());
    const Scan cut = scan(stream, piece);
    FUZZ_CHECK(whole.messages == cut.messages);
    FUZZ_CHECK(whole.error == cut.error);
    FUZZ_CHECK(whole.error_offset == cut.error_offset);
    for (const std::string& m : whole.messages) {
        check_command(m, options);
    }
    return 0;
}
