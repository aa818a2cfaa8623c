// cannelloni's UDP packets (cannelloni 2.x, doc/udp_format.md), its default transport:
//
//   version u8 = 2, op code u8 = DATA (0), seq u8 (one per packet, wrapping), count u16 BE
//   then `count` frames in the encoding of cannelloni.hpp, packed back to back
//
// A sender packs frames until the next would not fit the payload (the link MTU minus the
// IPv4 and UDP headers: 1,500 − 28 = 1,472 bytes by default) or until a flush timeout
// after the first frame waiting (cannelloni's -t, 100 ms by default) passes. Time is an
// input here, in microseconds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "../detail/endian.hpp"
#include "../frame.hpp"
#include "cannelloni.hpp"

namespace tcpcan::cannelloni {

inline constexpr std::uint8_t packet_version = 2;
inline constexpr std::uint8_t op_data = 0;
inline constexpr std::size_t packet_header_size = 5;
inline constexpr std::size_t default_mtu = 1500;
inline constexpr std::size_t ipv4_udp_overhead = 28;  // 20 (IPv4) + 8 (UDP)
inline constexpr std::size_t ipv6_udp_overhead = 48;  // 40 (IPv6) + 8 (UDP), as cannelloni over IPv6
inline constexpr std::size_t default_payload = default_mtu - ipv4_udp_overhead;
inline constexpr std::uint64_t default_flush_timeout_us = 100'000;

struct PacketCheck {
    Error error = Error::none;
    std::uint8_t seq = 0;
    std::uint16_t count = 0;
    std::size_t error_offset = 0;  // byte of the packet that was wrong
};

/// Checks a whole packet (header, every frame, nothing after the last) before any frame is
/// used, so a bad packet is dropped whole. A packet of 0 frames is valid (cannelloni ignores it).
[[nodiscard]] constexpr PacketCheck check_packet(std::span<const std::uint8_t> packet) {
    PacketCheck c;
    if (packet.size() < packet_header_size) {
        c.error = Error::short_packet;
        return c;
    }
    c.seq = packet[2];
    c.count = detail::load_be16(&packet[3]);
    if (packet[0] != packet_version) {
        c.error = Error::bad_packet_version;
        return c;
    }
    if (packet[1] != op_data) {
        c.error = Error::bad_op_code;
        c.error_offset = 1;
        return c;
    }
    std::size_t at = packet_header_size;
    Frame scratch;
    for (std::uint32_t i = 0; i < c.count; ++i) {
        if (packet.size() - at < frame_header_size) {
            c.error = Error::truncated_frame;
            c.error_offset = at;
            return c;
        }
        const HeaderCheck h = check_frame_header(packet.subspan(at).first<frame_header_size>());
        if (h.error != Error::none) {
            c.error = h.error;
            c.error_offset = at + 4;
            return c;
        }
        if (packet.size() - at < h.frame_size) {
            c.error = Error::truncated_frame;
            c.error_offset = at;
            return c;
        }
        const Error e = decode_frame(packet.subspan(at, h.frame_size), scratch);
        if (e != Error::none) {
            c.error = e;
            c.error_offset = at;
            return c;
        }
        at += h.frame_size;
    }
    if (at != packet.size()) {
        c.error = Error::trailing_bytes;
        c.error_offset = at;
    }
    return c;
}

/// Walks the frames of a packet check_packet accepted.
class PacketReader {
public:
    constexpr explicit PacketReader(std::span<const std::uint8_t> checked_packet)
        : packet_(checked_packet), at_(packet_header_size) {}

