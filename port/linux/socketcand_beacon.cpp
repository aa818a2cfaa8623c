#include "socketcand_beacon.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <tcpcan/dialect/socketcand.hpp>

namespace tcpcan::linux_port {

namespace {

std::string ipv4_text(const in_addr& address) {
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &address, text, sizeof text);
    return text;
}

// The address this host sends from towards `to` (a UDP connect sends nothing).
bool source_towards(const sockaddr_in& to, in_addr& source) {
    const int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        return false;
    }
    int on = 1;
    setsockopt(probe, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
    sockaddr_in local{};
    socklen_t length = sizeof local;
    const bool ok = connect(probe, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0 &&
                    getsockname(probe, reinterpret_cast<sockaddr*>(&local), &length) == 0;
    close(probe);
    if (ok) {
        source = local.sin_addr;
    }
    return ok;
}

}  // namespace

std::unique_ptr<SocketcandBeacon> SocketcandBeacon::create(const BeaconSetup& setup, std::uint64_t now,
                                                           std::string& error) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(setup.port);
    if (inet_pton(AF_INET, setup.address.c_str(), &to.sin_addr) != 1) {
        error = "beacon address '" + setup.address + "' is not an IPv4 address";
        return nullptr;
    }
    std::vector<std::string> urls;
    for (int fd : setup.listen_fds) {
        sockaddr_storage bound{};
        socklen_t length = sizeof bound;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0 || bound.ss_family != AF_INET) {
            continue;  // IPv6: socketcand's clients parse can://IP:PORT as IPv4
        }
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(bound);
        in_addr shown = v4.sin_addr;
        if (shown.s_addr == htonl(INADDR_ANY) && !source_towards(to, shown)) {
            continue;
        }
        urls.push_back("can://" + ipv4_text(shown) + ":" + std::to_string(ntohs(v4.sin_port)));
    }
    if (urls.empty()) {
        error = "no IPv4 socketcand listener to announce";
        return nullptr;
    }
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) {
        std::strcpy(host, "tcpcan");
    }
    std::vector<std::string_view> url_views(urls.begin(), urls.end());
    std::vector<std::string_view> bus_views(setup.buses.begin(), setup.buses.end());
    std::array<char, 1400> text{};  // one datagram, unfragmented on any usual link
    const std::size_t n = socketcand::format_beacon(host, setup.description, url_views, bus_views, text);
    if (n == 0) {
        error = "the beacon naming every bus does not fit one 1400-byte datagram";
        return nullptr;
    }
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::string("beacon socket: ") + std::strerror(errno);
        return nullptr;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
        error = "beacon to " + setup.address + ":" + std::to_string(setup.port) + ": " + std::strerror(errno);
        close(fd);
        return nullptr;
    }
    std::unique_ptr<SocketcandBeacon> beacon(new SocketcandBeacon());
    beacon->fd_ = fd;
    beacon->text_.assign(text.data(), n);
    beacon->destination_ = setup.address + ":" + std::to_string(setup.port);
    beacon->next_at_ = now;
    return beacon;
}

SocketcandBeacon::~SocketcandBeacon() {
    if (fd_ >= 0) {
        close(fd_);
    }
}

void SocketcandBeacon::send_if_due(std::uint64_t now, LogLimiter& limiter) {
    if (now < next_at_) {
        return;
    }
    next_at_ = now + std::uint64_t{socketcand::beacon_interval_ms} * 1000u;
    if (send(fd_, text_.data(), text_.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        if (limiter.allow("beacon", now)) {
            LOG_WARNING("socketcand beacon to %s: %s (trying again in 3 s)", destination_.c_str(), std::strerror(errno));
        }
        return;
    }
    ++sent_;
}

}  // namespace tcpcan::linux_port
