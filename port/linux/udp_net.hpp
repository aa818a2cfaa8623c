// UDP sockets for datagram dialects (cannelloni-udp): a bound socket per address a server
// listens on, a connected socket for a client, and a peer address given as text.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "net.hpp"

namespace tcpcan::linux_port {

// Binds a non-blocking UDP socket on every address `host` resolves to (IPv4 and IPv6).
NetResult bind_udp(const std::string& host, std::uint16_t port, std::vector<int>& fds);

// A non-blocking UDP socket bound to `local_port` (0 = any) and connected to the first
// address `host` resolves to: the kernel then takes datagrams from that address and port only.
NetResult connect_udp(const std::string& host, std::uint16_t port, std::uint16_t local_port, int& fd);

// Whether two addresses are the same host (IPv4 or IPv6 address; the port is not compared).
[[nodiscard]] bool same_host(const sockaddr_storage& a, const sockaddr_storage& b);

// "ADDR" or "ADDR:PORT" or "[IPv6]:PORT" into an address; `has_port` says whether a port was given.
NetResult resolve_udp_peer(const std::string& text, sockaddr_storage& address, socklen_t& length, bool& has_port);

}  // namespace tcpcan::linux_port
