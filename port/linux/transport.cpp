#include "transport.hpp"

#include <cerrno>
#include <cstring>
#include <sys/epoll.h>
#include <sys/socket.h>

namespace tcpcan::linux_port {

namespace {

class PlainTransport final : public Transport {
public:
    explicit PlainTransport(int fd) : fd_(fd) {}

    int fd() const override { return fd_; }

    IoResult read(std::span<std::uint8_t> into) override {
        for (;;) {
            const ssize_t n = ::recv(fd_, into.data(), into.size(), 0);
            if (n > 0) {
                return {IoStatus::ok, static_cast<std::size_t>(n)};
            }
            if (n == 0) {
                return {IoStatus::closed, 0};
            }
            if (errno == EINTR) {
                continue;
            }
            return fail();
        }
    }

    IoResult write(std::span<const std::uint8_t> bytes) override {
        for (;;) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n >= 0) {
                return {IoStatus::ok, static_cast<std::size_t>(n)};
            }
            if (errno == EINTR) {
                continue;
            }
            return fail();
        }
    }

    std::uint32_t wanted_events(bool app_wants_read, bool app_has_output) const override {
        return (app_wants_read ? std::uint32_t{EPOLLIN} : 0u) | (app_has_output ? std::uint32_t{EPOLLOUT} : 0u);
    }

    const std::string& identity() const override { return identity_; }
    const std::string& last_error() const override { return error_; }

private:
    IoResult fail() {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return {IoStatus::would_block, 0};
        }
        error_ = std::strerror(errno);
        return {IoStatus::error, 0};
    }

    int fd_;
    std::string identity_;
    std::string error_;
};

}  // namespace

std::unique_ptr<Transport> make_plain_transport(int fd) { return std::make_unique<PlainTransport>(fd); }

}  // namespace tcpcan::linux_port
