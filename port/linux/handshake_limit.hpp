// Bounds the TLS handshakes under way on one listener, in number and in time, so a flood
// of connections that never finish (or finish slowly) cannot hold every slot or keep the
// loop busy. Sans-IO: the loop passes `now` and keeps each connection's start time.
//
//   accept → if (!limit.try_begin()) close at once (counted in refused())
//            else remember started_us = now
//   each loop turn, for each handshaking connection:
//            if (limit.expired(started_us, now)) close it, log "did not finish within ..."
//   handshake done or connection closed while handshaking → limit.end()
//   sleep at most until the earliest deadline(started_us)
#pragma once

#include <cstddef>
#include <cstdint>

namespace tcpcan::linux_port {

class HandshakeLimit {
public:
    constexpr HandshakeLimit(std::size_t max_pending, std::uint64_t timeout_us)
        : max_pending_{max_pending}, timeout_us_{timeout_us} {}

    // Takes a slot for a new handshake; false (counted) when every slot is taken.
    [[nodiscard]] constexpr bool try_begin() {
        if (pending_ >= max_pending_) {
            ++refused_;
            return false;
        }
        ++pending_;
        return true;
    }

    // Gives the slot back (handshake done, failed, timed out or connection closed).
    constexpr void end() {
        if (pending_ > 0) {
            --pending_;
        }
    }

    // The handshake that began at `started_us` ran out of time at `now_us`; counted by the
    // caller when it closes the connection (expired() may be asked more than once).
    [[nodiscard]] constexpr bool expired(std::uint64_t started_us, std::uint64_t now_us) const {
        return now_us >= deadline(started_us);
    }
    [[nodiscard]] constexpr std::uint64_t deadline(std::uint64_t started_us) const { return started_us + timeout_us_; }

    [[nodiscard]] constexpr std::size_t pending() const { return pending_; }
    [[nodiscard]] constexpr std::size_t max_pending() const { return max_pending_; }
    [[nodiscard]] constexpr std::uint64_t timeout_us() const { return timeout_us_; }
    [[nodiscard]] constexpr std::uint64_t refused() const { return refused_; }

private:
    std::size_t max_pending_;
    std::uint64_t timeout_us_;
    std::size_t pending_ = 0;
    std::uint64_t refused_ = 0;
};

}  // namespace tcpcan::linux_port
