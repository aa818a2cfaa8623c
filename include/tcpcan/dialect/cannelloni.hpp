// cannelloni's frame encoding and its TCP stream (cannelloni 2.x, doc/tcp_protocol.md):
// both sides first send the 12 bytes "CANNELLONIv1" (no terminator), then frames follow
// back to back with no delimiter:
//
//   can_id u32 big-endian   Linux can_id: bit 31 EFF, bit 30 RTR, bit 29 ERR
//   len    u8               data length; bit 0x80 marks a CAN FD frame
//   flags  u8               only when 0x80 is set: CANFD_BRS 0x01, CANFD_ESI 0x02, CANFD_FDF 0x04
//   data   len bytes        none for a remote (RTR) frame
//
// The same frame encoding is packed into UDP packets (cannelloni_udp.hpp). cannelloni does
// not check len; this decoder refuses len > 8 (classic), len > 64 or not a CAN FD length
// (FD), FD remote frames and standard identifiers above 0x7FF, naming each.
// Error frames (ERR bit) decode into Frame::is_error() frames; cannelloni keeps its own
// error frames local, so the Linux link drops them in both directions and counts them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "../detail/endian.hpp"
#include "../frame.hpp"
#include "../linux_frame.hpp"

namespace tcpcan::cannelloni {

inline constexpr std::array<std::uint8_t, 12> handshake{'C', 'A', 'N', 'N', 'E', 'L', 'L', 'O', 'N', 'I', 'v', '1'};
inline constexpr std::uint16_t default_port = 20000;
inline constexpr std::uint8_t fd_length_flag = 0x80;
inline constexpr std::uint8_t known_fd_flags = linux_can::fd_brs | linux_can::fd_esi | linux_can::fd_fdf;
inline constexpr std::size_t frame_header_size = 5;  // can_id + len
inline constexpr std::size_t max_frame_size = frame_header_size + 1 + max_fd_length;

// Why cannelloni bytes were refused.
enum class Error : std::uint8_t {
    none,
    bad_handshake,
    classic_too_long,
    fd_too_long,
    bad_fd_length,
    remote_fd,
    unknown_fd_flags,
    bad_identifier,
    bad_error_frame,
    // UDP packets (cannelloni_udp.hpp).
    short_packet,
    bad_packet_version,
    bad_op_code,
    truncated_frame,
    trailing_bytes,
};

[[nodiscard]] constexpr const char* describe(Error error) {
    switch (error) {
    case Error::none: return "no error";
    case Error::bad_handshake: return "the first 12 bytes are not \"CANNELLONIv1\"";
    case Error::classic_too_long: return "classic frame with len above 8";
    case Error::fd_too_long: return "CAN FD frame with len above 64";
    case Error::bad_fd_length: return "CAN FD len not one of 0-8, 12, 16, 20, 24, 32, 48, 64";
    case Error::remote_fd: return "remote (RTR) frame marked CAN FD";
    case Error::unknown_fd_flags: return "CAN FD flags byte has bits other than BRS, ESI, FDF";
    case Error::bad_identifier: return "standard identifier above 0x7FF";
    case Error::bad_error_frame: return "error frame that is extended, FD or not 8 bytes long";
    case Error::short_packet: return "UDP packet shorter than its 5-byte header";
    case Error::bad_packet_version: return "UDP packet version is not 2";
    case Error::bad_op_code: return "UDP packet op code is not DATA (0)";
    case Error::truncated_frame: return "UDP packet ends inside a frame its count announces";
    case Error::trailing_bytes: return "UDP packet has bytes after the frames its count announces";
    }
    return "unknown error";
}

/// Bytes `frame` takes on the wire (5 + FD flags byte + data, no data for RTR).
[[nodiscard]] constexpr std::size_t encoded_size(const Frame& frame) {
    return frame_header_size + (frame.is_fd() ? 1 : 0) + (frame.is_remote() ? 0 : frame.len);
}

/// Writes one frame; returns the bytes written, or 0 when `out` is too small or the frame is
/// not valid (check_frame). FD flags carry BRS and ESI only.
[[nodiscard]] constexpr std::size_t encode_frame(const Frame& frame, std::span<std::uint8_t> out) {
    const std::size_t size = encoded_size(frame);
    if (out.size() < size || check_frame(frame) != FrameProblem::none) {
        return 0;
    }
    detail::store_be32(out.data(), linux_can_id(frame));
    out[4] = static_cast<std::uint8_t>(frame.len | (frame.is_fd() ? fd_length_flag : 0));
    std::size_t at = frame_header_size;
    if (frame.is_fd()) {
        out[at++] = static_cast<std::uint8_t>(((frame.flags & frame_flag::brs) ? linux_can::fd_brs : 0) |
                                              ((frame.flags & frame_flag::esi) ? linux_can::fd_esi : 0));
    }
    if (!frame.is_remote()) {
        for (std::size_t i = 0; i < frame.len; ++i) {
            out[at++] = frame.data[i];
        }
    }
    return at;
}

/// From the first 5 bytes (can_id, len): the frame's whole size on the wire, or an error
/// that is already certain (a len that no valid frame has).
struct HeaderCheck {
    Error error = Error::none;
    std::size_t frame_size = 0;
};

[[nodiscard]] constexpr HeaderCheck check_frame_header(std::span<const std::uint8_t, frame_header_size> header) {
    const std::uint32_t can_id = detail::load_be32(header.data());
    const bool fd = (header[4] & fd_length_flag) != 0;
    const std::uint8_t len = header[4] & static_cast<std::uint8_t>(~fd_length_flag);
    const bool remote = (can_id & linux_can::rtr_flag) != 0 && (can_id & linux_can::err_flag) == 0;
    if (fd && len > max_fd_length) {
        return {Error::fd_too_long, 0};
    }
    if (!fd && len > max_classic_length) {
        return {Error::classic_too_long, 0};
    }
    return {Error::none, frame_header_size + (fd ? 1 : 0) + (remote ? 0 : len)};
}

/// Decodes one whole frame from `in`, whose size is the one check_frame_header gave.
[[nodiscard]] constexpr Error decode_frame(std::span<const std::uint8_t> in, Frame& out) {
    out = Frame{};
    const std::uint32_t can_id = detail::load_be32(in.data());
    const bool fd = (in[4] & fd_length_flag) != 0;
    out.len = in[4] & static_cast<std::uint8_t>(~fd_length_flag);
    std::size_t at = frame_header_size;
    if (can_id & linux_can::err_flag) {
        // EFF is kept so check_frame refuses ERR|EFF; RTR means nothing on an error frame.
        out.flags = static_cast<std::uint8_t>(frame_flag::error | ((can_id & linux_can::eff_flag) ? frame_flag::extended : 0));
        out.id = can_id & linux_can::eff_mask;
    } else {
        out.flags = static_cast<std::uint8_t>(((can_id & linux_can::eff_flag) ? frame_flag::extended : 0) |
                                              ((can_id & linux_can::rtr_flag) ? frame_flag::remote : 0));
        // Bits 11..28 of a standard can_id must be zero; keeping them makes check_frame refuse it.
        out.id = can_id & (out.is_extended() ? linux_can::eff_mask : ~(linux_can::eff_flag | linux_can::rtr_flag));
    }
    if (fd) {
        out.flags |= frame_flag::fd;
        const std::uint8_t fd_flags = in[at++];
        if ((fd_flags & ~known_fd_flags) != 0) {
            return Error::unknown_fd_flags;
        }
        out.flags |= static_cast<std::uint8_t>(((fd_flags & linux_can::fd_brs) ? frame_flag::brs : 0) |
                                               ((fd_flags & linux_can::fd_esi) ? frame_flag::esi : 0));
    }
    if (!out.is_remote()) {
        for (std::size_t i = 0; i < out.len; ++i) {
            out.data[i] = in[at + i];
        }
    }
    switch (check_frame(out)) {
    case FrameProblem::none: return Error::none;
    case FrameProblem::remote_fd: return Error::remote_fd;
    case FrameProblem::bad_fd_length: return Error::bad_fd_length;
    case FrameProblem::classic_too_long: return Error::classic_too_long;
    case FrameProblem::bad_error_frame: return Error::bad_error_frame;
    default: return Error::bad_identifier;
    }
}

enum class StreamStatus : std::uint8_t { need_more, handshake_done, frame, error };

struct StreamResult {
    StreamStatus status;
    std::size_t consumed;  // bytes of the input used; never more than given
};

/// The TCP byte stream from a cannelloni peer: the handshake, then frames, split anywhere
/// across reads. Holds at most one frame (70 bytes). An error sticks until reset(), with
/// the stream offset of the byte that was wrong.
class StreamDecoder {
public:
    /// Consumes bytes until one event: the handshake completed, a frame is in `out`, the
    /// input ran out (need_more, all consumed) or an error.
    [[nodiscard]] constexpr StreamResult decode(std::span<const std::uint8_t> in, Frame& out) {
        if (error_ != Error::none) {
            return {StreamStatus::error, 0};
        }
        std::size_t used = 0;
        if (handshake_seen_ < handshake.size()) {
            while (used < in.size() && handshake_seen_ < handshake.size()) {
                if (in[used] != handshake[handshake_seen_]) {
                    return fail(Error::bad_handshake, offset_ + used, used);
                }
                ++used;
                ++handshake_seen_;
            }
            offset_ += used;
            return {handshake_seen_ == handshake.size() ? StreamStatus::handshake_done : StreamStatus::need_more, used};
        }
        // A whole frame already in the input is decoded in place, without a copy.
        if (held_ == 0 && in.size() >= frame_header_size) {
            const HeaderCheck h = check_frame_header(in.first<frame_header_size>());
            if (h.error != Error::none) {
                return fail(h.error, offset_ + 4, frame_header_size);
            }
            if (in.size() >= h.frame_size) {
                return finish(in.first(h.frame_size), h.frame_size, out);
            }
        }
        while (used < in.size()) {
            const std::size_t want = held_ < frame_header_size ? frame_header_size : frame_size_;
            const std::size_t take = want - held_ < in.size() - used ? want - held_ : in.size() - used;
            for (std::size_t i = 0; i < take; ++i) {
                held_bytes_[held_ + i] = in[used + i];
            }
            held_ += take;
            used += take;
            if (held_ == frame_header_size && want == frame_header_size) {
                const HeaderCheck h = check_frame_header(
                    std::span<const std::uint8_t, frame_header_size>(held_bytes_.data(), frame_header_size));
                if (h.error != Error::none) {
                    return fail(h.error, offset_ + used - 1, used);
                }
                frame_size_ = h.frame_size;
            }
            if (held_ == frame_size_) {
                held_ = 0;
                return finish(std::span<const std::uint8_t>(held_bytes_.data(), frame_size_), used, out);
            }
        }
        offset_ += used;
        return {StreamStatus::need_more, used};
    }

