// canip_peer's wire format (4.1, and legacy 4.0 without a hello), sans-IO.
//
// Each side of a 4.1 connection sends one hello line, `CANIP/4.1[ FEAT=SEQ[,TS]]\n`; the
// features in effect are the intersection of both lines. A peer that sends no hello is a
// legacy 4.0 peer (no features). Frames have no length prefix and a fixed size:
//   flags u8 (bit 0 = extended) | dlc u8 (<= 8) | can_id u32 little-endian | 8 data bytes,
//   zero-padded                                                            = 14 bytes
//   + seq u32 big-endian (SEQ)                                             = 18 bytes
//   + timestamp u64 big-endian, µs of the sender's wall clock (TS)         = 26 bytes
// No CAN FD, remote or error frames exist on this wire.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "../decoder.hpp"
#include "../detail/endian.hpp"
#include "../frame.hpp"

namespace tcpcan::canip {

namespace feature {
inline constexpr std::uint8_t seq = 0x01;
inline constexpr std::uint8_t ts = 0x02;
inline constexpr std::uint8_t all = 0x03;
}  // namespace feature

inline constexpr std::uint8_t flag_extended = 0x01;
inline constexpr std::size_t base_frame_size = 14;
inline constexpr std::size_t max_frame_size = 26;
// A hello is ~20 bytes; a line this long without a newline is not a hello.
inline constexpr std::size_t max_hello_size = 128;
inline constexpr char hello_prefix[] = "CANIP/";  // any canip hello starts so
inline constexpr char hello_41[] = "CANIP/4.1";   // the only version spoken

[[nodiscard]] constexpr std::size_t frame_size(std::uint8_t features) {
    return base_frame_size + ((features & feature::seq) ? 4 : 0) + ((features & feature::ts) ? 8 : 0);
}

// Why bytes from a canip peer were refused.
enum class Error : std::uint8_t {
    none,
    hello_too_long,
    hello_bad_character,
    hello_not_canip,
    hello_unsupported_version,
    hello_unfinished,
    bad_flags,
    dlc_too_large,
    standard_id_too_large,
    extended_id_too_large,
};

[[nodiscard]] constexpr const char* describe(Error error) {
    switch (error) {
    case Error::none: return "no error";
    case Error::hello_too_long: return "hello line longer than 128 bytes without a newline";
    case Error::hello_bad_character: return "hello line holds a byte that is not printable ASCII";
    case Error::hello_not_canip: return "hello line does not start with 'CANIP/'";
    case Error::hello_unsupported_version: return "hello line names a canip version other than 4.1";
    case Error::hello_unfinished: return "hello line not ended by a newline in time";
    case Error::bad_flags: return "frame flags other than bit 0 (extended)";
    case Error::dlc_too_large: return "frame dlc above 8";
    case Error::standard_id_too_large: return "standard frame identifier above 0x7FF";
    case Error::extended_id_too_large: return "extended frame identifier above 0x1FFFFFFF";
    }
    return "unknown error";
}

// Why a frame cannot be sent to a canip peer (it is dropped and counted by this cause).
enum class Uncarried : std::uint8_t { none, fd, remote, error, invalid };

[[nodiscard]] constexpr Uncarried check_carriable(const Frame& frame) {
    if (frame.is_error()) {
        return Uncarried::error;
    }
    if (frame.is_fd()) {
        return Uncarried::fd;
    }
    if (frame.is_remote()) {
        return Uncarried::remote;
    }
    return check_frame(frame) == FrameProblem::none ? Uncarried::none : Uncarried::invalid;
}

// Writes our hello for `features` into `out`; returns its size (0 if `out` is too small).
[[nodiscard]] constexpr std::size_t encode_hello(std::uint8_t features, std::span<std::uint8_t> out) {
    std::array<char, 32> text{};
    std::size_t n = 0;
    auto put = [&](const char* s) {
        for (; *s != '\0'; ++s) {
            text[n++] = *s;
        }
    };
    put(hello_41);
    if ((features & feature::all) != 0) {
        put(" FEAT=");
        if (features & feature::seq) {
            put("SEQ");
        }
        if (features & feature::ts) {
            put((features & feature::seq) ? ",TS" : "TS");
        }
    }
    put("\n");
    if (out.size() < n) {
        return 0;
    }
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<std::uint8_t>(text[i]);
    }
    return n;
}

