// The bridge: one epoll loop, no threads, moving frames between a bus port and TCP
// peers through tcpcan sessions.
#pragma once

#include <cstdint>
#include <string>

#include <tcpcan/filter.hpp>
#include <tcpcan/message.hpp>

namespace tcpcan::linux_port {

struct BridgeConfig {
    bool serve = false;
    std::string can_interface;  // "-" = stdio
    std::string host;           // server: the address bound; client: the server's
    std::uint16_t port = 20010;
    std::uint32_t max_version = highest_version;
    std::uint32_t features = feature::sequence;
    FilterSet<512> forward;       // which bus frames this side forwards (allow + deny entries)
    FilterSet<64> subscription;   // asked of the server (client, version 2)
    std::uint64_t heartbeat_us = 0;
    std::uint64_t dead_after_us = 0;
    std::uint64_t max_age_us = 0;
    std::uint64_t negotiation_timeout_us = 5'000'000;
    std::uint64_t stats_interval_us = 0;
    int max_clients = 16;
    bool read_only = false;
    bool retry = true;
};

// Runs until SIGINT/SIGTERM (exit status 0), or a fatal error (1, with a message).
int run_bridge(const BridgeConfig& config);

}  // namespace tcpcan::linux_port
