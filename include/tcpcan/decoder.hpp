// Incremental decoder: accepts the byte stream split anywhere (one byte at a time
// or many messages at once) and yields one validated message per `decode` call.
// It never needs more than one message of buffer (257 bytes). Errors stick: after
// one, every call reports it until `reset`, with the stream offset where it happened.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "detail/copy.hpp"
#include "detail/endian.hpp"
#include "errors.hpp"
#include "frame.hpp"
#include "linux_frame.hpp"
#include "message.hpp"
#include "profile.hpp"

namespace tcpcan {

enum class DecodeStatus : std::uint8_t { complete, need_more, error };

struct DecodeResult {
    DecodeStatus status;
    std::size_t consumed;  // bytes of the input used; never more than given
};

// Which messages are legal: before agreement only 'v'; in version 1 only 'd';
// in version 2 the version-2 set (plus skipping unknown capital-letter prefixes).
enum class DecoderMode : std::uint8_t { negotiating, version1, version2 };

// Parses a version-2 'f' payload into `out`; returns the problem, if any.
template <std::size_t PayloadCapacity>
[[nodiscard]] constexpr ProtocolError parse_frame_payload(std::span<const std::uint8_t> p, BasicMessage<PayloadCapacity>& out) {
    if (p.size() < 6) {
        return ProtocolError::bad_frame_length;
    }
    const std::uint8_t flags = p[0];
    Frame& frame = out.frame;
    frame = Frame{};
    frame.flags = flags & frame_flag::all;
    frame.id = detail::load_be32(&p[1]);
    frame.len = p[5];
    out.has_sequence = (flags & wire_flag::has_sequence) != 0;
    out.has_timestamp = (flags & wire_flag::has_timestamp) != 0;
    const std::size_t data_size = frame.is_remote() ? 0 : frame.len;
    const std::size_t expected = 6 + (out.has_sequence ? 4 : 0) + (out.has_timestamp ? 8 : 0) + data_size;
    if (p.size() != expected) {
        return ProtocolError::bad_frame_length;
    }
    if (check_frame(frame) != FrameProblem::none) {
        return ProtocolError::invalid_frame;
    }
    std::size_t at = 6;
    out.sequence = 0;
    if (out.has_sequence) {
        out.sequence = detail::load_be32(&p[at]);
        at += 4;
    }
    if (out.has_timestamp) {
        frame.timestamp_us = detail::load_be64(&p[at]);
        at += 8;
    }
    detail::copy_bytes<max_fd_length>(frame.data.data(), p.data() + at, data_size);  // check_frame: <= 64
    return ProtocolError::none;
}

// Checks one 's' payload: op byte, then whole 9-byte entries with known kind bits.
[[nodiscard]] constexpr ProtocolError check_subscribe_payload(std::span<const std::uint8_t> p) {
    if (p.empty() || (p.size() - 1) % wire_filter::entry_size != 0) {
        return ProtocolError::bad_subscribe_length;
    }
    if (p[0] > static_cast<std::uint8_t>(SubscribeOp::append)) {
        return ProtocolError::bad_subscribe_op;
    }
    for (std::size_t at = 1; at < p.size(); at += wire_filter::entry_size) {
        const std::uint8_t kind = p[at];
        const std::uint32_t a = detail::load_be32(&p[at + 1]);
        const std::uint32_t b = detail::load_be32(&p[at + 5]);
        const std::uint32_t limit = (kind & wire_filter::extended) ? max_extended_id : max_standard_id;
        const bool range = (kind & wire_filter::mask_form) == 0;
        if ((kind & ~wire_filter::all) != 0 || a > limit || b > limit || (range && a > b)) {
            return ProtocolError::bad_filter_entry;
        }
    }
    return ProtocolError::none;
}

/// The decoder for a Profile (see profile.hpp): without Profile::version_1, 'd' messages
/// are refused in every mode and the version-1 codec is not compiled in.
template <SessionProfile Profile = FullProfile>
class BasicDecoder {
public:
    constexpr explicit BasicDecoder(DecoderMode mode = DecoderMode::negotiating) : mode_(mode) {}

    // Changing mode between messages is how the session follows negotiation.
    constexpr void set_mode(DecoderMode mode) { mode_ = mode; }
    [[nodiscard]] constexpr DecoderMode mode() const { return mode_; }

    constexpr void reset(DecoderMode mode = DecoderMode::negotiating) { *this = BasicDecoder(mode); }

    [[nodiscard]] constexpr ProtocolError error() const { return error_; }
    // Stream offset (bytes since the start or last reset) of the byte that was wrong.
    [[nodiscard]] constexpr std::uint64_t error_offset() const { return error_offset_; }
    // Stream offset of the first byte of the last complete message.
    [[nodiscard]] constexpr std::uint64_t last_message_offset() const { return last_message_offset_; }
    // Stream offset of the next byte to be consumed.
    [[nodiscard]] constexpr std::uint64_t stream_offset() const { return offset_; }

