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

template <class SessionT>
class SessionPeer final : public Peer {
public:
    explicit constexpr SessionPeer(SessionT& session) : session_(&session) {}

    [[nodiscard]] constexpr SessionT& session() { return *session_; }

    [[nodiscard]] bool ready() const override { return session_->state() == SessionState::established; }
    void offer(const Frame& frame, std::uint64_t now) override {
        (void)session_->send_frame(frame, now);  // every outcome is counted in the session's stats
    }
    [[nodiscard]] bool has_room(std::size_t frames) const override {
        return session_->output_room() >= frames * max_frame_message_size;
    }
    [[nodiscard]] const Frame* peek_for_bus(std::uint64_t now, std::uint64_t wall_clock_us) override {
        return session_->peek_bus_frame(now, wall_clock_us);
    }
    void pop_for_bus() override { session_->pop_bus_frame(); }

private:
    SessionT* session_;
};

}  // namespace tcpcan
