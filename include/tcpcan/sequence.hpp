// Per-frame sequence numbers (u32, wrapping at 2^32). The sender numbers frames as
// they enter the session, so frames dropped before sending show up as gaps here.
#pragma once

#include <cstdint>

namespace tcpcan {

enum class SequenceVerdict : std::uint8_t { in_order, gap, duplicate, reordered };

struct SequenceResult {
    SequenceVerdict verdict;
    std::uint32_t missing;  // frames skipped over, for a gap
};

struct SequenceCounters {
    std::uint64_t received = 0;
    std::uint64_t lost = 0;  // frames never seen (sum of gap sizes, less late arrivals)
    std::uint64_t gaps = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t reordered = 0;  // late frames that filled an earlier gap
};

class SequenceTracker {
public:
    // Numbers "ahead" of the expected one by less than 2^31 are gaps; others are behind.
    [[nodiscard]] constexpr SequenceResult on_frame(std::uint32_t sequence) {
        ++counters_.received;
        const std::uint32_t ahead = sequence - expected_;
        if (ahead < 0x8000'0000u) {
            advance(ahead + 1);
            seen_ |= 1;
            expected_ = sequence + 1;
            if (ahead == 0) {
                return {SequenceVerdict::in_order, 0};
            }
            counters_.lost += ahead;
            ++counters_.gaps;
            return {SequenceVerdict::gap, ahead};
        }
        const std::uint32_t behind = expected_ - sequence;  // 1 = the last one seen
        if (behind <= window_bits) {
            const std::uint64_t bit = std::uint64_t{1} << (behind - 1);
            if ((seen_ & bit) == 0) {
                seen_ |= bit;
                --counters_.lost;
                ++counters_.reordered;
                return {SequenceVerdict::reordered, 0};
            }
        }
        // Seen already, or too old to tell: treat it as a repeat.
        ++counters_.duplicates;
        return {SequenceVerdict::duplicate, 0};
    }

    [[nodiscard]] constexpr const SequenceCounters& counters() const { return counters_; }
    [[nodiscard]] constexpr std::uint32_t expected() const { return expected_; }

    // Starts expecting `next` (tests use it to begin near the wrap).
    constexpr void reset(std::uint32_t next = 0) {
        *this = SequenceTracker{};
        expected_ = next;
        seen_ = ~std::uint64_t{0};  // nothing before the start counts as late
    }

private:
    static constexpr std::uint32_t window_bits = 64;

    constexpr void advance(std::uint32_t by) { seen_ = by >= window_bits ? 0 : seen_ << by; }

    std::uint32_t expected_ = 0;
    std::uint64_t seen_ = ~std::uint64_t{0};  // bit i: expected_-1-i was received
    SequenceCounters counters_{};
};

}  // namespace tcpcan
