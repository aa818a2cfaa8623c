// The thin epoll loop: waits for descriptors and time, and keeps the clock. It holds the
// interest set and changes it only when it really changes (one epoll_ctl, not one per
// pass). SIGINT and SIGTERM arrive as a readable signalfd, so a stop is just an event.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tcpcan::linux_port {

class EventLoop {
public:
    EventLoop() = default;
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Creates the epoll set and the signalfd; false with `error` set on failure.
    [[nodiscard]] bool open(std::string& error);

    // Sets the events `fd` is waited for; 0 removes it (so even EPOLLHUP/EPOLLERR, which
    // epoll reports whatever was asked, stop waking the loop). No call when unchanged.
    void set_interest(int fd, std::uint32_t events);
    // Forgets `fd` before it is closed.
    void forget(int fd);

    // Waits for events until `deadline_us` (monotonic µs) at the latest; 0 = do not wait.
    [[nodiscard]] std::span<const epoll_event> wait(std::uint64_t deadline_us);
    [[nodiscard]] std::uint64_t now() const { return now_; }
    // The signal that asked us to stop (0 = none yet); its event is consumed by wait().
    [[nodiscard]] int stop_signal() const { return stop_signal_; }

private:
    int epoll_fd_ = -1;
    int signal_fd_ = -1;
    int stop_signal_ = 0;
    std::uint64_t now_ = 0;
    bool coarse_timeouts_ = false;  // no epoll_pwait2 (Linux < 5.11): timeouts in whole milliseconds
    std::vector<std::uint32_t> interest_;  // by fd; 0 = not in the set
    std::array<epoll_event, 256> events_{};
};

}  // namespace tcpcan::linux_port
