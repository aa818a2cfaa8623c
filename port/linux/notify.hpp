#pragma once
// Readiness for service managers: systemd's Type=notify waits for this before it counts the
// service as started (so units ordered after it start once tcpcan listens or connects).
#include <string>

namespace tcpcan::linux_port {

// Sends READY=1 with `status` as the service's status line; does nothing when tcpcan was
// built without libsystemd or is not running under a service manager ($NOTIFY_SOCKET unset).
void notify_ready(const std::string& status);

}  // namespace tcpcan::linux_port