    /// The whole payload of the last complete message; valid until the next decode() or
    /// reset(). A session reads 's' and 'c' payloads (and a peer's close text) from here.
    [[nodiscard]] constexpr std::span<const std::uint8_t> payload() const {
        return {buffer_.data() + header_size, buffer_[1]};
    }

    // Decodes at most one message from `input`. On `complete`, `out` holds it (its payload
    // cut to its capacity; payload() has all of it).
    template <std::size_t PayloadCapacity>
    [[nodiscard]] constexpr DecodeResult decode(std::span<const std::uint8_t> input, BasicMessage<PayloadCapacity>& out) {
        if (error_ != ProtocolError::none) {
            return {DecodeStatus::error, 0};
        }
        std::size_t used = 0;
        // A short message whole in the input (every 'f' message when many arrive at once) is
        // copied in two blocks: the byte loops below cost more than the rest of decoding an
        // 8-byte frame. Longer ones (and split ones) take the loops.
        if (filled_ == 0 && input.size() >= header_size && input[1] <= fast_copy_size - header_size &&
            input.size() - header_size >= input[1]) {
            filled_ = header_size + input[1];
            detail::copy_bytes<fast_copy_size>(buffer_.data(), input.data(), filled_);
            if (const ProtocolError e = check_header(input[0], input[1]); e != ProtocolError::none) {
                filled_ = header_size;
                return header_failure(e, offset_, header_size);
            }
            return complete(filled_, out);
        }
        // Otherwise the header, then the payload, into one message buffer so any split works.
        while (filled_ < header_size && used < input.size()) {
            buffer_[filled_++] = input[used++];
            if (filled_ == header_size) {
                if (const ProtocolError e = check_header(buffer_[0], buffer_[1]); e != ProtocolError::none) {
                    return header_failure(e, offset_ + used - header_size, used);
                }
            }
        }
        if (filled_ < header_size) {
            offset_ += used;
            return {DecodeStatus::need_more, used};
        }
        const std::size_t total = header_size + buffer_[1];
        const std::size_t take = (total - filled_ < input.size() - used) ? total - filled_ : input.size() - used;
        for (std::size_t i = 0; i < take; ++i) {
            buffer_[filled_++] = input[used + i];
        }
        used += take;
        if (filled_ < total) {
            offset_ += used;
            return {DecodeStatus::need_more, used};
        }
        return complete(used, out);
    }

private:
    // The buffer holds a whole message whose last byte was the `used`-th of this call's input.
    template <std::size_t PayloadCapacity>
    [[nodiscard]] constexpr DecodeResult complete(std::size_t used, BasicMessage<PayloadCapacity>& out) {
        const std::size_t total = filled_;
        if (const ProtocolError e = parse(out); e != ProtocolError::none) {
            return fail(e, offset_ + used - total + header_size, used);
        }
        last_message_offset_ = offset_ + used - total;
        offset_ += used;
        filled_ = 0;
        return {DecodeStatus::complete, used};
    }

    // Blames the prefix (at stream offset `prefix_at`) for a wrong message kind, the length
    // byte after it for a wrong size.
    [[nodiscard]] constexpr DecodeResult header_failure(ProtocolError e, std::uint64_t prefix_at, std::size_t used) {
        const bool prefix_fault = e == ProtocolError::unknown_prefix || e == ProtocolError::not_allowed_before_agreement ||
                                  e == ProtocolError::not_allowed_in_version_1 ||
                                  e == ProtocolError::not_allowed_after_agreement;
        return fail(e, prefix_at + (prefix_fault ? 0 : 1), used);
    }

