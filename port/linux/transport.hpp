// A byte stream to one peer, plain TCP or TLS, as the epoll loop sees it: non-blocking
// reads and writes, the epoll events it needs, and an optional handshake before any
// application byte moves. The protocol core never knows which one carries its bytes.
//
// How the loop drives a Transport (level-triggered epoll on fd()):
//  1. While handshaking(): on any event call handshake(); `ok` ends the handshake,
//     `would_block` waits for wanted_events(), `error`/`closed` closes the connection and
//     last_error() names why. The loop bounds the time and number of pending handshakes
//     (see handshake_limit.hpp).
//  2. Then (at once after the handshake: the peer's first bytes may have come with it):
//     read() until it returns would_block (or the application has no room), and again
//     whenever has_buffered_input(): TLS may hold records that epoll cannot see.
//  3. write() what the application has; after `would_block`, the next write() must start
//     with the same bytes (TLS retries the record it had begun); `ok` may move fewer bytes
//     than offered.
//  4. Re-arm epoll with wanted_events(app_has_output) after every call.
//  5. shutdown() before closing the fd; the owner closes the fd.
// The process must ignore SIGPIPE (OpenSSL writes to the socket with write()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace tcpcan::linux_port {

enum class IoStatus { ok, would_block, closed, error };

struct IoResult {
    IoStatus status;
    std::size_t bytes;  // bytes moved when ok (> 0); 0 otherwise
};

[[nodiscard]] const char* describe(IoStatus status);

class Transport {
public:
    virtual ~Transport() = default;
    Transport() = default;
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    [[nodiscard]] virtual int fd() const = 0;

    // Non-blocking. `ok` with bytes > 0 (a write of nothing is `ok` with 0); `closed` when the peer ended the stream (a TLS
    // peer that closed without close_notify is `closed` too, with last_error() saying so);
    // `error` with last_error() naming the cause.
    [[nodiscard]] virtual IoResult read(std::span<std::uint8_t> into) = 0;
    [[nodiscard]] virtual IoResult write(std::span<const std::uint8_t> bytes) = 0;

    // EPOLLIN/EPOLLOUT bits the transport needs now, given whether the application has
    // bytes to write. A handshake may need EPOLLOUT; a TLS write may need EPOLLIN.
    [[nodiscard]] virtual std::uint32_t wanted_events(bool app_has_output) const = 0;

    // Bytes wait inside the transport (TLS records read ahead, or decrypted bytes that did
    // not fit the last read): call read() again without waiting for epoll. False once a
    // read() returned would_block, so a partial record never makes the loop spin.
    [[nodiscard]] virtual bool has_buffered_input() const { return false; }

    // True while a handshake is under way: no application bytes move yet.
    [[nodiscard]] virtual bool handshaking() const { return false; }

    // Drives the handshake (call when the fd is ready): ok when done, would_block while
    // under way, error/closed with last_error() naming why.
    [[nodiscard]] virtual IoStatus handshake() { return IoStatus::ok; }

    // The authenticated identity (PSK identity or the certificate's subject CN); empty when
    // the peer is not authenticated (plain TCP).
    [[nodiscard]] virtual const std::string& identity() const = 0;

    // Why the last call failed, as a sentence for the log; empty when nothing failed.
    [[nodiscard]] virtual const std::string& last_error() const = 0;

    // Sends a TLS close_notify where there is one (best effort, never blocks).
    virtual void shutdown() {}
};

// Whether the first bytes a client sent are the start of a TLS record carrying a handshake
// (a ClientHello: 0x16, then 0x03 and a minor version 0x00-0x04). A shorter input counts
// when every byte it has fits that start: no dialect this project serves begins with 0x16
// (tcpcan starts with 'v', cannelloni with 'C', socketcand clients with '<'), so one byte
// is enough to tell. Empty input is false.
[[nodiscard]] bool looks_like_tls_client_hello(std::span<const std::uint8_t> first_bytes);

struct PlainOptions {
    // A server's connection: when the client's first bytes look like a TLS ClientHello, the
    // first read() fails with an error naming it (a TLS client on a plaintext port).
    bool refuse_tls_client_hello = false;
};

// Plain TCP on a connected non-blocking socket; does not own the fd.
[[nodiscard]] std::unique_ptr<Transport> make_plain_transport(int fd, PlainOptions options = {});

}  // namespace tcpcan::linux_port
