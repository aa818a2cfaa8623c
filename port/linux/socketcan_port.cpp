#include "socketcan_port.hpp"

#include <cerrno>
#include <cstring>
#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <vector>

#include <tcpcan/linux_frame.hpp>

#include "log.hpp"

namespace tcpcan::linux_port {

namespace {

constexpr std::size_t batch = 64;
// A receive queue for bursts: the default (~200 KiB) holds only a few hundred CAN skbs,
// so a flood overflows it while the loop is busy elsewhere.
constexpr int receive_buffer_bytes = 8 * 1024 * 1024;
constexpr std::size_t max_kernel_filters = 512;  // as canip_peer: the kernel copes, lookups stay cheap

// Splits [low, high] into aligned power-of-two blocks, each one id/mask pair.
void range_to_masks(std::uint32_t low, std::uint32_t high, std::uint32_t width_mask, std::vector<can_filter>& out,
                    canid_t flag) {
    std::uint64_t at = low;
    while (at <= high && out.size() <= max_kernel_filters) {
        std::uint64_t size = 1;
        while ((at & (size * 2 - 1)) == 0 && at + size * 2 - 1 <= high && size * 2 <= std::uint64_t{width_mask} + 1) {
            size *= 2;
        }
        out.push_back({static_cast<canid_t>(at) | flag, static_cast<canid_t>((~(size - 1)) & width_mask) | CAN_EFF_FLAG});
        at += size;
    }
}

// The allow entries as kernel filters; empty when they cannot all be expressed (then
// the kernel passes everything and user space filters alone).
std::vector<can_filter> kernel_filters(const FilterSetBase& set) {
    std::vector<can_filter> out;
    for (const FilterEntry& e : set.entries()) {
        if (e.inverted) {
            continue;  // the kernel ORs inverted filters; deny entries stay in user space
        }
        const canid_t flag = e.extended ? CAN_EFF_FLAG : 0;
        const std::uint32_t width = e.extended ? CAN_EFF_MASK : CAN_SFF_MASK;
        if (e.kind == FilterKind::mask) {
            out.push_back({e.low | flag, (e.high_or_mask & width) | CAN_EFF_FLAG});
        } else {
            range_to_masks(e.low, e.high_or_mask, width, out, flag);
        }
        if (out.size() > max_kernel_filters) {
            return {};
        }
    }
    return out;
}

// The kernel's structs are the bytes linux_frame.hpp converts (the same layout tcpcan
// version 1 carries), except that can_id is in host byte order rather than little-endian.
static_assert(sizeof(canfd_frame) == linux_canfd_frame_size && sizeof(can_frame) == linux_can_frame_size);

// On a little-endian host the struct's own bytes are read and written in place; a copy
// per frame through a 72-byte array showed in the overload profile.
LinuxFrameResult from_kernel(const canfd_frame& k, std::size_t size) {
    if constexpr (std::endian::native == std::endian::little) {
        return from_linux_bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(&k), size));
    } else {
        std::array<std::uint8_t, linux_canfd_frame_size> bytes;
        std::memcpy(bytes.data(), &k, size);
        detail::store_le32(bytes.data(), k.can_id);
        return from_linux_bytes(std::span<const std::uint8_t>(bytes.data(), size));
    }
}

// Returns the size to write (CAN_MTU or CANFD_MTU).
std::size_t to_kernel(const Frame& frame, canfd_frame& k) {
    const std::size_t size = to_linux_bytes(frame, std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(&k), sizeof k));
    k.can_id = linux_can_id(frame);  // host byte order
    return size;
}

}  // namespace

// Reused across reads and writes: set up once, so no wake-up pays for clearing them.
struct SocketCanPort::IoBatch {
    std::array<canfd_frame, batch> rx_frames;
    std::array<iovec, batch> rx_iov;
    std::array<mmsghdr, batch> rx_msgs;
    std::array<std::array<char, CMSG_SPACE(sizeof(timeval)) + CMSG_SPACE(sizeof(std::uint32_t))>, batch> rx_control;
    std::array<canfd_frame, batch> tx_frames;
    std::array<iovec, batch> tx_iov;
    std::array<mmsghdr, batch> tx_msgs;
    std::size_t tx_count = 0;
    std::size_t rx_filled = batch;  // messages the last recvmmsg filled (all, before the first)

