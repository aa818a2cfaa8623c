// Shared by the fuzz targets: an invariant check that keeps the input, a reader that
// turns the fuzzer's bytes into decisions, and frame/message helpers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <utility>

#include <tcpcan/encoder.hpp>
#include <tcpcan/frame.hpp>
#include <tcpcan/message.hpp>

// A broken invariant traps: libFuzzer saves the input as a crash, and the replay test fails.
// The message says which invariant, since a trap alone only gives a line number.
#define FUZZ_CHECK(cond)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
            __builtin_trap();                                                                   \
        }                                                                                       \
    } while (0)

// Core bugs found by fuzzing are saved in fuzz/regressions/ and fail the replay test until
// fixed. To fuzz on past one meanwhile, mark its check FUZZ_CHECK_KNOWN_BUG and build with
// -DTCPCAN_FUZZ_TOLERATE_KNOWN_BUGS (fuzz/run.sh --tolerate-known-bugs): such checks are
// then off. Make it a FUZZ_CHECK again once the core is fixed.
#define FUZZ_CHECK_KNOWN_BUG(cond)         \
    do {                                   \
        if (!fuzz::tolerate_known_bugs) {  \
            FUZZ_CHECK(cond);              \
        }                                  \
    } while (0)

namespace fuzz {

#ifdef TCPCAN_FUZZ_TOLERATE_KNOWN_BUGS
inline constexpr bool tolerate_known_bugs = true;
#else
inline constexpr bool tolerate_known_bugs = false;
#endif

// Reads decisions from the input front to back. Past the end every read yields 0, so any
// input is a complete script and a shorter input is a prefix of a longer one. Multi-byte
// values are big-endian, like the wire (make_corpus.py writes seeds the same way).
class FuzzInput {
public:
    FuzzInput(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    [[nodiscard]] bool empty() const { return at_ == size_; }
    [[nodiscard]] std::size_t remaining() const { return size_ - at_; }

    std::uint8_t u8() { return at_ < size_ ? data_[at_++] : 0; }
    // One statement per read: the operands of | may be evaluated in either order.
    std::uint16_t u16() {
        const unsigned high = u8();
        return static_cast<std::uint16_t>((high << 8) | u8());
    }
    std::uint32_t u32() {
        const std::uint32_t high = u16();
        return (high << 16) | u16();
    }
    std::uint64_t u64() {
        const std::uint64_t high = u32();
        return (high << 32) | u32();
    }
    bool flag() { return (u8() & 1) != 0; }

    // Up to n bytes (fewer at the end of the input).
    std::span<const std::uint8_t> bytes(std::size_t n) {
        n = n < remaining() ? n : remaining();
        const std::span<const std::uint8_t> out(data_ + at_, n);
        at_ += n;
        return out;
    }
    std::span<const std::uint8_t> rest() { return bytes(remaining()); }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

// Repairs any field combination into a frame check_frame accepts, keeping as much of the
// fuzzer's choice as it can (so every kind of frame is reachable).
inline tcpcan::Frame make_valid(tcpcan::Frame f) {
    using namespace tcpcan;
    f.flags &= frame_flag::all;
    if (f.is_error()) {
        f.flags &= frame_flag::error;  // error frames are never extended (check_frame)
        f.id &= max_error_class;
        f.len = max_classic_length;
    } else {
        f.id &= f.is_extended() ? max_extended_id : max_standard_id;
        if (f.is_fd()) {
            f.flags &= static_cast<std::uint8_t>(~frame_flag::remote);
            f.len = dlc_to_length(length_to_dlc(f.len));  // round up to a legal FD length
        } else {
            f.flags &= static_cast<std::uint8_t>(~(frame_flag::brs | frame_flag::esi));
            f.len = f.len > max_classic_length ? max_classic_length : f.len;
        }
    }
    FUZZ_CHECK(check_frame(f) == FrameProblem::none);
    return f;
}

// Reads a frame laid out like a version-2 'f' payload: flags, id (BE32), len, [sequence
// if 0x40], [timestamp if 0x80], data (none for RTR). The same bytes as the PROTOCOL.md
// vectors, so those make good seeds. The result is not necessarily valid.
inline tcpcan::Frame read_frame(FuzzInput& in) {
    using namespace tcpcan;
    Frame f;
    const std::uint8_t flags = in.u8();
    f.flags = flags & frame_flag::all;
    f.id = in.u32();
    f.len = in.u8();
    if ((flags & wire_flag::has_sequence) != 0) {
        (void)in.u32();
    }
    if ((flags & wire_flag::has_timestamp) != 0) {
        f.timestamp_us = in.u64();
    }
    if (!f.is_remote()) {
        const std::size_t n = f.len < max_fd_length ? f.len : max_fd_length;
        const std::span<const std::uint8_t> data = in.bytes(n);
        for (std::size_t i = 0; i < data.size(); ++i) {
            f.data[i] = data[i];
        }
    }
    return f;
}

// How a frame looks after crossing the wire in `version` with `features` agreed: a
// timestamp only travels in version 2 with TS; version 1 (Linux can_frame) has no EXT bit
// for error frames, and its data past len is zero.
inline tcpcan::Frame as_received(tcpcan::Frame f, std::uint32_t version, std::uint32_t features) {
    using namespace tcpcan;
    if (version != 2 || (features & feature::timestamps) == 0) {
        f.timestamp_us = 0;
    }
    if (version == 1 && f.is_error()) {
        f.flags &= static_cast<std::uint8_t>(~frame_flag::extended);
    }
    return f;
}

// Field-wise equality of two decoded messages: only the fields the message type defines
// (the decoder leaves the others as they were).
inline bool same_message(const tcpcan::Message& a, const tcpcan::Message& b) {
    using namespace tcpcan;
    if (a.type != b.type || a.prefix != b.prefix) {
        return false;
    }
    switch (a.type) {
    case MessageType::version:
    case MessageType::features:
    case MessageType::ping:
    case MessageType::pong:
    case MessageType::ack:
    case MessageType::resume_accepted: return a.value == b.value;
    case MessageType::resume_request: return a.value == b.value && a.token() == b.token();
    case MessageType::session_token: return a.token() == b.token();
    case MessageType::data_v1: return a.frame == b.frame;
    case MessageType::frame:
        return a.frame == b.frame && a.has_sequence == b.has_sequence && a.has_timestamp == b.has_timestamp &&
               (!a.has_sequence || a.sequence == b.sequence);
    case MessageType::subscribe:
    case MessageType::close:
    case MessageType::bus:
    case MessageType::skipped:
        if (a.payload_size != b.payload_size) {
            return false;
        }
        for (std::size_t i = 0; i < a.payload_size; ++i) {
            if (a.payload[i] != b.payload[i]) {
                return false;
            }
        }
        return true;
    }
    return false;
}

// Cuts a byte stream into whole messages (prefix, length, payload) without judging them,
// remembering where each one ended in the stream.
class MessageSplitter {
public:
    struct Raw {
        std::uint8_t prefix = 0;
        std::uint8_t size = 0;  // payload bytes
        std::uint8_t bytes[tcpcan::max_message_size] = {};
        std::uint64_t end = 0;  // stream offset just past the message
    };

    // Takes one byte; true when it completed a message, now in last().
    bool push(std::uint8_t byte) {
        raw_.bytes[filled_++] = byte;
        ++offset_;
        if (filled_ >= tcpcan::header_size && filled_ == tcpcan::header_size + raw_.bytes[1]) {
            raw_.prefix = raw_.bytes[0];
            raw_.size = raw_.bytes[1];
            raw_.end = offset_;
            filled_ = 0;
            return true;
        }
        return false;
    }
    [[nodiscard]] const Raw& last() const { return raw_; }
    [[nodiscard]] std::span<const std::uint8_t> last_bytes() const {
        return {raw_.bytes, tcpcan::header_size + raw_.size};
    }
    [[nodiscard]] std::uint64_t offset() const { return offset_; }
    [[nodiscard]] bool partial() const { return filled_ != 0; }

private:
    Raw raw_{};
    std::size_t filled_ = 0;
    std::uint64_t offset_ = 0;
};

// A valid wire filter entry from fuzzer bytes (kind bits cut to the known ones, values cut to
// the id width, a reversed range turned round).
inline tcpcan::WireFilterEntry read_wire_entry(FuzzInput& in) {
    using namespace tcpcan;
    WireFilterEntry e{static_cast<std::uint8_t>(in.u8() & wire_filter::all), in.u32(), in.u32()};
    const std::uint32_t limit = (e.kind & wire_filter::extended) != 0 ? max_extended_id : max_standard_id;
    e.a &= limit;
    e.b &= limit;
    if ((e.kind & wire_filter::mask_form) == 0 && e.a > e.b) {
        std::swap(e.a, e.b);
    }
    return e;
}

}  // namespace fuzz
