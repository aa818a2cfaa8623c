// A rate limit in events per second with a burst allowance, driven by `now` (µs of any
// monotonic clock): the classic token bucket, in integer arithmetic and without a clock.
#pragma once

#include <cstdint>

namespace tcpcan {

class TokenBucket {
public:
    /// Unlimited: take() always succeeds.
    constexpr TokenBucket() = default;
    /// `per_second` events on average, up to `burst` at once (0 = one second's worth).
    constexpr TokenBucket(std::uint32_t per_second, std::uint32_t burst)
        : rate_(per_second), capacity_(static_cast<std::uint64_t>(burst != 0 ? burst : per_second) * unit) {}

    [[nodiscard]] constexpr bool unlimited() const { return rate_ == 0; }

    /// Takes one token if there is one; the bucket starts full at the first call.
    [[nodiscard]] constexpr bool take(std::uint64_t now) {
        if (rate_ == 0) {
            return true;
        }
        if (!started_) {
            started_ = true;
            level_ = capacity_;
        } else if (now > last_) {
            // µs × events/s = millionths of an event: the unit the level is kept in.
            const std::uint64_t elapsed = now - last_;
            const std::uint64_t to_full = (capacity_ - level_) / rate_ + 1;
            level_ = elapsed >= to_full ? capacity_ : level_ + elapsed * rate_;
            level_ = level_ > capacity_ ? capacity_ : level_;
        }
        last_ = now;
        if (level_ < unit) {
            return false;
        }
        level_ -= unit;
        return true;
    }

private:
    static constexpr std::uint64_t unit = 1'000'000;
    std::uint32_t rate_ = 0;
    bool started_ = false;
    std::uint64_t capacity_ = 0;
    std::uint64_t level_ = 0;
    std::uint64_t last_ = 0;
};

}  // namespace tcpcan
