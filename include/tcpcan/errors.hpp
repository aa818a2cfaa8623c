// Every reason the core refuses a peer's bytes. A peer's bad input is not a
// program error: it is reported with one of these and closes that connection only.
#pragma once

#include <cstdint>

namespace tcpcan {

enum class ProtocolError : std::uint8_t {
    none,
    // Framing and message validation (the decoder).
    unknown_prefix,
    not_allowed_before_agreement,
    not_allowed_in_version_1,
    not_allowed_after_agreement,
    bad_version_length,
    bad_data_length,
    bad_frame_length,
    bad_features_length,
    bad_ping_length,
    bad_subscribe_length,
    bad_close_length,
    invalid_frame,
    bad_subscribe_op,
    bad_filter_entry,
    bad_ack_length,
    bad_resume_length,
    bad_token_length,
    zero_token,
    // Negotiation and session rules.
    peer_raised_version,
    negotiation_rounds_exceeded,
    no_common_version,
    features_repeated,
    frame_before_features,
    frame_fields_mismatch,
    subscription_too_large,
    message_before_features,
    // The bus request ('b', feature::bus).
    bad_bus_length,
    bad_bus_name,
    unexpected_bus_message,
    resume_not_agreed,
    unexpected_resume_message,
    bad_ack,
};

[[nodiscard]] constexpr const char* describe(ProtocolError error) {
    switch (error) {
    case ProtocolError::none: return "no error";
    case ProtocolError::unknown_prefix: return "unknown message prefix";
    case ProtocolError::not_allowed_before_agreement: return "message other than 'v' before version agreement";
    case ProtocolError::not_allowed_in_version_1: return "message other than 'd' in a version-1 session";
    case ProtocolError::not_allowed_after_agreement: return "'v' message after version agreement";
    case ProtocolError::bad_version_length: return "'v' payload is not exactly 4 bytes";
    case ProtocolError::bad_data_length: return "'d' payload is neither 16 (can_frame) nor 72 (canfd_frame) bytes";
    case ProtocolError::bad_frame_length: return "'f' payload length does not match its flags and data length";
    case ProtocolError::bad_features_length: return "'h' payload is not exactly 4 bytes";
    case ProtocolError::bad_ping_length: return "'p'/'q' payload is not exactly 4 bytes";
    case ProtocolError::bad_subscribe_length: return "'s' payload is not 1 + 9*k bytes";
    case ProtocolError::bad_close_length: return "'c' payload is empty";
    case ProtocolError::invalid_frame: return "frame content is invalid";
    case ProtocolError::bad_subscribe_op: return "'s' operation is neither 0 (replace) nor 1 (append)";
    case ProtocolError::bad_filter_entry: return "'s' filter entry is invalid";
    case ProtocolError::bad_ack_length: return "'k'/'a' payload is not exactly 4 bytes";
    case ProtocolError::bad_resume_length: return "'r' payload is not exactly 12 bytes";
    case ProtocolError::bad_token_length: return "'t' payload is not exactly 8 bytes";
    case ProtocolError::zero_token: return "'t' token is 0";
    case ProtocolError::peer_raised_version: return "peer proposed a version above an earlier proposal";
    case ProtocolError::negotiation_rounds_exceeded: return "version negotiation did not converge";
    case ProtocolError::no_common_version: return "no protocol version in common";
    case ProtocolError::features_repeated: return "'h' features sent twice";
    case ProtocolError::frame_before_features: return "frame before the peer's 'h' features";
    case ProtocolError::frame_fields_mismatch: return "frame's sequence/timestamp fields differ from the agreed features";
    case ProtocolError::subscription_too_large: return "subscription has more entries than this side holds";
    case ProtocolError::message_before_features: return "message before the peer's 'h' features";
    case ProtocolError::bad_bus_length: return "'b' payload is not 1 to 64 bytes";
    case ProtocolError::bad_bus_name: return "'b' bus name holds a byte that is not printable ASCII (or a space)";
    case ProtocolError::unexpected_bus_message: return "'b' message not agreed, repeated, or not the bus requested";
    case ProtocolError::resume_not_agreed: return "resume message without the resume feature agreed";
    case ProtocolError::unexpected_resume_message: return "resume message out of place ('r' to a client, 'a'/'t' to a server, or twice)";
    case ProtocolError::bad_ack: return "acknowledgement of frames never sent";
    }
    return "unknown error";
}

}  // namespace tcpcan
