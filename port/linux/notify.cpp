#include "notify.hpp"

#if TCPCAN_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace tcpcan::linux_port {

void notify_ready(const std::string& status) {
#if TCPCAN_HAVE_LIBSYSTEMD
    // The result is ignored on purpose: a failed notification is systemd's to report.
    (void)sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
#else
    (void)status;
#endif
}

}  // namespace tcpcan::linux_port
