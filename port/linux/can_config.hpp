// Bit rates and CAN FD mode of a real CAN interface, set through rtnetlink (libnl-route).
#pragma once

#include <cstdint>
#include <string>

namespace tcpcan::linux_port {

struct CanLinkSettings {
    std::uint32_t bitrate = 0;       // 0 = leave as is
    std::uint32_t data_bitrate = 0;  // CAN FD data phase; 0 = leave as is
    bool fd = false;                 // switch CAN FD mode on
};

struct CanConfigResult {
    bool ok = false;
    std::string error;  // says what could not be done and why, e.g. vcan or no CAP_NET_ADMIN
};

// Takes the interface down, applies the settings, and brings it up again.
CanConfigResult configure_can_link(const std::string& interface_name, const CanLinkSettings& settings);

}  // namespace tcpcan::linux_port
