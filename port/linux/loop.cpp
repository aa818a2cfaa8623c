#include "loop.hpp"

#include <cerrno>
#include <csignal>
#include <ctime>
#include <cstring>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>

#include "clock.hpp"

namespace tcpcan::linux_port {

EventLoop::~EventLoop() {
    if (signal_fd_ >= 0) {
        ::close(signal_fd_);
    }
    if (epoll_fd_ >= 0) {
        ::close(epoll_fd_);
    }
}

bool EventLoop::open(std::string& error) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) {
        error = std::string("epoll_create1: ") + std::strerror(errno);
        return false;
    }
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);
    signal_fd_ = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) {
        error = std::string("signalfd: ") + std::strerror(errno);
        return false;
    }
    set_interest(signal_fd_, EPOLLIN);
    now_ = monotonic_us();
    return true;
}

void EventLoop::set_interest(int fd, std::uint32_t events) {
    if (fd < 0) {
        return;
    }
    const auto index = static_cast<std::size_t>(fd);
    if (index >= interest_.size()) {
        interest_.resize(index + 1, 0);
    }
    const std::uint32_t before = interest_[index];
    if (before == events) {
        return;
    }
    epoll_event e{};
    e.events = events;
    e.data.fd = fd;
    const int op = before == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    epoll_ctl(epoll_fd_, op, fd, op == EPOLL_CTL_DEL ? nullptr : &e);
    interest_[index] = events;
}

void EventLoop::forget(int fd) { set_interest(fd, 0); }

std::span<const epoll_event> EventLoop::wait(std::uint64_t deadline_us) {
    const std::uint64_t before = monotonic_us();
    const std::uint64_t timeout_us = deadline_us > before ? std::min<std::uint64_t>(deadline_us - before, 1'000'000) : 0;
    // epoll_pwait2 waits to the microsecond: epoll_wait's whole milliseconds would stretch a
    // sub-millisecond --latency-budget to a millisecond.
    int n = -1;
    if (!coarse_timeouts_) {
        const timespec timeout{static_cast<time_t>(timeout_us / 1'000'000), static_cast<long>(timeout_us % 1'000'000) * 1000};
        n = epoll_pwait2(epoll_fd_, events_.data(), static_cast<int>(events_.size()), &timeout, nullptr);
        coarse_timeouts_ = n < 0 && errno != EINTR;  // ENOSYS, or EPERM from a seccomp filter
    }
    if (coarse_timeouts_) {
        n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), static_cast<int>((timeout_us + 999) / 1000));
    }
    now_ = monotonic_us();
    std::size_t kept = 0;
    for (int i = 0; i < n; ++i) {
        if (events_[static_cast<std::size_t>(i)].data.fd == signal_fd_) {
            signalfd_siginfo info{};
            if (::read(signal_fd_, &info, sizeof info) == sizeof info) {
                stop_signal_ = static_cast<int>(info.ssi_signo);
            }
            continue;
        }
        events_[kept++] = events_[static_cast<std::size_t>(i)];
    }
    return std::span<const epoll_event>(events_.data(), n > 0 ? kept : 0);
}

}  // namespace tcpcan::linux_port
