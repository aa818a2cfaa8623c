// A fixed-capacity FIFO with its storage inside the object: no heap, O(1) push/pop.
#pragma once

#include <array>
#include <cstddef>

namespace tcpcan::detail {

template <class T, std::size_t Capacity>
class RingQueue {
    static_assert(Capacity > 0, "a queue needs room for at least one element");

public:
    [[nodiscard]] constexpr bool push(const T& value) {
        if (full()) {
            return false;
        }
        slots_[(head_ + count_) % Capacity] = value;
        ++count_;
        return true;
    }
    // The slot behind the last element, now part of the queue, for the caller to fill in
    // place (no temporary to copy); null when full. It holds whatever it held before.
    [[nodiscard]] constexpr T* push_slot() {
        if (full()) {
            return nullptr;
        }
        T* slot = &slots_[(head_ + count_) % Capacity];
        ++count_;
        return slot;
    }
    [[nodiscard]] constexpr T& front() { return slots_[head_]; }
    [[nodiscard]] constexpr const T& front() const { return slots_[head_]; }
    // The element `i` places behind the front (i < size()).
    [[nodiscard]] constexpr T& at(std::size_t i) { return slots_[(head_ + i) % Capacity]; }
    [[nodiscard]] constexpr const T& at(std::size_t i) const { return slots_[(head_ + i) % Capacity]; }
    constexpr void pop() {
        if (count_ > 0) {
            head_ = (head_ + 1) % Capacity;
            --count_;
        }
    }
    constexpr void clear() {
        head_ = 0;
        count_ = 0;
    }
    [[nodiscard]] constexpr std::size_t size() const { return count_; }
    [[nodiscard]] constexpr bool empty() const { return count_ == 0; }
    [[nodiscard]] constexpr bool full() const { return count_ == Capacity; }
    [[nodiscard]] static constexpr std::size_t capacity() { return Capacity; }

private:
    std::array<T, Capacity> slots_{};
    std::size_t head_ = 0;
    std::size_t count_ = 0;
};

}  // namespace tcpcan::detail