    IoBatch() {
        for (std::size_t i = 0; i < batch; ++i) {
            rx_iov[i] = {&rx_frames[i], sizeof(canfd_frame)};
            rx_msgs[i] = {};
            rx_msgs[i].msg_hdr.msg_iov = &rx_iov[i];
            rx_msgs[i].msg_hdr.msg_iovlen = 1;
            rx_msgs[i].msg_hdr.msg_control = rx_control[i].data();
            tx_iov[i] = {&tx_frames[i], CAN_MTU};
            tx_msgs[i] = {};
            tx_msgs[i].msg_hdr.msg_iov = &tx_iov[i];
            tx_msgs[i].msg_hdr.msg_iovlen = 1;
        }
    }
};

SocketCanPort::SocketCanPort(std::string interface_name, const FilterSetBase& kernel_filter)
    : name_(std::move(interface_name)), filter_(kernel_filter), io_(std::make_unique<IoBatch>()) {}

SocketCanPort::~SocketCanPort() { close_socket(); }

void SocketCanPort::close_socket() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

SocketCanOpen SocketCanPort::open() {
    close_socket();
    const int fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
    if (fd < 0) {
        return {false, std::string("cannot open a CAN socket: ") + std::strerror(errno) +
                           (errno == EAFNOSUPPORT ? " (this kernel has no SocketCAN; try 'modprobe can-raw')" : "")};
    }
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
        ::close(fd);
        return {false, "CAN interface '" + name_ + "' does not exist (see 'ip link show'; for a virtual one: " +
                           "'ip link add dev " + name_ + " type vcan && ip link set " + name_ + " up')"};
    }
    sockaddr_can address{};
    address.can_family = AF_CAN;
    address.can_ifindex = ifr.ifr_ifindex;
    ifreq mtu{};
    std::strncpy(mtu.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    const int on = 1;
    fd_frames_ = ioctl(fd, SIOCGIFMTU, &mtu) == 0 && mtu.ifr_mtu == CANFD_MTU &&
                 setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &on, sizeof on) == 0;
    const can_err_mask_t errors = CAN_ERR_MASK;
    setsockopt(fd, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &errors, sizeof errors);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &on, sizeof on);
    // Count what the kernel drops for us (SO_RXQ_OVFL), so no loss goes unreported.
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    // FORCE goes past net.core.rmem_max with CAP_NET_ADMIN; otherwise take what is allowed.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_bytes, sizeof receive_buffer_bytes) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
    }
    const std::vector<can_filter> filters = kernel_filters(filter_);
    kernel_filters_ = filters.size();
    if (!filters.empty()) {
        // Error frames pass CAN_RAW_ERR_FILTER regardless of these.
        if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, filters.data(),
                       static_cast<socklen_t>(filters.size() * sizeof(can_filter))) != 0) {
            LOG_WARNING("%s: kernel filters refused (%s); filtering in user space only", name_.c_str(),
                        std::strerror(errno));
            kernel_filters_ = 0;
        }
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        const std::string error = std::strerror(errno);
        ::close(fd);
        return {false, "cannot bind to CAN interface '" + name_ + "': " + error};
    }
    fd_ = fd;
    ++generation_;
    overflow_before_open_ = counters_.rx_overflow;
    overflow_seen_ = 0;
    ifreq flags{};
    std::strncpy(flags.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    up_ = ioctl(fd_, SIOCGIFFLAGS, &flags) == 0 && (flags.ifr_flags & IFF_UP);
    if (!up_) {
        LOG_WARNING("%s is down; waiting for it to come up ('ip link set %s up')", name_.c_str(), name_.c_str());
    }
    return {true, {}};
}

