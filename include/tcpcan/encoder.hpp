// Encoders into caller-owned buffers. Each returns the bytes written, or 0 when the
// buffer is too small or the value cannot be carried (nothing is written then).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "detail/copy.hpp"
#include "detail/endian.hpp"
#include "frame.hpp"
#include "linux_frame.hpp"
#include "message.hpp"

namespace tcpcan {

namespace detail {
[[nodiscard]] constexpr std::size_t encode_u32_message(std::span<std::uint8_t> out, std::uint8_t p, std::uint32_t value) {
    if (out.size() < header_size + 4) {
        return 0;
    }
    out[0] = p;
    out[1] = 4;
    store_be32(&out[2], value);
    return header_size + 4;
}
}  // namespace detail

[[nodiscard]] constexpr std::size_t encode_version(std::span<std::uint8_t> out, std::uint32_t version) {
    return detail::encode_u32_message(out, prefix::version, version);
}
[[nodiscard]] constexpr std::size_t encode_features(std::span<std::uint8_t> out, std::uint32_t features) {
    return detail::encode_u32_message(out, prefix::features, features);
}
[[nodiscard]] constexpr std::size_t encode_ping(std::span<std::uint8_t> out, std::uint32_t token) {
    return detail::encode_u32_message(out, prefix::ping, token);
}
[[nodiscard]] constexpr std::size_t encode_pong(std::span<std::uint8_t> out, std::uint32_t token) {
    return detail::encode_u32_message(out, prefix::pong, token);
}

// Resume messages (feature::resume): 'k' and 'a' carry the next sequence number expected,
// 'r' a token and that number, 't' a token (never 0).
[[nodiscard]] constexpr std::size_t encode_ack(std::span<std::uint8_t> out, std::uint32_t next_expected) {
    return detail::encode_u32_message(out, prefix::ack, next_expected);
}
[[nodiscard]] constexpr std::size_t encode_resume_accepted(std::span<std::uint8_t> out, std::uint32_t next_expected) {
    return detail::encode_u32_message(out, prefix::resume_accepted, next_expected);
}
[[nodiscard]] constexpr std::size_t encode_resume_request(std::span<std::uint8_t> out, std::uint64_t token,
                                                          std::uint32_t next_expected) {
    if (out.size() < header_size + 12) {
        return 0;
    }
    out[0] = prefix::resume_request;
    out[1] = 12;
    detail::store_be64(&out[2], token);
    detail::store_be32(&out[10], next_expected);
    return header_size + 12;
}
[[nodiscard]] constexpr std::size_t encode_session_token(std::span<std::uint8_t> out, std::uint64_t token) {
    if (out.size() < header_size + 8 || token == 0) {
        return 0;
    }
    out[0] = prefix::session_token;
    out[1] = 8;
    detail::store_be64(&out[2], token);
    return header_size + 8;
}

// Version 1: 'd' carrying the Linux struct (16 or 72 bytes).
[[nodiscard]] constexpr std::size_t encode_data_v1(std::span<std::uint8_t> out, const Frame& frame) {
    if (check_frame(frame) != FrameProblem::none || out.size() < header_size) {
        return 0;
    }
    const std::size_t size = to_linux_bytes(frame, out.subspan(header_size));
    if (size == 0) {
        return 0;
    }
    out[0] = prefix::data_v1;
    out[1] = static_cast<std::uint8_t>(size);
    return header_size + size;
}

[[nodiscard]] constexpr std::size_t frame_message_size(const Frame& frame, bool with_sequence, bool with_timestamp) {
    return header_size + 6 + (with_sequence ? 4 : 0) + (with_timestamp ? 8 : 0) + (frame.is_remote() ? 0 : frame.len);
}

// The largest 'f' message: a 64-byte FD frame with sequence number and timestamp.
inline constexpr std::size_t max_frame_message_size = header_size + 6 + 4 + 8 + max_fd_length;

// Version 2: 'f' = flags, id (BE32), len, [sequence (BE32)], [timestamp (BE64)], data.
[[nodiscard]] constexpr std::size_t encode_frame(std::span<std::uint8_t> out, const Frame& frame, bool with_sequence,
                                                 std::uint32_t sequence, bool with_timestamp) {
    const std::size_t size = frame_message_size(frame, with_sequence, with_timestamp);
    if (check_frame(frame) != FrameProblem::none || out.size() < size) {
        return 0;
    }
    out[0] = prefix::frame;
    out[1] = static_cast<std::uint8_t>(size - header_size);
    out[2] = static_cast<std::uint8_t>(frame.flags | (with_sequence ? wire_flag::has_sequence : 0) |
                                       (with_timestamp ? wire_flag::has_timestamp : 0));
    detail::store_be32(&out[3], frame.id);
    out[7] = frame.len;
    std::size_t at = 8;
    if (with_sequence) {
        detail::store_be32(&out[at], sequence);
        at += 4;
    }
    if (with_timestamp) {
        detail::store_be64(&out[at], frame.timestamp_us);
        at += 8;
    }
    if (!frame.is_remote()) {
        detail::copy_bytes<max_fd_length>(out.data() + at, frame.data.data(), frame.len);  // check_frame: <= 64
    }
    return size;
}

// One wire filter entry (see wire_filter) for encode_subscribe.
struct WireFilterEntry {
    std::uint8_t kind = 0;
    std::uint32_t a = 0;
    std::uint32_t b = 0;
};

[[nodiscard]] constexpr std::size_t encode_subscribe(std::span<std::uint8_t> out, SubscribeOp op,
                                                     std::span<const WireFilterEntry> entries) {
    const std::size_t payload = 1 + entries.size() * wire_filter::entry_size;
    if (entries.size() > wire_filter::max_entries || out.size() < header_size + payload) {
        return 0;
    }
    out[0] = prefix::subscribe;
    out[1] = static_cast<std::uint8_t>(payload);
    out[2] = static_cast<std::uint8_t>(op);
    std::size_t at = 3;
    for (const WireFilterEntry& e : entries) {
        out[at] = e.kind;
        detail::store_be32(&out[at + 1], e.a);
        detail::store_be32(&out[at + 5], e.b);
        at += wire_filter::entry_size;
    }
    return header_size + payload;
}

// 'c' = reason code, then optional UTF-8 text (cut to fit the 255-byte payload).
[[nodiscard]] constexpr std::size_t encode_close(std::span<std::uint8_t> out, CloseReason reason, std::string_view text) {
    const std::size_t text_size = text.size() < max_payload_size - 1 ? text.size() : max_payload_size - 1;
    if (out.size() < header_size + 1 + text_size) {
        return 0;
    }
    out[0] = prefix::close;
    out[1] = static_cast<std::uint8_t>(1 + text_size);
    out[2] = static_cast<std::uint8_t>(reason);
    for (std::size_t i = 0; i < text_size; ++i) {
        out[3 + i] = static_cast<std::uint8_t>(text[i]);
    }
    return header_size + 1 + text_size;
}

// 'b' = a bus name (1 to 64 printable ASCII characters, no spaces); 0 for any other name.
[[nodiscard]] constexpr std::size_t encode_bus(std::span<std::uint8_t> out, std::string_view name) {
    if (name.empty() || name.size() > max_bus_name || out.size() < header_size + name.size()) {
        return 0;
    }
    for (const char c : name) {
        if (!is_bus_name_char(static_cast<std::uint8_t>(c))) {
            return 0;
        }
    }
    out[0] = prefix::bus;
    out[1] = static_cast<std::uint8_t>(name.size());
    for (std::size_t i = 0; i < name.size(); ++i) {
        out[header_size + i] = static_cast<std::uint8_t>(name[i]);
    }
    return header_size + name.size();
}

// Any decoded message back to bytes (the fuzzers check decode → encode → decode).
[[nodiscard]] constexpr std::size_t encode_message(std::span<std::uint8_t> out, const Message& m) {
    switch (m.type) {
    case MessageType::version: return encode_version(out, m.value);
    case MessageType::features: return encode_features(out, m.value);
    case MessageType::ping: return encode_ping(out, m.value);
    case MessageType::pong: return encode_pong(out, m.value);
    case MessageType::data_v1: return encode_data_v1(out, m.frame);
    case MessageType::frame: return encode_frame(out, m.frame, m.has_sequence, m.sequence, m.has_timestamp);
    case MessageType::ack: return encode_ack(out, m.value);
    case MessageType::resume_accepted: return encode_resume_accepted(out, m.value);
    case MessageType::resume_request: return encode_resume_request(out, m.token(), m.value);
    case MessageType::session_token: return encode_session_token(out, m.token());
    case MessageType::subscribe:
    case MessageType::close:
    case MessageType::bus:
    case MessageType::skipped: break;
    }
    if (out.size() < header_size + m.payload_size) {
        return 0;
    }
    out[0] = m.prefix;
    out[1] = m.payload_size;
    for (std::size_t i = 0; i < m.payload_size; ++i) {
        out[header_size + i] = m.payload[i];
    }
    return header_size + m.payload_size;
}

}  // namespace tcpcan
