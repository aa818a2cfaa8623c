// A tiny TLS (or plain) endpoint built on the port's Transport, so an independent TLS peer
// (openssl s_client / s_server) can be tested against our code byte for byte.
//
//   tls_echo server --port P [--host H] MODE [--handshake-timeout-ms N] [--max-handshakes N]
//   tls_echo client --port P [--host H] MODE [--tls-server-name NAME]
//   MODE: --plain | --tls-psk-file FILE | --tls-cert FILE --tls-key FILE --tls-ca FILE
//
// Server: accepts any number of clients on one epoll loop; bytes from any client go to
// stdout, bytes from stdin go to every client whose handshake is done. Runs until SIGTERM.
// Client: stdin to the server, the server's bytes to stdout; exits 0 when the server closes
// the session, 1 when the connection is refused or fails.
// Log lines on stderr name what happened to each connection ("client 3: authenticated as
// 'pi-bench'", "client 4: refused: unknown PSK identity 'x'"), for the tests to wait on.
#include "handshake_limit.hpp"
#include "log.hpp"
#include "net.hpp"
#include "tls.hpp"
#include "transport.hpp"
#include "clock.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace tcpcan::linux_port;

namespace {

struct Options {
    bool server = false;
    bool plain = false;
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    TlsOptions tls;
    std::uint64_t handshake_timeout_us = 5'000'000;
    std::size_t max_handshakes = 8;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "tls_echo: %s\nusage: tls_echo server|client --port P [--host H] "
                         "(--plain | --tls-psk-file F | --tls-cert F --tls-key F --tls-ca F) "
                         "[--tls-server-name N] [--handshake-timeout-ms N] [--max-handshakes N]\n", why);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    if (argc < 2) {
        usage("missing role");
    }
    Options o;
    const std::string role = argv[1];
    if (role != "server" && role != "client") {
        usage("role must be server or client");
    }
    o.server = role == "server";
    o.tls.role = o.server ? TlsRole::server : TlsRole::client;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--plain") {
            o.plain = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage("option without a value");
        }
        const std::string value = argv[++i];
        if (arg == "--port") {
            o.port = static_cast<std::uint16_t>(std::atoi(value.c_str()));
        } else if (arg == "--host") {
            o.host = value;
        } else if (arg == "--tls-psk-file") {
            o.tls.psk_file = value;
        } else if (arg == "--tls-cert") {
            o.tls.cert_file = value;
        } else if (arg == "--tls-key") {
            o.tls.key_file = value;
        } else if (arg == "--tls-ca") {
            o.tls.ca_file = value;
        } else if (arg == "--tls-server-name") {
            o.tls.server_name = value;
        } else if (arg == "--handshake-timeout-ms") {
            o.handshake_timeout_us = std::strtoull(value.c_str(), nullptr, 10) * 1000;
        } else if (arg == "--max-handshakes") {
            o.max_handshakes = std::strtoull(value.c_str(), nullptr, 10);
        } else {
            usage(("unknown option " + arg).c_str());
        }
    }
    if (o.port == 0) {
        usage("--port is required");
    }
    if (o.plain == o.tls.enabled()) {
        usage("give exactly one of --plain and the TLS options");
    }
    return o;
}

