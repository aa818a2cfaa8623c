#include "udp_net.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tcpcan::linux_port {

bool same_host(const sockaddr_storage& a, const sockaddr_storage& b) {
    if (a.ss_family != b.ss_family) {
        return false;
    }
    if (a.ss_family == AF_INET) {
        return std::memcmp(&reinterpret_cast<const sockaddr_in&>(a).sin_addr,
                           &reinterpret_cast<const sockaddr_in&>(b).sin_addr, sizeof(in_addr)) == 0;
    }
    if (a.ss_family == AF_INET6) {
        return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                           &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, sizeof(in6_addr)) == 0;
    }
    return false;
}

NetResult bind_udp(const std::string& host, std::uint16_t port, std::vector<int>& fds) {
    AddrInfo info;
    if (NetResult r = resolve(host, std::to_string(port), SOCK_DGRAM, AI_PASSIVE, info); !r.ok) {
        return r;
    }
    std::string last_error;
    for (addrinfo* a = info.list; a != nullptr; a = a->ai_next) {
        const int fd = socket(a->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        const int one = 1;
        if (a->ai_family == AF_INET6) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        }
        sockaddr_storage address{};
        std::memcpy(&address, a->ai_addr, a->ai_addrlen);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
            const int e = errno;
            close(fd);
            last_error = "cannot bind UDP " + describe_address(address) + ": " + std::strerror(e) +
                         (e == EADDRINUSE ? " (is another program using this port?)" : "");
            continue;
        }
        fds.push_back(fd);
    }
    if (fds.empty()) {
        return {false, last_error.empty() ? "no address to bind" : last_error};
    }
    return {true, {}};
}

NetResult connect_udp(const std::string& host, std::uint16_t port, std::uint16_t local_port, int& fd) {
    AddrInfo info;
    if (NetResult r = resolve(host, std::to_string(port), SOCK_DGRAM, AI_ADDRCONFIG, info); !r.ok) {
        return r;
    }
    std::string last_error = "no address for '" + host + "'";
    for (addrinfo* a = info.list; a != nullptr; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        if (local_port != 0) {
            // The peer (cannelloni) sends to a port it was told: ours must be fixed too.
            sockaddr_storage local{};
            local.ss_family = static_cast<sa_family_t>(a->ai_family);
            if (a->ai_family == AF_INET6) {
                reinterpret_cast<sockaddr_in6&>(local).sin6_port = htons(local_port);
            } else {
                reinterpret_cast<sockaddr_in&>(local).sin_port = htons(local_port);
            }
            if (bind(fd, reinterpret_cast<sockaddr*>(&local), a->ai_addrlen) != 0) {
                const int e = errno;
                last_error = "cannot bind UDP port " + std::to_string(local_port) + ": " + std::strerror(e) +
                             (e == EADDRINUSE ? " (is another program using this port?)" : "");
                close(fd);
                fd = -1;
                continue;
            }
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            return {true, {}};
        }
        sockaddr_storage address{};
        std::memcpy(&address, a->ai_addr, a->ai_addrlen);
        last_error = "cannot connect UDP to " + describe_address(address) + ": " + std::strerror(errno);
        close(fd);
        fd = -1;
    }
    return {false, last_error};
}

NetResult resolve_udp_peer(const std::string& text, sockaddr_storage& address, socklen_t& length, bool& has_port) {
    std::string host = text, port;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string::npos) {
            return {false, "'" + text + "': '[' without ']' around an IPv6 address"};
        }
        host = text.substr(1, close - 1);
        if (close + 1 < text.size()) {
            if (text[close + 1] != ':') {
                return {false, "'" + text + "': expected ':PORT' after ']'"};
            }
            port = text.substr(close + 2);
        }
    } else if (const std::size_t colon = text.find(':'); colon != std::string::npos) {
        if (text.find(':', colon + 1) != std::string::npos) {
            host = text;  // a bare IPv6 address
        } else {
            host = text.substr(0, colon);
            port = text.substr(colon + 1);
        }
    }
    if (host.empty()) {
        return {false, "'" + text + "': no address"};
    }
    has_port = !port.empty();
    if (has_port && (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
                     std::stoul(port) < 1 || std::stoul(port) > 65535)) {
        return {false, "'" + text + "': port '" + port + "' is not a number from 1 to 65535"};
    }
    AddrInfo info;
    if (NetResult r = resolve(host, has_port ? port : "0", SOCK_DGRAM, 0, info); !r.ok) {
        return r;
    }
    std::memcpy(&address, info.list->ai_addr, info.list->ai_addrlen);
    length = info.list->ai_addrlen;
    return {true, {}};
}

}  // namespace tcpcan::linux_port
