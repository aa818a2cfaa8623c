// The bridge: a bus port, the Router and the connections (one epoll loop, no threads).
// bridge.cpp composes them; the policy lives in the Router (include/tcpcan/router.hpp),
// the protocol in each Link (tcpcan_link.hpp), admission in admission.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <tcpcan/filter.hpp>
#include <tcpcan/message.hpp>

#include "dialect.hpp"
#include "policy.hpp"
#include "tls.hpp"

namespace tcpcan::linux_port {

struct BridgeConfig {
    bool serve = false;
    std::vector<std::string> can_interfaces;  // --can, in order ("-" = stdio, at most once); a client has one
    std::string host;           // server: the address bound; client: the server's
    std::uint16_t port = 20010;
    // Server: --listen entries; empty = tcpcan on host and port, as always.
    std::vector<ListenSpec> listen;
    // Client: the dialect spoken to the server (--dialect), and the bus asked for by name
    // (--remote-bus; tcpcan version 2 and dialects that name buses).
    Dialect dialect = Dialect::tcpcan;
    std::string remote_bus;
    // Each dialect's own options go below its line (one block each keeps merges apart).
    // socketcand:
    // Server: socketcand's discovery beacon (--beacon, --beacon-to), every 3 s a UDP datagram
    // naming the socketcand listeners and every bus (socketcand_beacon.hpp).
    bool beacon = false;
    std::string beacon_address = "255.255.255.255";
    std::uint16_t beacon_port = 42000;
    std::string beacon_description = "tcpcan";
    // --socketcand-ok-hold: what follows an `< ok >` waits this long (socketcand_link.hpp).
    std::uint64_t socketcand_ok_hold_us = 30'000;

    // cannelloni:
    // Datagram dialects (cannelloni-udp): a server's fixed peer "ADDR[:PORT]" (empty: the
    // first sender), and the flush timeout of packed frames (0: the dialect's default).
    std::string datagram_peer;
    std::uint64_t datagram_flush_us = 0;
    // Client of a datagram dialect: the local UDP port the peer sends to (0 = any).
    std::uint16_t datagram_local_port = 0;

    // canip:
    // canip_peer's command line (`tcpcan server|client`), plaintext: the default listener,
    // and a client without --dialect, also speak canip_peer, told apart by the first bytes.
    bool detect_canip = false;

    std::uint32_t max_version = highest_version;
    std::uint32_t min_version = 1;  // refuse to agree below this (no fallback to 1 when 2)
    std::uint32_t features = feature::sequence | feature::resume;
    std::uint64_t resume_window_us = 30'000'000;  // server: a disconnected session waits this long for its client (0 = no resume)
    FilterSet<512> forward;         // which bus frames this side forwards (allow + deny entries)
    FilterSet<64> subscription;     // asked of the server (client, version 2)
    FilterSet<512> allow_transmit;  // server: only matching client frames reach the bus (empty = all)
    std::uint64_t heartbeat_us = 0;
    std::uint64_t dead_after_us = 0;
    std::uint64_t max_age_us = 0;
    std::uint64_t negotiation_timeout_us = 5'000'000;
    std::uint64_t stats_interval_us = 0;
    std::uint64_t evict_idle_us = 2'000'000;  // a full server closes a session silent this long for a newcomer
    std::uint64_t stall_after_us = 2'000'000;
    std::uint64_t latency_budget_us = 0;  // after a short bus read, wait this long before the next (0 = at once)  // a peer with no room this long no longer paces stdin
    int max_clients = 16;
    int max_pending = 64;  // connections that have not agreed yet
    bool read_only = false;
    bool retry = true;
    // TLS on every connection when enabled() (the role is set from `serve`). A server
    // bounds its handshakes under way by max_pending and negotiation_timeout_us.
    TlsOptions tls;
    // Server with TLS: per-identity policies (--policy-file); an identity without a
    // section (and no [*]) gets the server-wide policy (--read-only, allow_transmit).
    std::vector<ClientPolicy> policies;
};

// Runs until SIGINT/SIGTERM (exit status 0), or a fatal error (1, with a message).
int run_bridge(const BridgeConfig& config);

}  // namespace tcpcan::linux_port