void SocketCanPort::set_up(bool up, const char* why) {
    if (up == up_) {
        return;
    }
    up_ = up;
    if (up) {
        LOG_INFO("%s is up again; bridging resumes", name_.c_str());
    } else {
        LOG_WARNING("%s went down (%s); frames for it are dropped and counted until it returns", name_.c_str(), why);
    }
}

void SocketCanPort::maintain() {
    if (fd_ < 0) {
        if (if_nametoindex(name_.c_str()) != 0) {
            const SocketCanOpen r = open();
            if (r.ok) {
                LOG_INFO("%s exists again; socket reopened", name_.c_str());
                const bool was_up = up_;
                up_ = false;
                set_up(was_up, "");
            }
        }
        return;
    }
    ifreq flags{};
    std::strncpy(flags.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_, SIOCGIFFLAGS, &flags) != 0) {
        set_up(false, "interface disappeared");
        LOG_WARNING("%s no longer exists; will reopen it when it returns", name_.c_str());
        close_socket();
        return;
    }
    set_up((flags.ifr_flags & IFF_UP) != 0, "administratively down");
}

std::size_t SocketCanPort::read(std::span<Frame> out) {
    if (fd_ < 0) {
        return 0;
    }
    const std::size_t want = out.size() < batch ? out.size() : batch;
    // The batch arrays live in the port and are set up once; only what the kernel
    // changed (control lengths and flags of the messages it filled) is reset here, not
    // 18 KB zeroed, nor all 64 headers, on every wake-up.
    IoBatch& b = *io_;
    auto& frames = b.rx_frames;
    auto& msgs = b.rx_msgs;
    for (std::size_t i = 0; i < b.rx_filled; ++i) {
        msgs[i].msg_hdr.msg_controllen = b.rx_control[i].size();
        msgs[i].msg_hdr.msg_flags = 0;
    }
    const int n = recvmmsg(fd_, msgs.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    b.rx_filled = n > 0 ? static_cast<std::size_t>(n) : 0;
    if (n < 0) {
        if (errno == ENETDOWN) {
            set_up(false, "network down");
        } else if (errno == ENODEV) {
            set_up(false, "interface disappeared");
            close_socket();
        } else if (errno != EAGAIN && errno != EINTR) {
            ++counters_.read_errors;
            LOG_WARNING("%s: read failed: %s", name_.c_str(), std::strerror(errno));
        }
        return 0;
    }
    std::size_t count = 0;
    for (int i = 0; i < n; ++i) {
        const std::size_t size = msgs[i].msg_len;
        if (size != CAN_MTU && size != CANFD_MTU) {
            ++counters_.read_errors;
            continue;
        }
        const LinuxFrameResult converted = from_kernel(frames[i], size);
        if (converted.problem != FrameProblem::none) {
            ++counters_.read_errors;  // e.g. a standard id with bits above 0x7FF: not a frame we can carry
            continue;
        }
        Frame f = converted.frame;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMP) {
                timeval tv{};
                std::memcpy(&tv, CMSG_DATA(c), sizeof tv);
                f.timestamp_us = static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(tv.tv_usec);
            } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                std::uint32_t dropped = 0;
                std::memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
                if (dropped != overflow_seen_) {
                    LOG_WARNING("%s: the kernel dropped %u frames: the bridge did not read them in time",
                                name_.c_str(), dropped - overflow_seen_);
                    overflow_seen_ = dropped;
                    counters_.rx_overflow = overflow_before_open_ + dropped;
                }
            }
        }
        if (f.is_error()) {
            report_bus_state(f);
        }
        out[count++] = f;
    }
    if (count > 0) {
        set_up(true, "");
    }
    return count;
}

