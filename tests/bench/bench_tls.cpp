// What TLS costs the byte stream: plain and TLS 1.3 (PSK, both ends ours) transports over a
// socketpair in one thread, writing tcpcan-sized messages one write() each and in 4 KiB
// batches. Prints MB/s and CPU ns per message; asserts nothing (speed is reported, not tested).
//   bench_tls [MEGABYTES]
#include "temp_files.hpp"
#include "tls.hpp"
#include "transport.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

using namespace tcpcan::linux_port;

namespace {

double seconds(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool handshake(Transport& a, Transport& b) {
    IoStatus sa = IoStatus::would_block;
    IoStatus sb = IoStatus::would_block;
    for (int i = 0; i < 1000 && (sa == IoStatus::would_block || sb == IoStatus::would_block); ++i) {
        if (sb == IoStatus::would_block) {
            sb = b.handshake();
        }
        if (sa == IoStatus::would_block) {
            sa = a.handshake();
        }
    }
    return sa == IoStatus::ok && sb == IoStatus::ok;
}

// Moves `total` bytes from `from` to `to` in writes of `chunk` bytes.
void run(const char* name, Transport& from, Transport& to, std::size_t total, std::size_t chunk, std::size_t message) {
    std::vector<std::uint8_t> data(chunk, 0x5A);
    std::array<std::uint8_t, 65536> buffer{};
    std::size_t sent = 0;
    std::size_t received = 0;
    std::size_t offset = 0;  // within the current chunk (a would_block retries the same bytes)
    const double wall0 = seconds(CLOCK_MONOTONIC);
    const double cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    while (received < total) {
        for (int burst = 0; burst < 256 && sent < total; ++burst) {
            const IoResult w = from.write(std::span(data).subspan(offset));
            if (w.status != IoStatus::ok) {
                break;
            }
            offset += w.bytes;
            sent += w.bytes;
            if (offset == data.size()) {
                offset = 0;
            }
        }
        for (;;) {
            const IoResult r = to.read(buffer);
            if (r.status != IoStatus::ok) {
                break;
            }
            received += r.bytes;
        }
    }
    const double wall = seconds(CLOCK_MONOTONIC) - wall0;
    const double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    const double messages = static_cast<double>(total) / static_cast<double>(message);
    std::printf("%-34s %8.1f MB/s  %7.1f ns CPU per %zu-byte message  (%.2f s)\n", name,
                static_cast<double>(total) / wall / 1e6, cpu * 1e9 / messages, message, wall);
}

}  // namespace

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    const std::size_t megabytes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
    const std::size_t total = megabytes << 20;
    constexpr std::size_t message = 18;  // an 'f' message with an 8-byte classic frame, roughly

    TempDir dir;
    const std::string key = "pi:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    TlsOptions server_options;
    server_options.psk_file = dir.write("s.psk", key);
    TlsOptions client_options = server_options;
    client_options.role = TlsRole::client;
    auto server_context = TlsContext::create(server_options);
    auto client_context = TlsContext::create(client_options);
    if (!server_context.context || !client_context.context) {
        std::fprintf(stderr, "%s%s\n", server_context.error.c_str(), client_context.error.c_str());
        return 1;
    }
    for (const std::size_t chunk : {message, std::size_t{4096}}) {
        for (const bool tls : {false, true}) {
            int fds[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
                return 1;
            }
            std::unique_ptr<Transport> a = tls ? make_tls_transport(*client_context.context, fds[0]) : make_plain_transport(fds[0]);
            std::unique_ptr<Transport> b = tls ? make_tls_transport(*server_context.context, fds[1]) : make_plain_transport(fds[1]);
            if (!handshake(*a, *b)) {
                std::fprintf(stderr, "handshake failed: %s %s\n", a->last_error().c_str(), b->last_error().c_str());
                return 1;
            }
            char name[64];
            std::snprintf(name, sizeof name, "%s, %zu-byte writes", tls ? "TLS 1.3 (AES-128-GCM)" : "plain", chunk);
            run(name, *a, *b, chunk == message ? total / 8 : total, chunk, message);
            a.reset();
            b.reset();
            ::close(fds[0]);
            ::close(fds[1]);
        }
    }
    return 0;
}
