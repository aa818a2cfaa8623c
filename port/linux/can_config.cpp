#include "can_config.hpp"

#include <linux/can/netlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/can.h>

#include <cstring>
#include <memory>

namespace tcpcan::linux_port {

namespace {

struct SocketDeleter {
    void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct LinkDeleter {
    void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};

std::string netlink_error(int code, const std::string& what) {
    code = code < 0 ? -code : code;
    std::string message = what + ": " + nl_geterror(code);
    if (code == NLE_PERM) {
        message += " (changing a CAN interface needs root or CAP_NET_ADMIN)";
    }
    return message;
}

}  // namespace

CanConfigResult configure_can_link(const std::string& name, const CanLinkSettings& settings) {
    std::unique_ptr<nl_sock, SocketDeleter> sock(nl_socket_alloc());
    if (!sock) {
        return {false, "cannot allocate a netlink socket"};
    }
    if (const int rc = nl_connect(sock.get(), NETLINK_ROUTE); rc < 0) {
        return {false, netlink_error(rc, "cannot open rtnetlink")};
    }
    rtnl_link* raw = nullptr;
    if (const int rc = rtnl_link_get_kernel(sock.get(), 0, name.c_str(), &raw); rc < 0) {
        return {false, "CAN interface '" + name + "' does not exist (see 'ip link show')"};
    }
    std::unique_ptr<rtnl_link, LinkDeleter> link(raw);
    const char* type = rtnl_link_get_type(link.get());
    if (type != nullptr && std::strcmp(type, "vcan") == 0) {
        return {false, "cannot set the bitrate of " + name +
                           ": it is a virtual CAN interface (vcan), which has no bitrate or CAN FD mode to configure"};
    }
    if (!rtnl_link_is_can(link.get())) {
        return {false, "cannot set the bitrate of " + name + ": it is not a CAN controller (type " +
                           (type ? type : "unknown") + ")"};
    }
    // Bit timing can only change while the interface is down.
    std::unique_ptr<rtnl_link, LinkDeleter> down(rtnl_link_alloc());
    rtnl_link_unset_flags(down.get(), IFF_UP);
    if (const int rc = rtnl_link_change(sock.get(), link.get(), down.get(), 0); rc < 0) {
        return {false, netlink_error(rc, "cannot take " + name + " down")};
    }
    std::unique_ptr<rtnl_link, LinkDeleter> change(rtnl_link_alloc());
    if (rtnl_link_set_type(change.get(), "can") < 0) {
        return {false, "libnl has no CAN link support"};
    }
    if (settings.bitrate != 0) {
        rtnl_link_can_set_bitrate(change.get(), settings.bitrate);
    }
    if (settings.fd || settings.data_bitrate != 0) {
        rtnl_link_can_set_ctrlmode(change.get(), CAN_CTRLMODE_FD);
    }
    if (settings.data_bitrate != 0) {
        can_bittiming timing{};
        timing.bitrate = settings.data_bitrate;
        rtnl_link_can_set_data_bittiming(change.get(), &timing);
    }
    rtnl_link_set_flags(change.get(), IFF_UP);
    if (const int rc = rtnl_link_change(sock.get(), link.get(), change.get(), 0); rc < 0) {
        return {false, netlink_error(rc, "cannot configure " + name)};
    }
    return {true, {}};
}

}  // namespace tcpcan::linux_port
