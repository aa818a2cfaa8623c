// A SocketCAN interface through one CAN_RAW socket: CAN FD when the MTU allows,
// kernel receive timestamps, error frames reported as bus state changes, id/mask
// filters pushed into the kernel, batched non-blocking I/O, and recovery when the
// interface goes down or disappears.
#pragma once

#include <memory>
#include <string>

#include <tcpcan/filter.hpp>

#include "bus_port.hpp"

namespace tcpcan::linux_port {

struct SocketCanOpen {
    bool ok = false;
    std::string error;
};

class SocketCanPort final : public BusPort {
public:
    // `kernel_filter`: frames this side forwards; its allow entries become CAN_RAW_FILTER.
    SocketCanPort(std::string interface_name, const FilterSetBase& kernel_filter);
    ~SocketCanPort() override;

    // Opens the socket; the error names the interface and suggests `ip link show`.
    SocketCanOpen open();

    const std::string& name() const override { return name_; }
    int read_fd() const override { return fd_; }
    std::size_t read(std::span<Frame> out) override;
    // Frames are staged and sent together by flush() (one sendmmsg), which the loop calls
    // once per pass; busy only when a whole batch is still waiting for the kernel.
    BusWrite write(const Frame& frame) override;
    bool flush() override;
    void maintain() override;
    bool is_up() const override { return fd_ >= 0 && up_; }
    [[nodiscard]] bool fd_capable() const { return fd_frames_; }
    [[nodiscard]] std::size_t kernel_filter_count() const { return kernel_filters_; }

private:
    void close_socket();
    void set_up(bool up, const char* why);
    void report_bus_state(const Frame& error_frame);

    struct IoBatch;

    std::string name_;
    const FilterSetBase& filter_;
    int fd_ = -1;
    bool up_ = false;
    bool fd_frames_ = false;
    bool warned_fd_ = false;
    std::size_t kernel_filters_ = 0;
    std::uint64_t overflow_before_open_ = 0;  // SO_RXQ_OVFL restarts at 0 on every socket
    std::uint32_t overflow_seen_ = 0;
    std::unique_ptr<IoBatch> io_;
};

}  // namespace tcpcan::linux_port