// Parses one hello line (without its '\n'; a trailing '\r' is allowed). Unknown features
// and unknown words are ignored, as canip_peer does, so a later version's extras pass.
[[nodiscard]] constexpr Error parse_hello(std::span<const std::uint8_t> line, std::uint8_t& features) {
    features = 0;
    if (!line.empty() && line.back() == '\r') {
        line = line.first(line.size() - 1);
    }
    for (const std::uint8_t c : line) {
        if (c < 0x20 || c > 0x7E) {
            return Error::hello_bad_character;
        }
    }
    auto starts_with = [&](std::span<const std::uint8_t> s, const char* p) {
        std::size_t i = 0;
        for (; p[i] != '\0'; ++i) {
            if (i >= s.size() || s[i] != static_cast<std::uint8_t>(p[i])) {
                return false;
            }
        }
        return true;
    };
    if (!starts_with(line, hello_prefix)) {
        return Error::hello_not_canip;
    }
    constexpr std::size_t version_end = sizeof(hello_41) - 1;
    if (!starts_with(line, hello_41) || (line.size() > version_end && line[version_end] != ' ')) {
        return Error::hello_unsupported_version;
    }
    auto upper = [](std::uint8_t c) { return (c >= 'a' && c <= 'z') ? static_cast<std::uint8_t>(c - 32) : c; };
    // Words separated by spaces; in each `FEAT=` word, tags separated by commas.
    std::size_t at = version_end;
    while (at < line.size()) {
        while (at < line.size() && line[at] == ' ') {
            ++at;
        }
        std::size_t end = at;
        while (end < line.size() && line[end] != ' ') {
            ++end;
        }
        const auto word = line.subspan(at, end - at);
        if (starts_with(word, "FEAT=")) {
            std::size_t tag = 5;
            while (tag <= word.size()) {
                std::size_t tag_end = tag;
                while (tag_end < word.size() && word[tag_end] != ',') {
                    ++tag_end;
                }
                const std::size_t len = tag_end - tag;
                if (len == 3 && upper(word[tag]) == 'S' && upper(word[tag + 1]) == 'E' && upper(word[tag + 2]) == 'Q') {
                    features |= feature::seq;
                } else if (len == 2 && upper(word[tag]) == 'T' && upper(word[tag + 1]) == 'S') {
                    features |= feature::ts;
                }
                tag = tag_end + 1;
            }
        }
        at = end;
    }
    return Error::none;
}

// Collects the peer's hello line from a stream split anywhere. Bounded: max_hello_size.
class HelloReader {
public:
    // Takes bytes up to and including the '\n'; `complete` once the line is whole and valid.
    [[nodiscard]] constexpr DecodeResult feed(std::span<const std::uint8_t> in) {
        if (error_ != Error::none) {
            return {DecodeStatus::error, 0};
        }
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (in[i] == '\n') {
                error_ = parse_hello(std::span<const std::uint8_t>(line_.data(), size_), features_);
                return {error_ == Error::none ? DecodeStatus::complete : DecodeStatus::error, i + 1};
            }
            if (size_ == line_.size()) {
                error_ = Error::hello_too_long;
                return {DecodeStatus::error, i};
            }
            line_[size_++] = in[i];
        }
        return {DecodeStatus::need_more, in.size()};
    }

    [[nodiscard]] constexpr std::uint8_t features() const { return features_; }
    [[nodiscard]] constexpr Error error() const { return error_; }

private:
    std::array<std::uint8_t, max_hello_size> line_{};
    std::size_t size_ = 0;
    std::uint8_t features_ = 0;
    Error error_ = Error::none;
};

// One frame as the wire carries it: the CAN frame (timestamp_us = TS, else 0) and its SEQ.
struct WireFrame {
    Frame frame;
    std::uint32_t sequence = 0;
};

