// Exact conversion between Frame and the bytes of Linux's struct can_frame (16 bytes)
// and struct canfd_frame (72 bytes), as tcpcan version 1 puts them in 'd' messages:
// can_id little-endian with the EFF/RTR/ERR flags in its top bits, then len, flags
// (FD) or padding, two reserved bytes, then 8 or 64 data bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "detail/copy.hpp"
#include "detail/endian.hpp"
#include "frame.hpp"

namespace tcpcan {

inline constexpr std::size_t linux_can_frame_size = 16;
inline constexpr std::size_t linux_canfd_frame_size = 72;

namespace linux_can {
inline constexpr std::uint32_t eff_flag = 0x8000'0000;  // CAN_EFF_FLAG
inline constexpr std::uint32_t rtr_flag = 0x4000'0000;  // CAN_RTR_FLAG
inline constexpr std::uint32_t err_flag = 0x2000'0000;  // CAN_ERR_FLAG
inline constexpr std::uint32_t eff_mask = 0x1FFF'FFFF;
inline constexpr std::uint32_t sff_mask = 0x0000'07FF;
inline constexpr std::uint8_t fd_brs = 0x01;  // CANFD_BRS
inline constexpr std::uint8_t fd_esi = 0x02;  // CANFD_ESI
inline constexpr std::uint8_t fd_fdf = 0x04;  // CANFD_FDF (set by kernels since 6.0)
}  // namespace linux_can

// The can_id word with the Linux flag bits.
[[nodiscard]] constexpr std::uint32_t linux_can_id(const Frame& frame) {
    std::uint32_t id = frame.id;
    if (frame.is_error()) {
        return (id & linux_can::eff_mask) | linux_can::err_flag;
    }
    if (frame.is_extended()) {
        id |= linux_can::eff_flag;
    }
    if (frame.is_remote()) {
        id |= linux_can::rtr_flag;
    }
    return id;
}

// Writes the frame as can_frame (classic) or canfd_frame (FD); returns 16 or 72, or
// 0 when `out` is too small. Reserved bytes are written as zero.
[[nodiscard]] constexpr std::size_t to_linux_bytes(const Frame& frame, std::span<std::uint8_t> out) {
    const std::size_t size = frame.is_fd() ? linux_canfd_frame_size : linux_can_frame_size;
    if (out.size() < size) {
        return 0;
    }
    detail::store_le32(out.data(), linux_can_id(frame));
    out[4] = frame.len;
    out[5] = 0;
    if (frame.is_fd()) {
        out[5] = static_cast<std::uint8_t>(linux_can::fd_fdf | ((frame.flags & frame_flag::brs) ? linux_can::fd_brs : 0) |
                                           ((frame.flags & frame_flag::esi) ? linux_can::fd_esi : 0));
    }
    out[6] = 0;
    out[7] = 0;
    // A fixed-size clear, then the data as block moves: a byte loop with a test per byte
    // cost ~450 instructions per 64-byte FD frame on the SocketCAN path (perf, in the VM).
    const std::size_t data_size = size - 8;
    const std::size_t n = frame.is_remote() ? 0 : (frame.len < data_size ? frame.len : data_size);
    std::uint8_t* data = out.data() + 8;
    if (frame.is_fd()) {
        detail::zero_block<max_fd_length>(data);
        detail::copy_bytes<max_fd_length>(data, frame.data.data(), n);
    } else {
        detail::zero_block<max_classic_length>(data);
        detail::copy_bytes<max_classic_length>(data, frame.data.data(), n);
    }
    return size;
}

struct LinuxFrameResult {
    FrameProblem problem = FrameProblem::none;  // none: `frame` is valid
    Frame frame{};
};

// Reads 16 bytes as can_frame or 72 bytes as canfd_frame (told apart by size alone,
// as tcpcan does). Padding and reserved bytes are ignored.
[[nodiscard]] constexpr LinuxFrameResult from_linux_bytes(std::span<const std::uint8_t> in) {
    LinuxFrameResult result;
    Frame& frame = result.frame;
    const bool fd = in.size() == linux_canfd_frame_size;
    if (!fd && in.size() != linux_can_frame_size) {
        result.problem = FrameProblem::classic_too_long;
        return result;
    }
    const std::uint32_t can_id = detail::load_le32(in.data());
    frame.len = in[4];
    if (can_id & linux_can::err_flag) {
        // EFF is kept so check_frame refuses ERR|EFF here exactly as version 2's 'f' does.
        frame.flags = static_cast<std::uint8_t>(frame_flag::error | ((can_id & linux_can::eff_flag) ? frame_flag::extended : 0));
        frame.id = can_id & linux_can::eff_mask;
    } else if (can_id & linux_can::eff_flag) {
        frame.flags = frame_flag::extended;
        frame.id = can_id & linux_can::eff_mask;
    } else {
        // Bits 11..28 of a standard can_id must be zero; keeping them makes check_frame refuse it.
        frame.id = can_id & ~(linux_can::eff_flag | linux_can::rtr_flag | linux_can::err_flag);
    }
    if (!(can_id & linux_can::err_flag) && (can_id & linux_can::rtr_flag)) {
        frame.flags |= frame_flag::remote;
    }
    if (fd) {
        frame.flags |= frame_flag::fd;
        if (in[5] & linux_can::fd_brs) {
            frame.flags |= frame_flag::brs;
        }
        if (in[5] & linux_can::fd_esi) {
            frame.flags |= frame_flag::esi;
        }
    }
    if (!frame.is_remote()) {
        const std::size_t data_size = in.size() - 8;
        const std::size_t n = frame.len < data_size ? frame.len : data_size;
        if (fd) {
            detail::copy_bytes<max_fd_length>(frame.data.data(), in.data() + 8, n);
        } else {
            detail::copy_bytes<max_classic_length>(frame.data.data(), in.data() + 8, n);
        }
    }
    result.problem = check_frame(frame);
    return result;
}

}  // namespace tcpcan
