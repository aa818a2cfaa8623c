// POSIX TCP sockets: resolving, listening, connecting, and the options every
// connection gets (non-blocking, TCP_NODELAY, keepalive).
#pragma once

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tcpcan::linux_port {

struct NetResult {
    bool ok = false;
    std::string error;  // a sentence naming what failed, for the log
};

// getaddrinfo's list, freed when this goes.
struct AddrInfo {
    addrinfo* list = nullptr;
    AddrInfo() = default;
    AddrInfo(const AddrInfo&) = delete;
    AddrInfo& operator=(const AddrInfo&) = delete;
    ~AddrInfo();
};

// The addresses of `host` (empty: any) for `service` (a port number as text), of both
// families, for sockets of `socktype` (SOCK_STREAM or SOCK_DGRAM); `flags` as getaddrinfo's.
NetResult resolve(const std::string& host, const std::string& service, int socktype, int flags, AddrInfo& out);

// Binds and listens on every address `host` resolves to (IPv4 and IPv6).
NetResult listen_tcp(const std::string& host, std::uint16_t port, std::vector<int>& fds);

// Starts a non-blocking connect to the first address `host` resolves to; `in_progress`
// is true when the result comes later (EPOLLOUT, then finish_connect).
NetResult start_connect(const std::string& host, std::uint16_t port, int& fd, bool& in_progress);
NetResult finish_connect(int fd);

// Non-blocking, close-on-exec, TCP_NODELAY, keepalive (idle 10 s, 3 probes 5 s apart).
void configure_connection(int fd);

// "127.0.0.1:4242" or "[::1]:4242".
std::string describe_address(const sockaddr_storage& address);
std::string peer_name(int fd);
std::string local_name(int fd);

}  // namespace tcpcan::linux_port