// Decodes one whole frame of `frame_size(features)` bytes at `p`.
[[nodiscard]] constexpr Error decode_frame(const std::uint8_t* p, std::uint8_t features, WireFrame& out) {
    out = WireFrame{};
    if ((p[0] & ~flag_extended) != 0) {
        return Error::bad_flags;
    }
    if (p[1] > max_classic_length) {
        return Error::dlc_too_large;
    }
    Frame& f = out.frame;
    f.flags = (p[0] & flag_extended) ? frame_flag::extended : std::uint8_t{0};
    f.len = p[1];
    f.id = detail::load_le32(p + 2);
    if (f.is_extended() ? f.id > max_extended_id : f.id > max_standard_id) {
        return f.is_extended() ? Error::extended_id_too_large : Error::standard_id_too_large;
    }
    for (std::size_t i = 0; i < f.len; ++i) {
        f.data[i] = p[6 + i];
    }
    std::size_t at = base_frame_size;
    if (features & feature::seq) {
        out.sequence = detail::load_be32(p + at);
        at += 4;
    }
    if (features & feature::ts) {
        f.timestamp_us = detail::load_be64(p + at);
    }
    return Error::none;
}

// Encodes `frame` (it must pass check_carriable) with the agreed fields; returns the size
// written (0 when `out` is too small).
[[nodiscard]] constexpr std::size_t encode_frame(const Frame& frame, std::uint8_t features, std::uint32_t sequence,
                                                 std::uint64_t timestamp_us, std::span<std::uint8_t> out) {
    const std::size_t size = frame_size(features);
    if (out.size() < size) {
        return 0;
    }
    out[0] = frame.is_extended() ? flag_extended : std::uint8_t{0};
    out[1] = frame.len;
    detail::store_le32(&out[2], frame.id);
    for (std::size_t i = 0; i < max_classic_length; ++i) {
        out[6 + i] = i < frame.len ? frame.data[i] : std::uint8_t{0};
    }
    std::size_t at = base_frame_size;
    if (features & feature::seq) {
        detail::store_be32(&out[at], sequence);
        at += 4;
    }
    if (features & feature::ts) {
        detail::store_be64(&out[at], timestamp_us);
    }
    return size;
}

// Frames from a stream split anywhere: a frame whole in the input is decoded in place,
// one split across reads is gathered in a 26-byte buffer. Errors stick, with the stream
// offset of the frame that caused them.
class FrameDecoder {
public:
    constexpr explicit FrameDecoder(std::uint8_t features = 0) : features_(features & feature::all) {}

    [[nodiscard]] constexpr DecodeResult decode(std::span<const std::uint8_t> in, WireFrame& out) {
        if (error_ != Error::none) {
            return {DecodeStatus::error, 0};
        }
        const std::size_t size = frame_size(features_);
        std::size_t used = 0;
        const std::uint8_t* whole = nullptr;
        if (partial_ == 0 && in.size() >= size) {
            whole = in.data();
            used = size;
        } else {
            used = size - partial_ < in.size() ? size - partial_ : in.size();
            for (std::size_t i = 0; i < used; ++i) {
                buffer_[partial_ + i] = in[i];
            }
            partial_ += used;
            if (partial_ < size) {
                offset_ += used;
                return {DecodeStatus::need_more, used};
            }
            whole = buffer_.data();
            partial_ = 0;
        }
        error_ = decode_frame(whole, features_, out);
        if (error_ != Error::none) {
            error_offset_ = offset_ + used - size;
            return {DecodeStatus::error, used};
        }
        offset_ += used;
        return {DecodeStatus::complete, used};
    }

    [[nodiscard]] constexpr std::uint8_t features() const { return features_; }
    [[nodiscard]] constexpr Error error() const { return error_; }
    // Stream offset (bytes of frames, from the first frame) where the bad frame began.
    [[nodiscard]] constexpr std::uint64_t error_offset() const { return error_offset_; }
    [[nodiscard]] constexpr std::size_t buffered() const { return partial_; }

private:
    std::array<std::uint8_t, max_frame_size> buffer_{};
    std::size_t partial_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t error_offset_ = 0;
    std::uint8_t features_ = 0;
    Error error_ = Error::none;
};

}  // namespace tcpcan::canip
