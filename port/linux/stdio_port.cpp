#include "stdio_port.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <tcpcan/candump_text.hpp>

#include "clock.hpp"
#include "log.hpp"

namespace tcpcan::linux_port {

namespace {
constexpr std::size_t input_capacity = 64 * 1024;       // longest accepted line is far shorter
constexpr std::size_t output_capacity = 4 * 1024 * 1024;  // lines waiting for a slow stdout

// epoll refuses regular files and some devices (/dev/null): those are always ready.
bool is_pollable(int fd) {
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event e{};
    e.events = EPOLLIN;
    const bool ok = ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == 0;
    if (ep >= 0) {
        close(ep);
    }
    return ok;
}
bool parse_fd(std::string_view text, int& fd) {
    if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string_view::npos) {
        return false;
    }
    fd = 0;
    for (char c : text) {
        fd = fd * 10 + (c - '0');
    }
    return true;
}
}  // namespace

bool parse_fd_bus(std::string_view name, int& in_fd, int& out_fd, std::string& error) {
    if (name.substr(0, 3) != "fd:") {
        return false;
    }
    const std::string_view pair = name.substr(3);
    const std::size_t comma = pair.find(',');
    if (comma == std::string_view::npos || !parse_fd(pair.substr(0, comma), in_fd) ||
        !parse_fd(pair.substr(comma + 1), out_fd)) {
        error = "--can " + std::string(name) + ": expected fd:IN,OUT with two descriptor numbers (e.g. fd:3,4)";
        return false;
    }
    for (const int fd : {in_fd, out_fd}) {
        if (fcntl(fd, F_GETFD) < 0) {
            error = "--can " + std::string(name) + ": descriptor " + std::to_string(fd) + " is not open";
            return false;
        }
    }
    return true;
}

StdioPort::StdioPort(std::string interface_name) : StdioPort(std::move(interface_name), 0, 1) {}

StdioPort::StdioPort(std::string interface_name, int in_fd, int out_fd)
    : name_(std::move(interface_name)),
      in_fd_(in_fd),
      out_fd_(out_fd),
      in_label_(in_fd == 0 ? "stdin" : "fd " + std::to_string(in_fd)),
      out_label_(out_fd == 1 ? "stdout" : "fd " + std::to_string(out_fd)) {
    in_.resize(input_capacity);
    out_.reserve(64 * 1024);
    stdin_is_file_ = !is_pollable(in_fd_);
    stdout_is_file_ = !is_pollable(out_fd_);
    stdin_flags_ = fcntl(in_fd_, F_GETFL);
    stdout_flags_ = fcntl(out_fd_, F_GETFL);
    if (stdin_flags_ >= 0) {
        fcntl(in_fd_, F_SETFL, stdin_flags_ | O_NONBLOCK);
    } else {
        stdin_open_ = false;
    }
    if (stdout_flags_ >= 0 && !stdout_is_file_) {
        fcntl(out_fd_, F_SETFL, stdout_flags_ | O_NONBLOCK);
    }
}

StdioPort::~StdioPort() {
    // Give blocking mode back: the terminal or pipe is shared with the shell.
    if (stdin_flags_ >= 0) {
        fcntl(in_fd_, F_SETFL, stdin_flags_);
    }
    if (stdout_flags_ >= 0) {
        fcntl(out_fd_, F_SETFL, stdout_flags_);
    }
}

bool StdioPort::parse_buffered_lines(std::span<Frame> out, std::size_t& count) {
    std::size_t start = 0;
    while (count < out.size()) {
        const void* nl = std::memchr(in_.data() + start, '\n', in_used_ - start);
        if (nl == nullptr) {
            break;
        }
        const std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - in_.data());
        const std::string_view line(in_.data() + start, end - start);
        start = end + 1;
        ++line_number_;
        const CandumpParseResult r = parse_candump_line(line);
        if (r.kind == CandumpLineKind::frame) {
            out[count++] = r.frame;
        } else if (r.kind == CandumpLineKind::error) {
            ++counters_.bad_input;
            LOG_WARNING("%s line %llu, column %zu: %s: \"%.*s\"", in_label_.c_str(), static_cast<unsigned long long>(line_number_),
                        r.position + 1, describe(r.error), static_cast<int>(line.size() > 120 ? 120 : line.size()),
                        line.data());
        }
    }
    std::memmove(in_.data(), in_.data() + start, in_used_ - start);
    in_used_ -= start;
    lines_pending_ = count == out.size() && std::memchr(in_.data(), '\n', in_used_) != nullptr;
    return count == out.size();
}

std::size_t StdioPort::read(std::span<Frame> out) {
    std::size_t count = 0;
    if (parse_buffered_lines(out, count) || !stdin_open_) {
        return count;
    }
    const ssize_t n = ::read(in_fd_, in_.data() + in_used_, in_.size() - in_used_);
    if (n > 0) {
        in_used_ += static_cast<std::size_t>(n);
        (void)parse_buffered_lines(out, count);
        if (in_used_ == in_.size()) {
            ++counters_.bad_input;
            LOG_WARNING("%s line %llu is longer than %zu bytes; discarded", in_label_.c_str(),
                        static_cast<unsigned long long>(line_number_ + 1), in_.size());
            in_used_ = 0;
        }
    } else if (n == 0) {
        if (in_used_ > 0) {  // a last line without a newline still counts
            in_[in_used_++] = '\n';
            (void)parse_buffered_lines(out, count);
        }
        stdin_open_ = false;
        LOG_INFO("%s closed after %llu lines; still forwarding frames to %s", in_label_.c_str(),
                 static_cast<unsigned long long>(line_number_), out_label_.c_str());
    } else if (errno != EAGAIN && errno != EINTR) {
        ++counters_.read_errors;
        LOG_ERROR("reading %s: %s", in_label_.c_str(), std::strerror(errno));
        stdin_open_ = false;
    }
    return count;
}

BusWrite StdioPort::write(const Frame& frame) {
    if (out_.size() - out_head_ + max_candump_line + 1 > output_capacity) {
        if (!flush()) {
            return BusWrite::busy;  // stdout is slow: the frame waits in the session's queue
        }
    }
    Frame stamped = frame;
    if (stamped.timestamp_us == 0) {
        stamped.timestamp_us = wall_clock_us();
    }
    char line[max_candump_line + 1];
    const std::size_t n = format_candump_line(stamped, name_, std::span<char>(line, max_candump_line));
    if (n == 0) {
        ++counters_.refused;
        return BusWrite::refused;
    }
    line[n] = '\n';
    out_.insert(out_.end(), line, line + n + 1);
    return BusWrite::written;
}

bool StdioPort::flush() {
    while (out_head_ < out_.size()) {
        const ssize_t n = ::write(out_fd_, out_.data() + out_head_, out_.size() - out_head_);
        if (n > 0) {
            out_head_ += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN) {
            LOG_ERROR("writing %s: %s; output discarded", out_label_.c_str(), std::strerror(errno));
            out_head_ = out_.size();
        }
        break;
    }
    if (out_head_ == out_.size()) {
        out_.clear();
        out_head_ = 0;
        return true;
    }
    if (out_head_ > out_.size() / 2) {
        out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
        out_head_ = 0;
    }
    return false;
}

}  // namespace tcpcan::linux_port
