// The wire dialects the daemon speaks, the --listen specification, and the Link factory:
// the one place that turns "a new connection on a listener of dialect D, for bus B" into
// a Link. The bridge knows no dialect beyond this file (except the tcpcan client's
// fallback to version 1); each dialect wires its Link into make_link() and
// dialect_built() in dialect.cpp, in its own marked block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <tcpcan/filter.hpp>
#include <tcpcan/session.hpp>

#include "link.hpp"
#include "log.hpp"
#include "transport.hpp"

namespace tcpcan::linux_port {

enum class Dialect : std::uint8_t {
    tcpcan,          // tcpcan versions 1 and 2 (PROTOCOL.md)
    socketcand,      // socketcand's ASCII protocol (raw and control mode)
    cannelloni,      // cannelloni over TCP
    cannelloni_udp,  // cannelloni over UDP
    canip,           // canip_peer 4.1 (and 4.0)
};

inline constexpr Dialect all_dialects[] = {Dialect::tcpcan, Dialect::socketcand, Dialect::cannelloni,
                                           Dialect::cannelloni_udp, Dialect::canip};

// "tcpcan", "socketcand", "cannelloni", "cannelloni-udp", "canip": as on the command line.
[[nodiscard]] std::string_view dialect_name(Dialect dialect);
// "tcpcan, socketcand, cannelloni, cannelloni-udp or canip": for error messages.
[[nodiscard]] std::string dialect_list();
// Exact, case-sensitive names as dialect_name() gives them.
[[nodiscard]] std::optional<Dialect> parse_dialect(std::string_view text);
// The port a dialect's own tools use by default (tcpcan 20010, socketcand 29536, ...).
[[nodiscard]] std::uint16_t default_port(Dialect dialect);
// Whether the dialect carries its bytes over UDP (no accept(): one socket, datagrams).
[[nodiscard]] bool is_datagram(Dialect dialect);
// Whether a peer of this dialect names the bus it wants (socketcand `< open BUS >`,
// tcpcan's bus request). The others get the listener's bus (or the first).
[[nodiscard]] bool peer_chooses_bus(Dialect dialect);

// True when this build has a Link for `dialect`; else `why` says so, for a start-up error.
[[nodiscard]] bool dialect_built(Dialect dialect, Role role, std::string& why);

// One --listen DIALECT@[ADDR:]PORT[:BUS]:
//   tcpcan@20010, socketcand@127.0.0.1:29536, canip@3334:can1, canip@[::1]:3334:can1
// A PORT alone listens on the server's default address (--bind, or --host in the
// original form). When the part before the first ':' is all digits it is the port and
// the rest is BUS; otherwise it is ADDR, then PORT, then optionally ':' BUS. An IPv6
// address goes in brackets. BUS is the rest, as given to --can (it may hold ':', as
// fd:3,4 does).
struct ListenSpec {
    Dialect dialect = Dialect::tcpcan;
    std::string address;  // empty: the server's default address
    std::uint16_t port = 0;
    std::string bus;      // empty: not tied (the peer chooses, or the first bus)
    std::string text;     // as given, for messages

    [[nodiscard]] bool operator==(const ListenSpec&) const = default;
};

struct ListenParse {
    bool ok = false;
    ListenSpec spec;
    std::string error;  // "--listen 'x': ..." naming what is wrong
};

[[nodiscard]] ListenParse parse_listen_spec(std::string_view text);

// Everything a Link needs to start, whatever its dialect.
struct LinkSetup {
    Dialect dialect = Dialect::tcpcan;
    std::string name;                     // the peer, for logs ("127.0.0.1:5000")
    SessionOptions session{};             // role, versions, features, timers (tcpcan; others take the timers)
    const FilterSetBase* subscription = nullptr;  // client: asked of the server (tcpcan version 2)
    const BusDirectory* buses = nullptr;  // the daemon's buses, for a peer that chooses one
    std::optional<std::size_t> bus;       // tied to this bus (a listener's, or the client's)
    std::string remote_bus;               // client: the bus asked of the server by name
    LogLimiter* limiter = nullptr;
    std::uint64_t now = 0;
    // Each dialect's own settings go below its line (one block each keeps merges apart).
    // socketcand:
    std::uint64_t socketcand_ok_hold_us = 30'000;  // what follows an `< ok >` waits this long

    // cannelloni:
    std::string cannelloni_peer;  // server, TCP: only this address may connect (--cannelloni-peer); empty = any
    int fd = -1;                  // the connection's socket, to check its peer address

    // canip:
    // tcpcan: also serve canip_peer on the same port, told apart by the first bytes
    // (detect_link.hpp; canip_peer's command line, plaintext only).
    bool detect_canip = false;

};

struct MadeLink {
    std::unique_ptr<Link> link;  // nullptr when `error` says why
    std::string error;
};

// The Link for a new connection (server: accepted on a listener; client: connected).
[[nodiscard]] MadeLink make_link(const LinkSetup& setup);

// A datagram dialect (is_datagram) has no connection: one socket per listener address (or
// the client's connected socket) gets one Link and the socket's Transport, for good.
struct DatagramPeer {
    bool connected = false;         // client: a connected socket; the kernel checks the sender
    std::string fixed_peer;         // server: "ADDR[:PORT]" (--cannelloni-peer); empty = the first sender
    std::uint64_t flush_timeout_us = 0;  // 0 = the dialect's default
};

struct MadeDatagram {
    std::unique_ptr<Link> link;  // nullptr when `error` says why
    std::unique_ptr<Transport> transport;
    std::string error;
};

[[nodiscard]] MadeDatagram make_datagram_link(const LinkSetup& setup, int fd, const DatagramPeer& peer);

}  // namespace tcpcan::linux_port