    [[nodiscard]] constexpr bool handshake_complete() const { return handshake_seen_ == handshake.size(); }
    [[nodiscard]] constexpr Error error() const { return error_; }
    /// Stream offset (bytes since the start) of the byte that was wrong.
    [[nodiscard]] constexpr std::uint64_t error_offset() const { return error_offset_; }
    /// Bytes of a frame begun but not complete (0 between frames).
    [[nodiscard]] constexpr std::size_t partial_bytes() const { return held_; }
    constexpr void reset() { *this = StreamDecoder{}; }

private:
    // `frame_bytes` end at input byte `used`; the frame began frame_bytes.size() before that.
    constexpr StreamResult finish(std::span<const std::uint8_t> frame_bytes, std::size_t used, Frame& out) {
        const Error e = decode_frame(frame_bytes, out);
        if (e != Error::none) {
            return fail(e, offset_ + used - frame_bytes.size(), used);
        }
        offset_ += used;
        return {StreamStatus::frame, used};
    }

    constexpr StreamResult fail(Error e, std::uint64_t at, std::size_t used) {
        error_ = e;
        error_offset_ = at;
        offset_ += used;
        return {StreamStatus::error, used};
    }

    std::array<std::uint8_t, max_frame_size> held_bytes_{};
    std::size_t held_ = 0;
    std::size_t frame_size_ = 0;
    std::size_t handshake_seen_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t error_offset_ = 0;
    Error error_ = Error::none;
};

}  // namespace tcpcan::cannelloni