BusWrite SocketCanPort::write(const Frame& frame) {
    if (fd_ < 0 || !up_) {
        return BusWrite::down;
    }
    if (frame.is_error()) {
        ++counters_.refused;  // an error frame describes a bus; it is not sent onto one
        return BusWrite::refused;
    }
    if (frame.is_fd() && !fd_frames_) {
        ++counters_.refused;
        if (!warned_fd_) {
            warned_fd_ = true;
            LOG_WARNING("%s is not CAN FD capable (MTU 16): CAN FD frames for it are refused and counted", name_.c_str());
        }
        return BusWrite::refused;
    }
    IoBatch& b = *io_;
    if (b.tx_count == batch && !flush()) {
        return BusWrite::busy;  // the kernel's queue is full (ENOBUFS): the frame waits in its peer's queue
    }
    const std::size_t i = b.tx_count++;
    b.tx_iov[i].iov_len = to_kernel(frame, b.tx_frames[i]);
    return BusWrite::written;
}

// One sendmmsg for every frame staged since the last flush, instead of a write() each.
bool SocketCanPort::flush() {
    IoBatch& b = *io_;
    while (b.tx_count > 0) {
        if (fd_ < 0 || !up_) {
            counters_.down_drops += b.tx_count;  // handed to the port, but the interface went away
            b.tx_count = 0;
            return true;
        }
        const int n = sendmmsg(fd_, b.tx_msgs.data(), static_cast<unsigned>(b.tx_count), MSG_DONTWAIT);
        if (n > 0) {
            const auto sent = static_cast<std::size_t>(n);
            for (std::size_t i = sent; i < b.tx_count; ++i) {  // keep the unsent ones, in order
                b.tx_frames[i - sent] = b.tx_frames[i];
                b.tx_iov[i - sent].iov_len = b.tx_iov[i].iov_len;
            }
            b.tx_count -= sent;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == ENOBUFS || errno == EAGAIN)) {
            return false;  // retried on the loop's next pass
        }
        if (n < 0 && (errno == ENETDOWN || errno == ENXIO || errno == ENODEV)) {
            set_up(false, std::strerror(errno));
            continue;  // counted as dropped above on the next round
        }
        // Refused by the kernel (e.g. EINVAL): drop the first frame, counted, and go on.
        ++counters_.refused;
        LOG_WARNING("%s: write failed: %s", name_.c_str(), n < 0 ? std::strerror(errno) : "nothing sent");
        for (std::size_t i = 1; i < b.tx_count; ++i) {
            b.tx_frames[i - 1] = b.tx_frames[i];
            b.tx_iov[i - 1].iov_len = b.tx_iov[i].iov_len;
        }
        --b.tx_count;
    }
    return true;
}

void SocketCanPort::report_bus_state(const Frame& f) {
    // linux/can/error.h: the class is in the id, details in the data bytes.
    if (f.id & CAN_ERR_BUSOFF) {
        LOG_ERROR("%s: bus-off", name_.c_str());
    }
    if (f.id & CAN_ERR_RESTARTED) {
        LOG_WARNING("%s: controller restarted after bus-off", name_.c_str());
    }
    if (f.id & CAN_ERR_CRTL) {
        const std::uint8_t state = f.data[1];
        if (state & (CAN_ERR_CRTL_RX_PASSIVE | CAN_ERR_CRTL_TX_PASSIVE)) {
            LOG_WARNING("%s: error-passive", name_.c_str());
        } else if (state & (CAN_ERR_CRTL_RX_WARNING | CAN_ERR_CRTL_TX_WARNING)) {
            LOG_WARNING("%s: error-warning", name_.c_str());
        } else if (state & CAN_ERR_CRTL_ACTIVE) {
            LOG_INFO("%s: back to error-active", name_.c_str());
        }
        if (state & (CAN_ERR_CRTL_RX_OVERFLOW | CAN_ERR_CRTL_TX_OVERFLOW)) {
            LOG_WARNING("%s: controller buffer overflow: frames were lost on the bus side", name_.c_str());
        }
    }
    if (f.id & CAN_ERR_ACK) {
        LOG_DEBUG("%s: no acknowledgement on the bus", name_.c_str());
    }
}

}  // namespace tcpcan::linux_port
