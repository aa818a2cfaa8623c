// The messages of tcpcan protocol versions 1 and 2 (PROTOCOL.md), as values.
// Every message is: prefix (1 byte) | payload length N (1 byte) | N payload bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "frame.hpp"

namespace tcpcan {

inline constexpr std::size_t header_size = 2;
inline constexpr std::size_t max_payload_size = 255;
inline constexpr std::size_t max_message_size = header_size + max_payload_size;

namespace prefix {
inline constexpr std::uint8_t version = 'v';    // v1, v2: u32 version (negotiation only)
inline constexpr std::uint8_t data_v1 = 'd';    // v1: Linux can_frame (16) / canfd_frame (72)
inline constexpr std::uint8_t features = 'h';   // v2: u32 feature bits, first message after agreement
inline constexpr std::uint8_t frame = 'f';      // v2: compact big-endian frame
inline constexpr std::uint8_t ping = 'p';       // v2: u32 token
inline constexpr std::uint8_t pong = 'q';       // v2: u32 token echoed
inline constexpr std::uint8_t subscribe = 's';  // v2: op + filter entries
inline constexpr std::uint8_t close = 'c';      // v2: reason code + optional text
inline constexpr std::uint8_t bus = 'b';        // v2 with feature::bus: a bus name (request, and its answer)
// Resume (feature::resume, see PROTOCOL.md 4.6); sent only when that feature is agreed.
inline constexpr std::uint8_t ack = 'k';              // v2: u32 next sequence expected (cumulative ack)
inline constexpr std::uint8_t resume_request = 'r';   // v2, client: u64 token + u32 next sequence expected
inline constexpr std::uint8_t resume_accepted = 'a';  // v2, server: u32 next sequence expected
inline constexpr std::uint8_t session_token = 't';    // v2, server: u64 token of a new session
}  // namespace prefix

// A version-2 peer skips messages whose prefix is an ASCII capital letter it does not
// know (optional extensions); any other unknown prefix is a protocol error.
[[nodiscard]] constexpr bool is_optional_prefix(std::uint8_t p) { return p >= 'A' && p <= 'Z'; }

inline constexpr std::uint32_t highest_version = 2;

// Session features announced in 'h'. Unknown bits are ignored: the intersection applies.
namespace feature {
inline constexpr std::uint32_t sequence = 0x1;    // every 'f' carries a u32 sequence number
inline constexpr std::uint32_t timestamps = 0x2;  // every 'f' carries a u64 timestamp (µs, Unix epoch)
inline constexpr std::uint32_t resume = 0x4;      // acknowledgements, replay buffer and session resume
inline constexpr std::uint32_t bus = 0x8;         // the client names the server's bus it joins ('b')
inline constexpr std::uint32_t known = sequence | timestamps | resume | bus;
}  // namespace feature

// Bits of the 'f' flags byte above the frame_flag bits.
namespace wire_flag {
inline constexpr std::uint8_t has_sequence = 0x40;
inline constexpr std::uint8_t has_timestamp = 0x80;
}  // namespace wire_flag

enum class CloseReason : std::uint8_t {
    normal = 0,
    shutdown = 1,
    protocol_error = 2,
    peer_dead = 3,
    negotiation_timeout = 4,
    server_full = 5,
    overload = 6,
    unsupported = 7,
};

[[nodiscard]] constexpr const char* describe(CloseReason reason) {
    switch (reason) {
    case CloseReason::normal: return "normal close";
    case CloseReason::shutdown: return "shutting down";
    case CloseReason::protocol_error: return "protocol error";
    case CloseReason::peer_dead: return "peer silent too long";
    case CloseReason::negotiation_timeout: return "no agreement in time";
    case CloseReason::server_full: return "server has no room for another client";
    case CloseReason::overload: return "overload";
    case CloseReason::unsupported: return "unsupported request";
    }
    return "unknown reason";
}

enum class SubscribeOp : std::uint8_t { replace = 0, append = 1 };

// A 'b' payload: a bus name of 1 to 64 printable ASCII characters, no spaces.
inline constexpr std::size_t max_bus_name = 64;
[[nodiscard]] constexpr bool is_bus_name_char(std::uint8_t c) { return c > 0x20 && c < 0x7F; }

// One filter entry on the wire: 9 bytes (kind, a, b). See PROTOCOL.md.
namespace wire_filter {
inline constexpr std::size_t entry_size = 9;
inline constexpr std::size_t max_entries = (max_payload_size - 1) / entry_size;  // 28
inline constexpr std::uint8_t extended = 0x01;  // matches 29-bit ids (else 11-bit)
inline constexpr std::uint8_t inverted = 0x02;  // deny entry
inline constexpr std::uint8_t mask_form = 0x04; // a = id, b = mask; else range [a, b]
inline constexpr std::uint8_t all = 0x07;
}  // namespace wire_filter

enum class MessageType : std::uint8_t {
    version,
    data_v1,
    features,
    frame,
    ping,
    pong,
    subscribe,
    close,
    bus,
    skipped,
    ack,              // value = next sequence expected
    resume_request,   // token, value = next sequence expected
    resume_accepted,  // value = next sequence expected
    session_token,    // token
};

/// A decoded message. `frame` holds the frame of 'd' and 'f'; `value` the u32 of
/// 'v', 'h', 'p', 'q', 'k', 'a' and 'r' (its next sequence); `payload` the raw payload of 's', 'c', 'r'
/// and 't' (token() reads the u64 of 'r' and 't') and of skipped ones, its
/// first PayloadCapacity bytes (`payload_size` is always the whole length). The decoder's
/// payload() holds the whole payload until its next decode(), so a session keeps no copy:
/// it decodes into BasicMessage<0>.
template <std::size_t PayloadCapacity>
struct BasicMessage {
    static constexpr std::size_t payload_capacity = PayloadCapacity;

    MessageType type = MessageType::skipped;
    std::uint8_t prefix = 0;
    std::uint32_t value = 0;
    Frame frame{};
    bool has_sequence = false;
    bool has_timestamp = false;
    std::uint32_t sequence = 0;
    std::uint8_t payload_size = 0;
    std::array<std::uint8_t, PayloadCapacity> payload{};

    [[nodiscard]] std::string_view close_text() const
        requires(PayloadCapacity == max_payload_size)
    {
        if (type != MessageType::close || payload_size < 1) {
            return {};
        }
        return {reinterpret_cast<const char*>(payload.data() + 1), static_cast<std::size_t>(payload_size - 1)};
    }
    /// The token of 'r' and 't' (payload bytes 0-7, big-endian).
    [[nodiscard]] constexpr std::uint64_t token() const
        requires(PayloadCapacity >= 8)
    {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < 8; ++i) {
            v = (v << 8) | payload[i];
        }
        return v;
    }
    [[nodiscard]] constexpr CloseReason close_reason() const
        requires(PayloadCapacity > 0)
    {
        return static_cast<CloseReason>(payload[0]);
    }
};

// A message with its whole payload: what the fuzzers, tests and encode_message use.
using Message = BasicMessage<max_payload_size>;

}  // namespace tcpcan
