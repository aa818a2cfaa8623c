// The block copies of detail/copy.hpp, and the decoder's two ways in (a short message whole
// in the input is copied in blocks; anything else byte by byte): both must give the same
// messages, consumed counts, errors and error offsets.
#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <tcpcan/decoder.hpp>
#include <tcpcan/detail/copy.hpp>
#include <tcpcan/encoder.hpp>

using namespace tcpcan;

namespace {

template <std::size_t Max>
constexpr bool copies_exactly_n_bytes() {
    std::array<std::uint8_t, Max + 8> from{};
    for (std::size_t i = 0; i < from.size(); ++i) {
        from[i] = static_cast<std::uint8_t>(i + 1);
    }
    for (std::size_t n = 0; n <= Max; ++n) {
        std::array<std::uint8_t, Max + 8> to{};
        to.fill(0xEE);
        detail::copy_bytes<Max>(to.data(), from.data(), n);
        for (std::size_t i = 0; i < to.size(); ++i) {
            if (to[i] != (i < n ? from[i] : 0xEE)) {
                return false;
            }
        }
    }
    return true;
}
static_assert(copies_exactly_n_bytes<64>(), "constant evaluation takes the byte loop");

// Every length that copy_bytes<Max> accepts, at run time (where it uses memcpy blocks), at
// every source and destination alignment within 8 bytes.
template <std::size_t Max>
void check_copies_at_run_time() {
    std::vector<std::uint8_t> from(Max + 16);
    for (std::size_t i = 0; i < from.size(); ++i) {
        from[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    std::size_t wrong = 0;
    for (std::size_t offset = 0; offset < 8; ++offset) {
        for (std::size_t n = 0; n <= Max; ++n) {
            std::vector<std::uint8_t> to(Max + 16, 0xEE);
            detail::copy_bytes<Max>(to.data() + offset, from.data() + 8 - offset, n);
            for (std::size_t i = 0; i < to.size(); ++i) {
                const bool inside = i >= offset && i < offset + n;
                wrong += to[i] != (inside ? from[i - offset + 8 - offset] : 0xEE) ? 1 : 0;
            }
        }
    }
    CHECK(wrong == 0);
}

Frame frame_of(std::uint8_t len, bool fd) {
    Frame f;
    f.id = 0x1ABCDEF;
    f.flags = frame_flag::extended | (fd ? frame_flag::fd : 0);
    f.len = len;
    f.timestamp_us = 0x0102030405060708ull;
    for (std::uint8_t i = 0; i < len; ++i) {
        f.data[i] = static_cast<std::uint8_t>(0xA0 + i);
    }
    return f;
}

struct Decoded {
    std::vector<Message> messages;
    std::vector<std::size_t> consumed;
    ProtocolError error = ProtocolError::none;
    std::uint64_t error_offset = 0;
};

// Feeds `bytes` in pieces of `piece` bytes (each piece its own exact-size vector, so a read
// past its end is a heap over-read that a sanitizer build reports).
Decoded decode_all(const std::vector<std::uint8_t>& bytes, std::size_t piece) {
    Decoded d;
    Decoder decoder(DecoderMode::version2);
    for (std::size_t at = 0; at < bytes.size(); at += piece) {
        const std::size_t size = piece < bytes.size() - at ? piece : bytes.size() - at;
        const std::vector<std::uint8_t> copy(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                             bytes.begin() + static_cast<std::ptrdiff_t>(at + size));
        std::span<const std::uint8_t> input(copy);
        while (!input.empty()) {  // each call consumes at least one byte or reports an error
            Message m;
            const DecodeResult r = decoder.decode(input, m);
            if (r.status == DecodeStatus::error) {
                d.error = decoder.error();
                d.error_offset = decoder.error_offset();
                return d;
            }
            if (r.status == DecodeStatus::complete) {
                d.messages.push_back(m);
                d.consumed.push_back(r.consumed);
            }
            input = input.subspan(r.consumed);
        }
    }
    return d;
}

void append(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }

std::vector<std::uint8_t> frame_message(const Frame& f) {
    std::array<std::uint8_t, max_frame_message_size> m{};
    const std::size_t n = encode_frame(m, f, true, 77, true);
    REQUIRE(n > 0);
    return {m.begin(), m.begin() + static_cast<std::ptrdiff_t>(n)};
}

// An optional message ('Q', skipped by version 2) with `payload` bytes.
std::vector<std::uint8_t> skipped_message(std::size_t payload) {
    std::vector<std::uint8_t> m{'Q', static_cast<std::uint8_t>(payload)};
    for (std::size_t i = 0; i < payload; ++i) {
        m.push_back(static_cast<std::uint8_t>(i ^ 0x5A));
    }
    return m;
}

}  // namespace

TEST_CASE("copy_bytes copies exactly n bytes at run time") {
    check_copies_at_run_time<1>();
    check_copies_at_run_time<2>();
    check_copies_at_run_time<64>();
    check_copies_at_run_time<128>();
}

TEST_CASE("encode and decode every frame length, whole and byte by byte") {
    std::vector<std::uint8_t> stream;
    std::vector<Frame> frames;
    for (std::uint8_t len = 0; len <= max_classic_length; ++len) {
        frames.push_back(frame_of(len, false));
    }
    for (std::uint8_t len = 0; len <= max_fd_length; ++len) {
        if (is_valid_fd_length(len)) {
            frames.push_back(frame_of(len, true));
        }
    }
    for (const Frame& f : frames) {
        const auto m = frame_message(f);
        CHECK(m.size() == frame_message_size(f, true, true));
        CHECK(m[m.size() - 1] == (f.len > 0 ? f.data[f.len - 1] : 0x08));  // data last (or the timestamp)
        append(stream, m);
    }
    for (const std::size_t piece : {stream.size(), std::size_t{1}, std::size_t{7}}) {
        CAPTURE(piece);
        const Decoded d = decode_all(stream, piece);
        CHECK(d.error == ProtocolError::none);
        REQUIRE(d.messages.size() == frames.size());
        for (std::size_t i = 0; i < frames.size(); ++i) {
            CHECK(d.messages[i].type == MessageType::frame);
            CHECK(d.messages[i].frame == frames[i]);
            CHECK(d.messages[i].sequence == 77);
            // Bytes past len stay zero, as a default Frame has them.
            std::size_t stray = 0;
            for (std::size_t b = frames[i].len; b < max_fd_length; ++b) {
                stray += d.messages[i].frame.data[b] != 0 ? 1 : 0;
            }
            CHECK(stray == 0);
        }
    }
    // Whole input: every message is taken in one call, exactly its size.
    const Decoded whole = decode_all(stream, stream.size());
    for (std::size_t i = 0; i < frames.size(); ++i) {
        CHECK(whole.consumed[i] == frame_message_size(frames[i], true, true));
    }
}

TEST_CASE("decoder: messages on both sides of the block-copy limit (128 bytes)") {
    for (const std::size_t payload : {std::size_t{0}, std::size_t{125}, std::size_t{126}, std::size_t{127}, std::size_t{255}}) {
        CAPTURE(payload);
        std::vector<std::uint8_t> stream = skipped_message(payload);
        append(stream, frame_message(frame_of(8, false)));
        append(stream, skipped_message(payload));
        for (const std::size_t piece : {stream.size(), std::size_t{1}, payload + 1}) {
            CAPTURE(piece);
            const Decoded d = decode_all(stream, piece);
            CHECK(d.error == ProtocolError::none);
            REQUIRE(d.messages.size() == 3);
            CHECK(d.messages[0].type == MessageType::skipped);
            CHECK(d.messages[0].payload_size == payload);
            std::size_t wrong = 0;
            for (std::size_t i = 0; i < payload; ++i) {
                wrong += d.messages[0].payload[i] != static_cast<std::uint8_t>(i ^ 0x5A) ? 1 : 0;
                wrong += d.messages[2].payload[i] != static_cast<std::uint8_t>(i ^ 0x5A) ? 1 : 0;
            }
            CHECK(wrong == 0);
            CHECK(d.messages[1].frame == frame_of(8, false));
        }
    }
}

TEST_CASE("decoder: a bad header gives the same error and offset whole or byte by byte") {
    struct Case {
        std::vector<std::uint8_t> bad;
        ProtocolError error;
        std::uint64_t offset_in_bad;  // the prefix (0) or the length byte (1)
    };
    const std::vector<Case> cases{
        {{'f', 3, 0, 0, 0}, ProtocolError::bad_frame_length, 1},
        {{'z', 1, 0}, ProtocolError::unknown_prefix, 0},
        {{'v', 4, 0, 0, 0, 2}, ProtocolError::not_allowed_after_agreement, 0},
        {{'p', 5, 0, 0, 0, 0, 0}, ProtocolError::bad_ping_length, 1},
    };
    for (const Case& c : cases) {
        std::vector<std::uint8_t> stream = frame_message(frame_of(8, false));
        const std::uint64_t bad_at = stream.size();
        append(stream, c.bad);
        append(stream, frame_message(frame_of(8, false)));  // never reached
        for (const std::size_t piece : {stream.size(), std::size_t{1}}) {
            CAPTURE(piece);
            const Decoded d = decode_all(stream, piece);
            CHECK(d.messages.size() == 1);
            CHECK(d.error == c.error);
            CHECK(d.error_offset == bad_at + c.offset_in_bad);
        }
    }
}
