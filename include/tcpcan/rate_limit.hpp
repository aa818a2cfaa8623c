// A token bucket: at most `burst` frames at once and `frames_per_second` on average, with
// time as an input (µs, any monotonic origin). Integer arithmetic only, no clock, no heap.
//
// In any interval of T seconds a bucket lets through at most burst + frames_per_second * T
// frames. It starts full, so the first `burst` frames pass at once.
#pragma once

#include <cstdint>

namespace tcpcan {

class TokenBucket {
public:
    /// A bucket that never refuses (frames_per_second == 0 means unlimited).
    constexpr TokenBucket() = default;

    /// `frames_per_second` > 0 sets a limit; `burst` (clamped to at least 1) is how many
    /// frames may pass back to back after a quiet spell.
    constexpr TokenBucket(std::uint32_t frames_per_second, std::uint32_t burst)
        : rate_{frames_per_second},
          capacity_{static_cast<std::uint64_t>(burst == 0 ? 1 : burst) * unit},
          credit_{capacity_} {}

    [[nodiscard]] constexpr bool limited() const { return rate_ != 0; }

    /// Takes one frame's token at `now_us`; false (the frame is refused) when the bucket is
    /// empty. `now_us` must not go backwards; a smaller value counts as no time passed.
    [[nodiscard]] constexpr bool try_take(std::uint64_t now_us) {
        if (rate_ == 0) {
            return true;
        }
        refill(now_us);
        if (credit_ < unit) {
            return false;
        }
        credit_ -= unit;
        return true;
    }

private:
    // One frame costs one second of rate, in (frames/s · µs) units: no division needed.
    static constexpr std::uint64_t unit = 1'000'000;

    constexpr void refill(std::uint64_t now_us) {
        if (!started_) {
            started_ = true;
            last_us_ = now_us;
            return;
        }
        if (now_us <= last_us_) {
            return;
        }
        const std::uint64_t elapsed = now_us - last_us_;
        last_us_ = now_us;
        const std::uint64_t room = capacity_ - credit_;
        // Compare before multiplying, so a long quiet spell cannot overflow.
        if (elapsed >= room / rate_ + 1) {
            credit_ = capacity_;
        } else {
            credit_ += elapsed * rate_;
            if (credit_ > capacity_) {
                credit_ = capacity_;
            }
        }
    }

    std::uint32_t rate_ = 0;
    std::uint64_t capacity_ = unit;
    std::uint64_t credit_ = unit;
    std::uint64_t last_us_ = 0;
    bool started_ = false;
};

}  // namespace tcpcan
