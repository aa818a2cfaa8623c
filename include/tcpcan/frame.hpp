// One value type for every CAN frame the bridge carries: classic, remote (RTR),
// 11- or 29-bit identifiers, CAN FD (with BRS and ESI) and error frames.
#pragma once

#include <array>
#include <cstdint>

namespace tcpcan {

inline constexpr std::uint32_t max_standard_id = 0x7FF;
inline constexpr std::uint32_t max_extended_id = 0x1FFF'FFFF;
// Error frames carry their error class in the identifier bits (Linux CAN_ERR_MASK).
inline constexpr std::uint32_t max_error_class = 0x1FFF'FFFF;
inline constexpr std::uint8_t max_classic_length = 8;
inline constexpr std::uint8_t max_fd_length = 64;

// Flag bits of Frame::flags. The values are those of the version-2 wire format
// (PROTOCOL.md), so the encoder copies them without translation.
namespace frame_flag {
inline constexpr std::uint8_t extended = 0x01;  // 29-bit identifier
inline constexpr std::uint8_t remote = 0x02;    // remote transmission request
inline constexpr std::uint8_t error = 0x04;     // error frame; id holds the error class
inline constexpr std::uint8_t fd = 0x08;        // CAN FD frame
inline constexpr std::uint8_t brs = 0x10;       // FD bit rate switch
inline constexpr std::uint8_t esi = 0x20;       // FD error state indicator
inline constexpr std::uint8_t all = 0x3F;
}  // namespace frame_flag

struct Frame {
    std::uint32_t id = 0;
    std::uint8_t len = 0;    // data bytes (for a remote frame: the requested length)
    std::uint8_t flags = 0;  // frame_flag bits
    std::array<std::uint8_t, max_fd_length> data{};
    // Microseconds since the Unix epoch when the frame was captured; 0 = unknown.
    std::uint64_t timestamp_us = 0;

    [[nodiscard]] constexpr bool is_extended() const { return (flags & frame_flag::extended) != 0; }
    [[nodiscard]] constexpr bool is_remote() const { return (flags & frame_flag::remote) != 0; }
    [[nodiscard]] constexpr bool is_error() const { return (flags & frame_flag::error) != 0; }
    [[nodiscard]] constexpr bool is_fd() const { return (flags & frame_flag::fd) != 0; }

    // Equality ignores data bytes past len, so frames compare as the bus sees them.
    [[nodiscard]] friend constexpr bool operator==(const Frame& a, const Frame& b) {
        if (a.id != b.id || a.len != b.len || a.flags != b.flags || a.timestamp_us != b.timestamp_us) {
            return false;
        }
        if (a.is_remote()) {
            return true;
        }
        for (std::uint8_t i = 0; i < a.len && i < max_fd_length; ++i) {
            if (a.data[i] != b.data[i]) {
                return false;
            }
        }
        return true;
    }
};

// CAN FD allows only these payload lengths; DLC 9..15 map to 12..64.
inline constexpr std::array<std::uint8_t, 16> dlc_to_length_table{0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};

[[nodiscard]] constexpr std::uint8_t dlc_to_length(std::uint8_t dlc) {
    return dlc_to_length_table[dlc & 0x0F];
}

// The smallest DLC whose length holds `len` bytes (lengths over 64 give 15). Arithmetic
// rather than a scan of the table: a 64-byte frame's length is checked several times on its
// way through the bridge, and the scan's 16 steps each time showed in the overload profile.
[[nodiscard]] constexpr std::uint8_t length_to_dlc(std::uint8_t len) {
    if (len <= 8) {
        return len;
    }
    if (len <= 24) {
        return static_cast<std::uint8_t>(6 + (len + 3) / 4);  // 12, 16, 20, 24: DLC 9 to 12
    }
    return len <= 32 ? 13 : len <= 48 ? 14 : 15;
}

// 0 to 8, 12, 16, 20, 24, 32, 48 or 64.
[[nodiscard]] constexpr bool is_valid_fd_length(std::uint8_t len) {
    return len <= 8 || (len <= 24 && len % 4 == 0) || len == 32 || len == 48 || len == 64;
}

// Why a frame cannot be carried; `none` when it can.
enum class FrameProblem : std::uint8_t {
    none,
    unknown_flags,
    standard_id_too_large,
    extended_id_too_large,
    classic_too_long,
    bad_fd_length,
    remote_fd,
    brs_esi_without_fd,
    bad_error_frame,
};

[[nodiscard]] constexpr const char* describe(FrameProblem problem) {
    switch (problem) {
    case FrameProblem::none: return "valid";
    case FrameProblem::unknown_flags: return "unknown frame flag bits";
    case FrameProblem::standard_id_too_large: return "standard identifier above 0x7FF";
    case FrameProblem::extended_id_too_large: return "extended identifier above 0x1FFFFFFF";
    case FrameProblem::classic_too_long: return "classic frame longer than 8 bytes";
    case FrameProblem::bad_fd_length: return "CAN FD length not one of 0-8, 12, 16, 20, 24, 32, 48, 64";
    case FrameProblem::remote_fd: return "remote frame marked CAN FD";
    case FrameProblem::brs_esi_without_fd: return "BRS or ESI on a frame that is not CAN FD";
    case FrameProblem::bad_error_frame: return "error frame that is extended, FD, remote or not 8 bytes long";
    }
    return "unknown problem";
}

[[nodiscard]] constexpr FrameProblem check_frame(const Frame& frame) {
    if ((frame.flags & ~frame_flag::all) != 0) {
        return FrameProblem::unknown_flags;
    }
    if (frame.is_error()) {
        // Linux error frames: class bits in the id, always 8 data bytes (CAN_ERR_DLC).
        // No EXT either: Linux error frames carry no EFF flag, so version 1 could not keep it.
        const bool ok = frame.id <= max_error_class && frame.len == max_classic_length &&
                        (frame.flags & (frame_flag::extended | frame_flag::remote | frame_flag::fd | frame_flag::brs |
                                        frame_flag::esi)) == 0;
        return ok ? FrameProblem::none : FrameProblem::bad_error_frame;
    }
    if (frame.is_extended() ? frame.id > max_extended_id : frame.id > max_standard_id) {
        return frame.is_extended() ? FrameProblem::extended_id_too_large : FrameProblem::standard_id_too_large;
    }
    if (frame.is_fd()) {
        if (frame.is_remote()) {
            return FrameProblem::remote_fd;
        }
        return is_valid_fd_length(frame.len) ? FrameProblem::none : FrameProblem::bad_fd_length;
    }
    if ((frame.flags & (frame_flag::brs | frame_flag::esi)) != 0) {
        return FrameProblem::brs_esi_without_fd;
    }
    return frame.len <= max_classic_length ? FrameProblem::none : FrameProblem::classic_too_long;
}

}  // namespace tcpcan
