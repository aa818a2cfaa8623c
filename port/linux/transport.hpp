// The byte stream under every connection: plain TCP here, TLS as another implementation.
// Non-blocking throughout; the Loop waits on fd() for wanted_events().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace tcpcan::linux_port {

enum class IoStatus { ok, would_block, closed, error };

struct IoResult {
    IoStatus status = IoStatus::ok;
    std::size_t bytes = 0;  // bytes moved when ok
};

class Transport {
public:
    virtual ~Transport() = default;

    [[nodiscard]] virtual int fd() const = 0;
    // Never block. `ok` with bytes > 0, or would_block / closed (orderly end) / error.
    [[nodiscard]] virtual IoResult read(std::span<std::uint8_t> into) = 0;
    [[nodiscard]] virtual IoResult write(std::span<const std::uint8_t> bytes) = 0;
    // epoll events (EPOLLIN/EPOLLOUT) needed, given whether the application wants to read
    // and has bytes to write (a TLS handshake may need either, whatever the application wants).
    [[nodiscard]] virtual std::uint32_t wanted_events(bool app_wants_read, bool app_has_output) const = 0;
    // True while a handshake is under way: no application bytes move yet.
    [[nodiscard]] virtual bool handshaking() const { return false; }
    // Drives the handshake when the fd is ready: ok when done, would_block while under
    // way, error/closed with last_error() naming why.
    [[nodiscard]] virtual IoStatus handshake() { return IoStatus::ok; }
    // The authenticated identity (PSK identity or certificate subject); empty for plain TCP.
    [[nodiscard]] virtual const std::string& identity() const = 0;
    [[nodiscard]] virtual const std::string& last_error() const = 0;
    // Says goodbye where the transport has a way to (TLS close_notify); the owner closes fd().
    virtual void shutdown() {}
};

// Plain TCP over a connected, non-blocking socket (which the caller still owns).
std::unique_ptr<Transport> make_plain_transport(int fd);

}  // namespace tcpcan::linux_port
