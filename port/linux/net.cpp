#include "net.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>

namespace tcpcan::linux_port {

AddrInfo::~AddrInfo() {
    if (list != nullptr) {
        freeaddrinfo(list);
    }
}

NetResult resolve(const std::string& host, const std::string& service, int socktype, int flags, AddrInfo& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = flags;
    const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.empty() ? nullptr : service.c_str(),
                               &hints, &out.list);
    if (rc != 0) {
        return {false, "cannot resolve host '" + host + "': " + gai_strerror(rc)};
    }
    return {true, {}};
}

void configure_connection(int fd) {
    const int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    const int idle = 10, interval = 5, count = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

NetResult listen_tcp(const std::string& host, std::uint16_t port, std::vector<int>& fds) {
    AddrInfo info;
    if (NetResult r = resolve(host, std::to_string(port), SOCK_STREAM, AI_PASSIVE, info); !r.ok) {
        return r;
    }
    std::string last_error;
    for (addrinfo* a = info.list; a != nullptr; a = a->ai_next) {
        const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        const int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (a->ai_family == AF_INET6) {
            // Each family gets its own socket, so both can bind the same port.
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        }
        sockaddr_storage address{};
        std::memcpy(&address, a->ai_addr, a->ai_addrlen);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
            const int e = errno;
            close(fd);
            last_error = "cannot bind " + describe_address(address) + ": " + std::strerror(e) +
                         (e == EADDRINUSE ? " (is another server running on this port?)" : "");
            continue;
        }
        if (listen(fd, 64) != 0) {
            last_error = std::strerror(errno);
            close(fd);
            continue;
        }
        fds.push_back(fd);
    }
    if (fds.empty()) {
        return {false, last_error.empty() ? "no address to listen on" : last_error};
    }
    return {true, {}};
}

NetResult start_connect(const std::string& host, std::uint16_t port, int& fd, bool& in_progress) {
    AddrInfo info;
    if (NetResult r = resolve(host, std::to_string(port), SOCK_STREAM, AI_ADDRCONFIG, info); !r.ok) {
        return r;
    }
    std::string last_error = "no address for '" + host + "'";
    for (addrinfo* a = info.list; a != nullptr; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        configure_connection(fd);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            in_progress = false;
            return {true, {}};
        }
        if (errno == EINPROGRESS) {
            in_progress = true;
            return {true, {}};
        }
        sockaddr_storage address{};
        std::memcpy(&address, a->ai_addr, a->ai_addrlen);
        last_error = "cannot connect to " + describe_address(address) + ": " + std::strerror(errno);
        close(fd);
        fd = -1;
    }
    return {false, last_error};
}

NetResult finish_connect(int fd) {
    int error = 0;
    socklen_t size = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) {
        error = errno;
    }
    if (error != 0) {
        return {false, std::strerror(error)};
    }
    return {true, {}};
}

std::string describe_address(const sockaddr_storage& address) {
    // snprintf into a fixed buffer: GCC 12 at -O3 reports a false -Wrestrict inside
    // std::string's operator+ for the concatenation this used to be.
    char host[INET6_ADDRSTRLEN] = "?";
    char text[INET6_ADDRSTRLEN + sizeof "[]:65535"] = "?";
    if (address.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(address);
        inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
        std::snprintf(text, sizeof text, "%s:%u", host, static_cast<unsigned>(ntohs(in.sin_port)));
    } else if (address.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address);
        inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
        std::snprintf(text, sizeof text, "[%s]:%u", host, static_cast<unsigned>(ntohs(in6.sin6_port)));
    }
    return text;
}

std::string peer_name(int fd) {
    sockaddr_storage address{};
    socklen_t size = sizeof address;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
        return "?";
    }
    return describe_address(address);
}

std::string local_name(int fd) {
    sockaddr_storage address{};
    socklen_t size = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
        return "?";
    }
    return describe_address(address);
}

}  // namespace tcpcan::linux_port