void write_all(int fd, const std::uint8_t* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            LOG_ERROR("cannot write to fd %d: %s", fd, std::strerror(errno));
            std::exit(1);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

struct Connection {
    int id = 0;
    std::unique_ptr<Transport> transport;
    std::uint64_t started_us = 0;
    bool in_handshake = false;
    std::vector<std::uint8_t> output;
};

class Endpoint {
public:
    explicit Endpoint(Options options) : options_{std::move(options)}, limit_{options_.max_handshakes, options_.handshake_timeout_us} {}

    int run() {
        signal(SIGPIPE, SIG_IGN);
        epoll_ = epoll_create1(EPOLL_CLOEXEC);
        if (!options_.plain) {
            TlsContextResult made = TlsContext::create(options_.tls);
            if (!made.context) {
                LOG_ERROR("%s", made.error.c_str());
                return 1;
            }
            context_ = std::move(made.context);
            LOG_INFO("%s", context_->summary().c_str());
        }
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
        watch(0, EPOLLIN, stdin_key);
        return options_.server ? serve() : connect_and_run();
    }

private:
    static constexpr int stdin_key = -1;
    static constexpr int listen_key_base = -100;

    void watch(int fd, std::uint32_t events, int key) {
        epoll_event event{};
        event.events = events;
        event.data.u64 = static_cast<std::uint64_t>(static_cast<std::int64_t>(key));
        if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) {
            epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &event);
        }
    }

    void rearm(Connection& c) {
        epoll_event event{};
        event.events = c.transport->wanted_events(!c.output.empty());
        event.data.u64 = static_cast<std::uint64_t>(c.id);
        epoll_ctl(epoll_, EPOLL_CTL_MOD, c.transport->fd(), &event);
    }

    int serve() {
        std::vector<int> listeners;
        const NetResult listening = listen_tcp(options_.host, options_.port, listeners);
        if (!listening.ok) {
            LOG_ERROR("%s", listening.error.c_str());
            return 1;
        }
        for (std::size_t i = 0; i < listeners.size(); ++i) {
            watch(listeners[i], EPOLLIN, listen_key_base - static_cast<int>(i));
        }
        LOG_INFO("listening on %s:%u", options_.host.c_str(), options_.port);
        for (;;) {
            wait_and_dispatch(listeners);
        }
    }

    int connect_and_run() {
        int fd = -1;
        bool in_progress = false;
        const NetResult started = start_connect(options_.host, options_.port, fd, in_progress);
        if (!started.ok) {
            LOG_ERROR("%s", started.error.c_str());
            return 1;
        }
        if (in_progress) {
            epoll_event event{};
            event.events = EPOLLOUT;
            epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event);
            epoll_event ready{};
            (void)epoll_wait(epoll_, &ready, 1, 10'000);
            epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
            const NetResult finished = finish_connect(fd);
            if (!finished.ok) {
                LOG_ERROR("cannot connect: %s", finished.error.c_str());
                return 1;
            }
        }
        add_connection(fd);
        while (!connections_.empty()) {
            wait_and_dispatch({});
        }
        return exit_status_;
    }

    void add_connection(int fd) {
        Connection c;
        c.id = next_id_++;
        if (context_) {
            c.transport = make_tls_transport(*context_, fd, options_.host);
        } else {
            c.transport = make_plain_transport(fd, {.refuse_tls_client_hello = options_.server});
        }
        c.started_us = monotonic_us();
        c.in_handshake = c.transport->handshaking();
        if (c.in_handshake && !limit_.try_begin()) {
            LOG_WARNING("client %d: refused: %zu TLS handshakes already under way", c.id, limit_.pending());
            ::close(fd);
            return;
        }
        if (!c.in_handshake) {
            LOG_INFO("client %d: connected (plain)", c.id);
        }
        epoll_event event{};
        event.events = c.transport->wanted_events(false);
        event.data.u64 = static_cast<std::uint64_t>(c.id);
        epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event);
        const int id = c.id;
        connections_.emplace(id, std::move(c));
        drive(connections_.at(id));
    }

    void close_connection(Connection& c, const char* what, const std::string& why) {
        if (c.in_handshake) {
            limit_.end();
        }
        LOG_INFO("client %d: %s: %s", c.id, what, why.empty() ? "no detail" : why.c_str());
        c.transport->shutdown();
        ::close(c.transport->fd());
        const int id = c.id;
        connections_.erase(id);
    }

    // Handshake, then read and write as far as the socket allows; may erase `c`.
    void drive(Connection& c) {
        if (c.in_handshake) {
            const IoStatus status = c.transport->handshake();
            if (status == IoStatus::would_block) {
                rearm(c);
                return;
            }
            if (status != IoStatus::ok) {
                exit_status_ = 1;
                close_connection(c, "refused", c.transport->last_error());
                return;
            }
            c.in_handshake = false;
            limit_.end();
            LOG_INFO("client %d: authenticated as '%s'", c.id, c.transport->identity().c_str());
        }
        std::array<std::uint8_t, 16384> buffer{};
        for (int round = 0; round < 64; ++round) {
            const IoResult r = c.transport->read(buffer);
            if (r.status == IoStatus::ok) {
                write_all(1, buffer.data(), r.bytes);
                continue;
            }
            if (r.status == IoStatus::closed || r.status == IoStatus::error) {
                if (r.status == IoStatus::error) {
                    exit_status_ = 1;
                }
                close_connection(c, r.status == IoStatus::closed ? "closed" : "refused", c.transport->last_error());
                return;
            }
            break;
        }
        while (!c.output.empty()) {
            const IoResult w = c.transport->write(c.output);
            if (w.status == IoStatus::ok) {
                c.output.erase(c.output.begin(), c.output.begin() + static_cast<std::ptrdiff_t>(w.bytes));
                continue;
            }
            if (w.status != IoStatus::would_block) {
                exit_status_ = 1;
                close_connection(c, "failed", c.transport->last_error());
                return;
            }
            break;
        }
        rearm(c);
    }

    void expire_handshakes() {
        const std::uint64_t now = monotonic_us();
        std::vector<int> expired;
        for (auto& [id, c] : connections_) {
            if (c.in_handshake && limit_.expired(c.started_us, now)) {
                expired.push_back(id);
            }
        }
        for (const int id : expired) {
            close_connection(connections_.at(id), "refused",
                             "TLS handshake did not finish within " + std::to_string(limit_.timeout_us() / 1000) + " ms");
        }
    }

    int next_timeout_ms() const {
        std::uint64_t earliest = UINT64_MAX;
        for (const auto& [id, c] : connections_) {
            if (c.in_handshake && limit_.deadline(c.started_us) < earliest) {
                earliest = limit_.deadline(c.started_us);
            }
        }
        if (earliest == UINT64_MAX) {
            return -1;
        }
        const std::uint64_t now = monotonic_us();
        return earliest <= now ? 0 : static_cast<int>((earliest - now) / 1000 + 1);
    }

    void wait_and_dispatch(const std::vector<int>& listeners) {
        std::array<epoll_event, 32> events{};
        const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), next_timeout_ms());
        for (int i = 0; i < n; ++i) {
            const auto key = static_cast<int>(static_cast<std::int64_t>(events[static_cast<std::size_t>(i)].data.u64));
            if (key == stdin_key) {
                read_stdin();
            } else if (key <= listen_key_base) {
                accept_all(listeners[static_cast<std::size_t>(listen_key_base - key)]);
            } else if (auto found = connections_.find(key); found != connections_.end()) {
                drive(found->second);
            }
        }
        // Buffered TLS input is invisible to epoll.
        std::vector<int> buffered;
        for (auto& [id, c] : connections_) {
            if (c.transport->has_buffered_input()) {
                buffered.push_back(id);
            }
        }
        for (const int id : buffered) {
            if (auto found = connections_.find(id); found != connections_.end()) {
                drive(found->second);
            }
        }
        expire_handshakes();
    }

    void accept_all(int listener) {
        for (int round = 0; round < 64; ++round) {
            const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                return;
            }
            configure_connection(fd);
            LOG_INFO("client %d: accepted from %s", next_id_, peer_name(fd).c_str());
            add_connection(fd);
        }
    }

    void read_stdin() {
        std::array<std::uint8_t, 16384> buffer{};
        const ssize_t n = ::read(0, buffer.data(), buffer.size());
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                epoll_ctl(epoll_, EPOLL_CTL_DEL, 0, nullptr);  // stdin ended: keep serving
            }
            return;
        }
        std::vector<int> ids;
        for (auto& [id, c] : connections_) {
            ids.push_back(id);
        }
        for (const int id : ids) {
            auto found = connections_.find(id);
            if (found == connections_.end()) {
                continue;
            }
            found->second.output.insert(found->second.output.end(), buffer.begin(), buffer.begin() + n);
            drive(found->second);
        }
    }

    Options options_;
    HandshakeLimit limit_;
    std::unique_ptr<TlsContext> context_;
    std::map<int, Connection> connections_;
    int epoll_ = -1;
    int next_id_ = 1;
    int exit_status_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    set_log_level(LogLevel::info);
    return Endpoint(parse(argc, argv)).run();
}
