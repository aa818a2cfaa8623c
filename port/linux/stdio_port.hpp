// The CAN interface "-": frames to send come from stdin, received frames go to stdout,
// one per line in candump's log format. Lets a machine with no CAN interface capture a
// remote bus to a file, replay a log into it, and test the whole bridge.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bus_port.hpp"

namespace tcpcan::linux_port {

// "fd:3,4" (--can): candump lines are read from descriptor 3 and written to 4. False when
// `name` is not of that form; `error` then says why if it began with "fd:".
[[nodiscard]] bool parse_fd_bus(std::string_view name, int& in_fd, int& out_fd, std::string& error);

class StdioPort final : public BusPort {
public:
    // `interface_name` is the IFACE word written on each output line.
    explicit StdioPort(std::string interface_name = "tcpcan");
    // The same on two other descriptors (--can fd:IN,OUT): a second text bus for tests
    // and pipelines. The descriptors stay open (they are the caller's).
    StdioPort(std::string interface_name, int in_fd, int out_fd);
    ~StdioPort() override;

    const std::string& name() const override { return name_; }
    int read_fd() const override { return stdin_open_ && !stdin_is_file_ ? in_fd_ : -1; }
    // Regular files cannot be waited on; whole lines already buffered need no waiting.
    bool read_always_ready() const override { return (stdin_open_ && stdin_is_file_) || lines_pending_; }
    int write_wait_fd() const override { return stdout_is_file_ ? -1 : out_fd_; }
    std::size_t read(std::span<Frame> out) override;
    BusWrite write(const Frame& frame) override;
    bool flush() override;
    bool paced() const override { return true; }

private:
    bool parse_buffered_lines(std::span<Frame> out, std::size_t& count);

    std::string name_;
    int in_fd_ = 0;
    int out_fd_ = 1;
    std::string in_label_;   // "stdin" or "fd 3", for messages
    std::string out_label_;
    bool stdin_open_ = true;
    bool lines_pending_ = false;  // whole lines buffered beyond the last read's batch
    bool stdin_is_file_ = false;
    bool stdout_is_file_ = false;
    int stdin_flags_ = 0;
    int stdout_flags_ = 0;
    std::uint64_t line_number_ = 0;
    std::vector<char> in_;   // bytes read, not yet a whole line
    std::size_t in_used_ = 0;
    std::vector<char> out_;  // formatted lines waiting for stdout
    std::size_t out_head_ = 0;
};

}  // namespace tcpcan::linux_port