    /// The next frame, or false after the last.
    [[nodiscard]] constexpr bool next(Frame& out) {
        if (packet_.size() - at_ < frame_header_size) {
            return false;
        }
        const HeaderCheck h = check_frame_header(packet_.subspan(at_).first<frame_header_size>());
        if (h.error != Error::none || packet_.size() - at_ < h.frame_size) {
            return false;
        }
        const Error e = decode_frame(packet_.subspan(at_, h.frame_size), out);
        at_ += h.frame_size;
        return e == Error::none;
    }

private:
    std::span<const std::uint8_t> packet_;
    std::size_t at_;
};

/// Loss seen in the u8 sequence numbers of arriving packets: a jump forward of d counts
/// d − 1 packets lost; a step back (a late or repeated packet, or the sender restarted) is
/// counted as out of order and the count restarts from it. Packets are never refused for it.
class SequenceWatch {
public:
    constexpr void arrived(std::uint8_t seq) {
        if (seen_) {
            const std::uint8_t step = static_cast<std::uint8_t>(seq - last_ - 1);
            if (step < 128) {
                lost_ += step;
                gaps_ += step != 0 ? 1 : 0;
            } else {
                ++out_of_order_;
            }
        }
        seen_ = true;
        last_ = seq;
    }
    [[nodiscard]] constexpr std::uint64_t lost() const { return lost_; }
    [[nodiscard]] constexpr std::uint64_t gaps() const { return gaps_; }
    [[nodiscard]] constexpr std::uint64_t out_of_order() const { return out_of_order_; }

private:
    std::uint64_t lost_ = 0, gaps_ = 0, out_of_order_ = 0;
    std::uint8_t last_ = 0;
    bool seen_ = false;
};

/// Packs frames into one packet at a time (fixed storage of `Capacity` bytes; the payload
/// limit may be set lower, e.g. for a smaller MTU).
///
/// Order of calls: fits() → if false, take the packet first (finish()); add(); then, when
/// due(now) (full, or the flush timeout passed), finish() and send the bytes it returns
/// before the next add(). Each finish() uses the next sequence number.
template <std::size_t Capacity = default_payload>
class PacketPacker {
    static_assert(Capacity >= packet_header_size + max_frame_size, "a packet must hold the largest frame");

public:
    constexpr PacketPacker(std::size_t payload_limit = Capacity, std::uint64_t flush_timeout_us = default_flush_timeout_us)
        : limit_(payload_limit < packet_header_size + max_frame_size ? packet_header_size + max_frame_size
                 : payload_limit > Capacity                          ? Capacity
                                                                     : payload_limit),
          flush_timeout_us_(flush_timeout_us) {}

    [[nodiscard]] constexpr std::size_t payload_limit() const { return limit_; }
    [[nodiscard]] constexpr std::uint16_t count() const { return count_; }
    [[nodiscard]] constexpr bool empty() const { return count_ == 0; }

    /// Whether `frame` fits in the packet being filled.
    [[nodiscard]] constexpr bool fits(const Frame& frame) const { return size_ + encoded_size(frame) <= limit_; }

    /// Adds a valid frame that fits(); false (nothing added) otherwise.
    [[nodiscard]] constexpr bool add(const Frame& frame, std::uint64_t now) {
        if (!fits(frame) || count_ == 0xFFFF) {
            return false;
        }
        const std::size_t n = encode_frame(frame, std::span<std::uint8_t>(bytes_.data() + size_, limit_ - size_));
        if (n == 0) {
            return false;
        }
        if (count_ == 0) {
            first_at_ = now;
        }
        size_ += n;
        ++count_;
        return true;
    }

    /// Full: not even the smallest frame (5 bytes) fits any more; send at once, as cannelloni does.
    [[nodiscard]] constexpr bool full() const { return size_ + frame_header_size > limit_; }
    [[nodiscard]] constexpr bool due(std::uint64_t now) const { return count_ != 0 && (full() || now >= deadline()); }
    /// When the frames waiting must go (meaningful only when !empty()).
    [[nodiscard]] constexpr std::uint64_t deadline() const { return first_at_ + flush_timeout_us_; }

    /// Writes the header and returns the packet; the bytes stay valid until the next add().
    /// The packer then starts an empty packet with the next sequence number.
    [[nodiscard]] constexpr std::span<const std::uint8_t> finish() {
        bytes_[0] = packet_version;
        bytes_[1] = op_data;
        bytes_[2] = seq_;
        detail::store_be16(&bytes_[3], count_);
        const std::size_t size = size_;
        ++seq_;
        count_ = 0;
        size_ = packet_header_size;
        return std::span<const std::uint8_t>(bytes_.data(), size);
    }

    [[nodiscard]] constexpr std::uint8_t next_sequence() const { return seq_; }

private:
    std::array<std::uint8_t, Capacity> bytes_{};
    std::size_t limit_;
    std::uint64_t flush_timeout_us_;
    std::size_t size_ = packet_header_size;
    std::uint64_t first_at_ = 0;
    std::uint16_t count_ = 0;
    std::uint8_t seq_ = 0;
};

}  // namespace tcpcan::cannelloni
