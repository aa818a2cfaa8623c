// The bridge's side of the bus: a SocketCAN interface or stdio (candump lines).
// Reads and writes never block; "busy" means retry later, and the frame stays in
// the session's bounded queue meanwhile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <tcpcan/frame.hpp>

namespace tcpcan::linux_port {

enum class BusWrite { written, busy, down, refused };

struct BusCounters {
    std::uint64_t refused = 0;     // frames the bus cannot take (e.g. FD on a classic interface)
    std::uint64_t bad_input = 0;   // stdin lines that were not frames
    std::uint64_t read_errors = 0;
    std::uint64_t rx_overflow = 0;  // frames the kernel dropped because we read too slowly
    std::uint64_t down_drops = 0;   // frames taken for the bus, then dropped: the interface went down
};

class BusPort {
public:
    virtual ~BusPort() = default;

    [[nodiscard]] virtual const std::string& name() const = 0;
    // Descriptor to wait on for reading; -1 when there is none right now.
    [[nodiscard]] virtual int read_fd() const = 0;
    // True when the read side cannot be waited on (a regular file): just read.
    [[nodiscard]] virtual bool read_always_ready() const { return false; }
    // Descriptor to wait on for writability while busy; -1 = retry on a timer.
    [[nodiscard]] virtual int write_wait_fd() const { return -1; }
    // Reads up to out.size() frames; never blocks.
    [[nodiscard]] virtual std::size_t read(std::span<Frame> out) = 0;
    [[nodiscard]] virtual BusWrite write(const Frame& frame) = 0;
    // Pushes out anything the port buffers itself; true when nothing is left.
    virtual bool flush() { return true; }
    // Called about once a second: notices interfaces going down, coming back, vanishing.
    virtual void maintain() {}
    [[nodiscard]] virtual bool is_up() const { return true; }
    // A source that is not real time (stdin) is read only as fast as the peers take it;
    // a bus is read at once, and a slow peer loses (and counts) what it cannot take.
    [[nodiscard]] virtual bool paced() const { return false; }
    // Changes whenever read_fd() is a new descriptor, even one with a reused number.
    [[nodiscard]] std::uint32_t generation() const { return generation_; }
    [[nodiscard]] const BusCounters& counters() const { return counters_; }

protected:
    BusCounters counters_{};
    std::uint32_t generation_ = 0;
};

}  // namespace tcpcan::linux_port