    // Validates what the two header bytes alone can tell.
    [[nodiscard]] constexpr ProtocolError check_header(std::uint8_t p, std::uint8_t n) const {
        if (p == prefix::version) {
            if (mode_ != DecoderMode::negotiating) {
                return ProtocolError::not_allowed_after_agreement;
            }
            return n == 4 ? ProtocolError::none : ProtocolError::bad_version_length;
        }
        switch (mode_) {
        case DecoderMode::negotiating: return ProtocolError::not_allowed_before_agreement;
        case DecoderMode::version1:
            if (!Profile::version_1 || p != prefix::data_v1) {
                return ProtocolError::not_allowed_in_version_1;
            }
            return (n == linux_can_frame_size || n == linux_canfd_frame_size) ? ProtocolError::none
                                                                              : ProtocolError::bad_data_length;
        case DecoderMode::version2: break;
        }
        switch (p) {
        case prefix::features: return n == 4 ? ProtocolError::none : ProtocolError::bad_features_length;
        case prefix::ping:
        case prefix::pong: return n == 4 ? ProtocolError::none : ProtocolError::bad_ping_length;
        case prefix::frame: return (n >= 6 && n <= 6 + 4 + 8 + max_fd_length) ? ProtocolError::none : ProtocolError::bad_frame_length;
        case prefix::subscribe:
            return (n >= 1 && (n - 1) % wire_filter::entry_size == 0) ? ProtocolError::none : ProtocolError::bad_subscribe_length;
        case prefix::close: return n >= 1 ? ProtocolError::none : ProtocolError::bad_close_length;
        case prefix::bus: return (n >= 1 && n <= max_bus_name) ? ProtocolError::none : ProtocolError::bad_bus_length;
        case prefix::ack:
        case prefix::resume_accepted: return n == 4 ? ProtocolError::none : ProtocolError::bad_ack_length;
        case prefix::resume_request: return n == 12 ? ProtocolError::none : ProtocolError::bad_resume_length;
        case prefix::session_token: return n == 8 ? ProtocolError::none : ProtocolError::bad_token_length;
        default: return is_optional_prefix(p) ? ProtocolError::none : ProtocolError::unknown_prefix;
        }
    }

    template <std::size_t PayloadCapacity>
    [[nodiscard]] constexpr ProtocolError parse(BasicMessage<PayloadCapacity>& out) const {
        const std::uint8_t p = buffer_[0];
        const std::span<const std::uint8_t> payload(buffer_.data() + header_size, buffer_[1]);
        out.prefix = p;
        out.has_sequence = false;
        out.has_timestamp = false;
        out.payload_size = 0;
        switch (p) {
        case prefix::version:
            out.type = MessageType::version;
            out.value = detail::load_be32(payload.data());
            return ProtocolError::none;
        case prefix::data_v1:
            if constexpr (Profile::version_1) {  // check_header lets 'd' through only then
                out.type = MessageType::data_v1;
                const LinuxFrameResult r = from_linux_bytes(payload);
                out.frame = r.frame;
                return r.problem == FrameProblem::none ? ProtocolError::none : ProtocolError::invalid_frame;
            }
            break;
        case prefix::frame: out.type = MessageType::frame; return parse_frame_payload(payload, out);
        case prefix::features:
        case prefix::ping:
        case prefix::pong:
            out.type = p == prefix::features ? MessageType::features : p == prefix::ping ? MessageType::ping : MessageType::pong;
            out.value = detail::load_be32(payload.data());
            return ProtocolError::none;
        case prefix::ack:
        case prefix::resume_accepted:
            out.type = p == prefix::ack ? MessageType::ack : MessageType::resume_accepted;
            out.value = detail::load_be32(payload.data());
            return ProtocolError::none;
        default: break;
        }
        out.type = p == prefix::subscribe        ? MessageType::subscribe
                   : p == prefix::close          ? MessageType::close
                   : p == prefix::bus            ? MessageType::bus
                   : p == prefix::resume_request ? MessageType::resume_request
                   : p == prefix::session_token  ? MessageType::session_token
                                                 : MessageType::skipped;
        if (p == prefix::resume_request) {
            out.value = detail::load_be32(payload.data() + 8);  // the token stays in the payload
        }
        out.payload_size = static_cast<std::uint8_t>(payload.size());
        if constexpr (PayloadCapacity > 0) {
            for (std::size_t i = 0; i < payload.size() && i < PayloadCapacity; ++i) {
                out.payload[i] = payload[i];
            }
        }
        if (p == prefix::bus) {
            for (const std::uint8_t c : payload) {
                if (!is_bus_name_char(c)) {
                    return ProtocolError::bad_bus_name;
                }
            }
        }
        if (p == prefix::session_token && detail::load_be64(payload.data()) == 0) {
            return ProtocolError::zero_token;
        }
        return p == prefix::subscribe ? check_subscribe_payload(payload) : ProtocolError::none;
    }

    [[nodiscard]] constexpr DecodeResult fail(ProtocolError e, std::uint64_t at, std::size_t used) {
        error_ = e;
        error_offset_ = at;
        offset_ += used;
        return {DecodeStatus::error, used};
    }

    static constexpr std::size_t fast_copy_size = 128;  // at least the largest 'f' message (84 bytes)
    std::array<std::uint8_t, max_message_size> buffer_{};
    std::size_t filled_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t error_offset_ = 0;
    std::uint64_t last_message_offset_ = 0;
    ProtocolError error_ = ProtocolError::none;
    DecoderMode mode_;
};

using Decoder = BasicDecoder<FullProfile>;

}  // namespace tcpcan
