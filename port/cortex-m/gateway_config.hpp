// The choices of the reference gateway in one place: the session's profile and
// capacities, and its timers. tests/core measures this very type on Cortex-M0+.
#pragma once

#include <cstdint>

#include <tcpcan/session.hpp>

namespace gateway {

// 384 bytes of output (18 eight-byte frames with sequence numbers waiting for the line,
// beside the 24-byte reserve for control messages), 16 frames waiting for the bus, the 28
// subscription entries PROTOCOL.md requires, 4 events.
using GatewaySession = tcpcan::Session<384, 16, 28, 4, tcpcan::GatewayProfile>;

inline constexpr std::uint64_t heartbeat_us = 1'000'000;
inline constexpr std::uint64_t dead_after_us = 3'000'000;

inline tcpcan::SessionOptions session_options() {
    tcpcan::SessionOptions options;
    options.role = tcpcan::Role::server;
    options.features = tcpcan::feature::sequence;
    options.heartbeat_interval_us = heartbeat_us;
    options.dead_after_us = dead_after_us;
    // A serial line has no connection to time out: before agreement the session holds
    // nothing, and from agreement on the dead-peer timer ends a silent session.
    options.negotiation_timeout_us = 0;
    options.max_frame_age_us = 500'000;  // a frame that waited half a second for the bus is stale
    return options;
}

}  // namespace gateway
