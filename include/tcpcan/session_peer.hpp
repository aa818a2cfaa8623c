// A tcpcan Session as a Router peer: the adapter between the Router's frames and the
// session's queues. The session stays the caller's; the adapter holds only a pointer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "encoder.hpp"
#include "frame.hpp"
#include "peer.hpp"
#include "session.hpp"

namespace tcpcan {

/// The Router calls a SessionPeer<S, StaticPeer> directly, without virtual calls: the
/// one-peer case of a gateway (bridge_step) pays for no interface it does not use.
struct StaticPeer {};

/// Interface = Peer: a peer among others of any kind (virtual); StaticPeer: on its own.
template <class SessionT, class Interface = Peer>
class SessionPeer final : public Interface {
public:
    explicit constexpr SessionPeer(SessionT& session) : session_(&session) {}

    [[nodiscard]] constexpr SessionT& session() { return *session_; }

    [[nodiscard]] bool ready() const { return session_->state() == SessionState::established; }
    void offer(const Frame& frame, std::uint64_t now) {
        (void)session_->send_frame(frame, now);  // every outcome is counted in the session's stats
    }
    [[nodiscard]] bool has_room(std::size_t frames) const {
        return session_->output_room() >= frames * max_frame_message_size;
    }
    [[nodiscard]] const Frame* peek_for_bus(std::uint64_t now, std::uint64_t wall_clock_us) {
        // A copy: a gateway profile's queue holds compact classic frames, not Frame values.
        return session_->peek_bus_frame(now, current_, wall_clock_us) ? &current_ : nullptr;
    }
    void pop_for_bus() { session_->pop_bus_frame(); }

private:
    SessionT* session_;
    Frame current_{};
};

}  // namespace tcpcan
