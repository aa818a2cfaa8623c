// When a client tries its server again: the first retry soon after a loss (a restarted
// server is back within a second), then exponential backoff with jitter up to a ceiling,
// so many clients that lost one server do not all knock at once. The delay starts over
// once a session has lived a while. Sans-IO: time and randomness are inputs.
#pragma once

#include <cstdint>

namespace tcpcan {

struct ReconnectOptions {
    std::uint64_t first_delay_us = 250'000;
    std::uint64_t max_delay_us = 30'000'000;
    std::uint64_t healthy_after_us = 10'000'000;  // a session this old resets the backoff
};

class ReconnectBackoff {
public:
    explicit constexpr ReconnectBackoff(const ReconnectOptions& options = {})
        : options_(options), ceiling_(options.first_delay_us) {}

    /// A session was established at `now`.
    constexpr void connected(std::uint64_t now) {
        connected_ = true;
        connected_at_ = now;
    }

    /// The connection failed or ended at `now`; returns the delay (µs) before the next
    /// attempt. `random` is any 32-bit random number: the delay is drawn from
    /// [ceiling/2, ceiling] ("equal jitter"), and the ceiling doubles after each try.
    [[nodiscard]] constexpr std::uint64_t next_delay(std::uint64_t now, std::uint32_t random) {
        if (connected_ && now - connected_at_ >= options_.healthy_after_us) {
            ceiling_ = options_.first_delay_us;
        }
        connected_ = false;
        const std::uint64_t half = ceiling_ / 2;
        const std::uint64_t delay = half + (((ceiling_ - half) * random) >> 32);
        ceiling_ = ceiling_ * 2 > options_.max_delay_us ? options_.max_delay_us : ceiling_ * 2;
        return delay;
    }

    /// The most the next delay can be.
    [[nodiscard]] constexpr std::uint64_t ceiling() const { return ceiling_; }

private:
    ReconnectOptions options_;
    std::uint64_t ceiling_;
    std::uint64_t connected_at_ = 0;
    bool connected_ = false;
};

}  // namespace tcpcan
