// Version negotiation exactly as the tcpcan protocol describes it: the client
// proposes, the other side acknowledges by echoing or proposes lower, 0 means no
// agreement, and a party never answers a proposal equal to its own earlier one.
#pragma once

#include <cstdint>

#include "errors.hpp"

namespace tcpcan {

enum class Role : std::uint8_t { client, server };

enum class NegotiationState : std::uint8_t { idle, waiting, agreed, failed };

struct NegotiationConfig {
    std::uint32_t min_version = 1;
    std::uint32_t max_version = 2;
    std::uint8_t max_rounds = 8;  // peer 'v' messages accepted before giving up
};

// What to do after an input: send `send_version` if `send` is true.
struct NegotiationStep {
    bool send = false;
    std::uint32_t send_version = 0;
    ProtocolError error = ProtocolError::none;  // set when the state became failed by the peer's fault
};

class VersionNegotiator {
public:
    constexpr VersionNegotiator(Role role, NegotiationConfig config) : role_(role), config_(config) {}

    // The client's opening proposal: its highest version. A server waits.
    [[nodiscard]] constexpr NegotiationStep start() {
        state_ = NegotiationState::waiting;
        if (role_ == Role::server) {
            return {};
        }
        return propose(config_.max_version);
    }

    [[nodiscard]] constexpr NegotiationStep on_peer_version(std::uint32_t version) {
        if (state_ != NegotiationState::waiting) {
            return fail(ProtocolError::not_allowed_after_agreement);
        }
        if (++rounds_ > config_.max_rounds) {
            return fail(ProtocolError::negotiation_rounds_exceeded);
        }
        if (version == 0) {
            state_ = NegotiationState::failed;
            peer_gave_up_ = true;
            return {false, 0, ProtocolError::no_common_version};
        }
        if (last_proposal_ != 0) {
            if (version == last_proposal_) {
                return agree(version, false);  // the peer acknowledged us: no answer
            }
            if (version > last_proposal_) {
                return fail(ProtocolError::peer_raised_version);
            }
        }
        if (version >= config_.min_version && version <= config_.max_version) {
            return agree(version, true);  // acknowledge by echoing
        }
        if (version > config_.max_version) {
            return propose(config_.max_version);
        }
        // Below our minimum: nothing in common. Say 0 so the peer knows, then end.
        state_ = NegotiationState::failed;
        return {true, 0, ProtocolError::no_common_version};
    }

    [[nodiscard]] constexpr NegotiationState state() const { return state_; }
    [[nodiscard]] constexpr std::uint32_t agreed_version() const { return agreed_; }
    [[nodiscard]] constexpr std::uint32_t last_proposal() const { return last_proposal_; }
    [[nodiscard]] constexpr bool peer_gave_up() const { return peer_gave_up_; }

    // The original tcpcan server hangs up on any proposal but 1 instead of proposing
    // lower. A client in that situation reconnects proposing 1 (see Session).
    [[nodiscard]] constexpr bool should_retry_with_version_1() const {
        return role_ == Role::client && state_ == NegotiationState::waiting && last_proposal_ > 1 &&
               config_.min_version <= 1;
    }

private:
    [[nodiscard]] constexpr NegotiationStep propose(std::uint32_t version) {
        last_proposal_ = version;
        return {true, version, ProtocolError::none};
    }
    [[nodiscard]] constexpr NegotiationStep agree(std::uint32_t version, bool echo) {
        state_ = NegotiationState::agreed;
        agreed_ = version;
        return {echo, version, ProtocolError::none};
    }
    [[nodiscard]] constexpr NegotiationStep fail(ProtocolError error) {
        state_ = NegotiationState::failed;
        return {false, 0, error};
    }

    Role role_;
    NegotiationConfig config_;
    NegotiationState state_ = NegotiationState::idle;
    std::uint32_t last_proposal_ = 0;
    std::uint32_t agreed_ = 0;
    std::uint8_t rounds_ = 0;
    bool peer_gave_up_ = false;
};

}  // namespace tcpcan
