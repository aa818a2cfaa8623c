#include "transport.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace tcpcan::linux_port {

const char* describe(IoStatus status) {
    switch (status) {
    case IoStatus::ok: return "ok";
    case IoStatus::would_block: return "would block";
    case IoStatus::closed: return "closed";
    case IoStatus::error: return "error";
    }
    return "unknown";
}

bool looks_like_tls_client_hello(std::span<const std::uint8_t> first_bytes) {
    constexpr std::uint8_t handshake_record = 0x16;
    constexpr std::uint8_t major_version = 0x03;
    constexpr std::uint8_t highest_minor = 0x04;
    if (first_bytes.empty() || first_bytes[0] != handshake_record) {
        return false;
    }
    if (first_bytes.size() >= 2 && first_bytes[1] != major_version) {
        return false;
    }
    return first_bytes.size() < 3 || first_bytes[2] <= highest_minor;
}

namespace {

class PlainTransport final : public Transport {
public:
    PlainTransport(int fd, PlainOptions options) : fd_{fd}, check_first_bytes_{options.refuse_tls_client_hello} {}

    int fd() const override { return fd_; }

    IoResult read(std::span<std::uint8_t> into) override {
        const ssize_t n = ::recv(fd_, into.data(), into.size(), MSG_DONTWAIT);
        if (n > 0) {
            const auto got = into.first(static_cast<std::size_t>(n));
            if (check_first_bytes_) {
                check_first_bytes_ = false;
                if (looks_like_tls_client_hello(got)) {
                    error_ = "a TLS ClientHello arrived on a plaintext port (the client uses TLS; this "
                             "listener has no TLS configured)";
                    return {IoStatus::error, 0};
                }
            }
            return {IoStatus::ok, got.size()};
        }
        if (n == 0) {
            return {IoStatus::closed, 0};
        }
        return failure("read");
    }

    IoResult write(std::span<const std::uint8_t> bytes) override {
        if (bytes.empty()) {
            return {IoStatus::ok, 0};
        }
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            return {IoStatus::ok, static_cast<std::size_t>(n)};
        }
        if (n == 0) {
            return {IoStatus::would_block, 0};
        }
        return failure("write");
    }

    std::uint32_t wanted_events(bool app_has_output) const override {
        return EPOLLIN | (app_has_output ? EPOLLOUT : 0u);
    }

    const std::string& identity() const override { return identity_; }
    const std::string& last_error() const override { return error_; }

private:
    IoResult failure(const char* what) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return {IoStatus::would_block, 0};
        }
        error_ = std::string(what) + " failed: " + std::strerror(errno);
        return {errno == ECONNRESET || errno == EPIPE ? IoStatus::closed : IoStatus::error, 0};
    }

    int fd_;
    bool check_first_bytes_;
    std::string identity_;
    std::string error_;
};

}  // namespace

std::unique_ptr<Transport> make_plain_transport(int fd, PlainOptions options) {
    return std::make_unique<PlainTransport>(fd, options);
}

}  // namespace tcpcan::linux_port
