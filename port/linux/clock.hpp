// The two clocks the bridge reads: monotonic time for the session's `now`, wall time
// for frame timestamps (µs since the Unix epoch).
#pragma once

#include <cstdint>
#include <ctime>

namespace tcpcan::linux_port {

inline std::uint64_t monotonic_us() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

inline std::uint64_t wall_clock_us() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace tcpcan::linux_port
