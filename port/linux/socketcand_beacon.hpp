// socketcand's discovery beacon (--beacon, --beacon-to): every 3 s one UDP datagram that
// names this host, each socketcand listener as can://IP:PORT and every bus, so python-can's
// detect_beacon() and SavvyCAN find the server. The text is socketcand's
// (tcpcan/dialect/socketcand.hpp, format_beacon). IPv4 only, as socketcand's beacon is: an
// IPv6 listener is not announced. Sending never blocks; a failed send is logged (rate-limited)
// and tried again at the next interval.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "log.hpp"

namespace tcpcan::linux_port {

struct BeaconSetup {
    std::string address = "255.255.255.255";  // the limited broadcast, as --beacon alone sends
    std::uint16_t port = 42000;
    std::vector<int> listen_fds;              // the socketcand listeners to announce
    std::vector<std::string> buses;           // every bus, in --can order
    std::string description;
};

class SocketcandBeacon {
public:
    // nullptr with `error` naming why (bad address, no IPv4 listener, datagram too long).
    static std::unique_ptr<SocketcandBeacon> create(const BeaconSetup& setup, std::uint64_t now, std::string& error);
    ~SocketcandBeacon();
    SocketcandBeacon(const SocketcandBeacon&) = delete;
    SocketcandBeacon& operator=(const SocketcandBeacon&) = delete;

    // Sends when due (the first at once); call from the loop.
    void send_if_due(std::uint64_t now, LogLimiter& limiter);
    [[nodiscard]] std::uint64_t next_at() const { return next_at_; }
    [[nodiscard]] const std::string& text() const { return text_; }
    [[nodiscard]] const std::string& destination() const { return destination_; }
    [[nodiscard]] std::uint64_t sent() const { return sent_; }

private:
    SocketcandBeacon() = default;

    int fd_ = -1;
    std::string text_;
    std::string destination_;  // "ADDR:PORT", for the log
    std::uint64_t next_at_ = 0;
    std::uint64_t sent_ = 0;
};

}  // namespace tcpcan::linux_port
