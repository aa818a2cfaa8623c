// The tcpcan program end to end on 127.0.0.1: frames/s, CPU per frame and latency, over
// plain TCP and then over TLS 1.3 (pre-shared key) in the same run.
//
//   bench_bridge TCPCAN [--frames N] [--rate FPS] [--seconds S] [--plain-only | --tls-only] [--no-resume]
//
// --no-resume turns acknowledged delivery off on both sides (the clients do not offer it and
// the server runs with --no-resume), so the cost of acknowledgements at full speed is the
// difference between a run with and one without it. With it (the default) B acknowledges
// what it took ('k'), and A and the server keep what is unacknowledged in replay buffers.
//
// Starts `TCPCAN server --can - --bind 127.0.0.1 --port P` (stdin: a pipe kept open and
// silent; stdout: /dev/null, so every frame is also formatted as a candump line as it would
// be for a real stdio bus; stderr: a temporary file), and connects two version-2 clients A
// and B built on the core's Session. A frame from A goes to the server's bus and to B.
//   throughput  A sends N 8-byte classic frames (index in the data) as fast as its session
//               and socket take them; B checks they arrive in order. Frames/s end to end,
//               the server's CPU per frame (utime+stime from /proc/PID/stat, and on-CPU
//               time from /proc/PID/schedstat) and this program's own CPU per frame.
//   latency     A sends at a fixed rate (default 10,000 frames/s, a fully loaded 1 Mbit/s
//               bus) for S seconds with its CLOCK_MONOTONIC send time in the data; B
//               records receive - send. Percentiles in µs.
// Each mode starts its own server; the TLS one gets --tls-psk-file with a fresh random key
// (a mode-600 file in a temporary folder), and A and B connect through the Linux port's
// TLS Transport (the same code the tcpcan client uses).
// Results: a small table per mode, one line `bench_bridge: mode=M key=value ...` each, and
// `bench_bridge: tls_vs_plain fps_ratio=R cpu_per_frame_ratio=R` (CPU per frame at the
// fixed rate of the latency phase). Exit status 0 when
// every frame arrived in order, 1 when not, 2 for bad arguments or a failure to set up.
// Every loop is bounded by a count and a deadline.
#include <tcpcan/session.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tls.hpp"
#include "transport.hpp"

using namespace tcpcan;
using tcpcan::linux_port::IoResult;
using tcpcan::linux_port::IoStatus;
using tcpcan::linux_port::TlsContext;
using tcpcan::linux_port::Transport;

namespace {

constexpr std::uint64_t ms_ns = 1'000'000;
constexpr std::uint64_t s_ns = 1'000'000'000;

struct Options {
    std::string tcpcan;
    std::uint64_t frames = 200'000;
    double rate = 10'000;
    double seconds = 3;
    bool plain = true;
    bool tls = true;
    bool resume = true;  // feature::resume offered by the clients and the server
};

// Stops the server (if one runs) and shows its log; set once it exists.
void (*cleanup_on_exit)() = nullptr;

[[noreturn]] void die(const char* format, ...) {
    std::fprintf(stderr, "bench_bridge: ");
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fprintf(stderr, "\n");
    if (void (*cleanup)() = cleanup_on_exit) {
        cleanup_on_exit = nullptr;
        cleanup();
    }
    std::exit(2);
}

std::uint64_t mono_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * s_ns + static_cast<std::uint64_t>(ts.tv_nsec);
}
std::uint64_t mono_us() { return mono_ns() / 1000; }

// ---- the server process ------------------------------------------------------------------
struct Cpu {
    double stat_s = 0;    // utime + stime, clock-tick resolution
    double oncpu_s = 0;   // schedstat run time, ns resolution (0 when unavailable)
};

Cpu process_cpu(pid_t pid) {
    Cpu cpu;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const std::size_t paren = text.rfind(')');  // the command name may hold spaces
    if (paren != std::string::npos) {
        std::istringstream fields(text.substr(paren + 1));
        std::string field;
        unsigned long long utime = 0, stime = 0;
        for (int i = 3; i <= 15 && (fields >> field); ++i) {  // field 3 is the state
            if (i == 14) {
                utime = std::strtoull(field.c_str(), nullptr, 10);
            } else if (i == 15) {
                stime = std::strtoull(field.c_str(), nullptr, 10);
            }
        }
        cpu.stat_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    std::ifstream sched("/proc/" + std::to_string(pid) + "/schedstat");
    unsigned long long run_ns = 0;
    if (sched >> run_ns) {
        cpu.oncpu_s = static_cast<double>(run_ns) / 1e9;
    }
    return cpu;
}

double self_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string read_whole(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size) != 0) {
        die("cannot find a free port on 127.0.0.1: %s", std::strerror(errno));
    }
    close(fd);
    return ntohs(a.sin_port);
}

class Server {
public:
    // Starts the server and waits (deadline 10 s) for it to log "listening on".
    bool start(const std::string& tcpcan, std::uint16_t port, const std::vector<std::string>& extra) {
        remove_log();  // from an earlier attempt
        port_ = port;
        char path[] = "/tmp/bench_bridge_stderr_XXXXXX";
        const int err = mkostemp(path, O_CLOEXEC);
        if (err < 0) {
            die("mkostemp: %s", std::strerror(errno));
        }
        stderr_path_ = path;
        int in[2];
        if (pipe2(in, O_CLOEXEC) != 0) {
            die("pipe2: %s", std::strerror(errno));
        }
        const int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        const std::string port_text = std::to_string(port);
        const pid_t parent = getpid();
        pid_ = fork();
        if (pid_ < 0) {
            die("fork: %s", std::strerror(errno));
        }
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the benchmark
            if (getppid() != parent) {
                _exit(127);
            }
            if (dup2(in[0], 0) < 0 || dup2(null, 1) < 0 || dup2(err, 2) < 0) {
                _exit(127);
            }
            std::vector<const char*> argv = {tcpcan.c_str(), "server", "--can", "-", "--bind", "127.0.0.1", "--port",
                                             port_text.c_str()};
            for (const std::string& arg : extra) {
                argv.push_back(arg.c_str());
            }
            argv.push_back(nullptr);
            execv(tcpcan.c_str(), const_cast<char* const*>(argv.data()));
            std::fprintf(stderr, "exec %s: %s\n", tcpcan.c_str(), std::strerror(errno));
            _exit(127);
        }
        close(in[0]);
        close(null);
        close(err);
        stdin_ = in[1];  // held open and silent: the server's bus sends nothing
        const std::uint64_t deadline = mono_ns() + 10 * s_ns;
        while (mono_ns() < deadline) {
            if (read_whole(stderr_path_).find("listening on") != std::string::npos) {
                return true;
            }
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                stop();  // closes the pipe
                return false;
            }
            usleep(5000);
        }
        stop();
        return false;
    }

    // SIGTERM to this pid only, then wait (deadline 5 s; SIGKILL after it).
    void stop() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            const std::uint64_t deadline = mono_ns() + 5 * s_ns;
            int status = 0;
            pid_t r = 0;
            while ((r = waitpid(pid_, &status, WNOHANG)) == 0 && mono_ns() < deadline) {
                usleep(5000);
            }
            if (r == 0) {
                std::fprintf(stderr, "bench_bridge: server %d ignored SIGTERM for 5 s; killing it\n", pid_);
                kill(pid_, SIGKILL);
                waitpid(pid_, &status, 0);
            }
            exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            pid_ = -1;
        }
        if (stdin_ >= 0) {
            close(stdin_);
            stdin_ = -1;
        }
    }

    void remove_log() {
        if (!stderr_path_.empty()) {
            unlink(stderr_path_.c_str());
            stderr_path_.clear();
        }
    }

    ~Server() {
        stop();
        remove_log();
    }

    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] int exit_status() const { return exit_status_; }
    [[nodiscard]] std::string log() const { return read_whole(stderr_path_); }

private:
    pid_t pid_ = -1;
    int stdin_ = -1;
    std::uint16_t port_ = 0;
    int exit_status_ = -1;
    std::string stderr_path_;
};

// ---- the clients ---------------------------------------------------------------------------
using ClientSession = Session<65536, 4096, 64, 64, FullProfile, 4096>;

struct Client {
    const char* name = "";
    int fd = -1;
    std::unique_ptr<Transport> transport;  // plain or TLS; before fd in destruction order
    std::unique_ptr<ClientSession> session;
    std::array<std::uint8_t, 65536> buffer{};
    std::uint64_t read_ns = 0;  // CLOCK_MONOTONIC right after the last read returned

    ~Client() {
        if (transport) {
            transport->shutdown();
            transport.reset();
        }
        if (fd >= 0) {
            close(fd);
        }
    }

    // Connects (and, with `tls`, finishes the TLS handshake) before `deadline`.
    void connect_to(std::uint16_t port, std::uint64_t deadline, const TlsContext* tls, bool resume) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        if (fd < 0 || (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)) {
            die("%s: cannot connect to 127.0.0.1:%u: %s", name, port, std::strerror(errno));
        }
        pollfd p{fd, POLLOUT, 0};
        const std::uint64_t now = mono_ns();
        if (poll(&p, 1, static_cast<int>(deadline > now ? (deadline - now) / ms_ns + 1 : 0)) != 1) {
            die("%s: connecting to 127.0.0.1:%u took too long", name, port);
        }
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0) {
            die("%s: cannot connect to 127.0.0.1:%u: %s", name, port, std::strerror(error));
        }
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        transport = tls ? linux_port::make_tls_transport(*tls, fd, "127.0.0.1") : linux_port::make_plain_transport(fd);
        while (transport->handshaking()) {
            const IoStatus status = transport->handshake();
            if (status == IoStatus::ok) {
                break;
            }
            if (status != IoStatus::would_block) {
                die("%s: TLS handshake: %s", name, transport->last_error().c_str());
            }
            const std::uint64_t at = mono_ns();
            if (at > deadline) {
                die("%s: the TLS handshake took too long", name);
            }
            pollfd w{fd, static_cast<short>(transport->wanted_events(false)), 0};
            poll(&w, 1, static_cast<int>((deadline - at) / ms_ns + 1));
        }
        SessionOptions o;
        o.role = Role::client;
        o.features = feature::sequence | (resume ? feature::resume : 0);
        session = std::make_unique<ClientSession>(o, mono_us());
    }

    [[nodiscard]] bool established() const { return session->state() == SessionState::established; }

    void check_open() const {
        if (session->is_closed()) {
            const std::string_view text = session->close_text();
            die("%s: session closed (%.*s)", name, static_cast<int>(text.size()), text.data());
        }
    }

    // Sends what the session has; returns bytes written (0 when the socket is full).
    std::size_t flush() {
        std::size_t total = 0;
        for (int i = 0; i < 64 && !session->output().empty(); ++i) {
            const IoResult r = transport->write(session->output());
            if (r.status == IoStatus::ok && r.bytes > 0) {
                session->consume_output(r.bytes);
                total += r.bytes;
            } else if (r.status == IoStatus::would_block) {
                break;
            } else {
                die("%s: send: %s", name, r.status == IoStatus::ok ? "no progress" : transport->last_error().c_str());
            }
        }
        return total;
    }

    // Reads once (no more than the bus queue can hold) and hands each received frame to
    // on_frame; returns bytes read (0 when nothing was waiting).
    template <class OnFrame>
    std::size_t read_once(OnFrame&& on_frame) {
        const std::size_t room = std::min(buffer.size(), session->bus_queue_free() * 8);
        const IoResult got = transport->read(std::span<std::uint8_t>(buffer.data(), room));
        read_ns = mono_ns();
        if (got.status == IoStatus::would_block) {
            return 0;
        }
        if (got.status == IoStatus::closed) {
            die("%s: the server closed the connection", name);
        }
        if (got.status != IoStatus::ok) {
            die("%s: recv: %s", name, transport->last_error().c_str());
        }
        const auto n = static_cast<ssize_t>(got.bytes);
        const ReceiveResult r = session->receive(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)),
                                                 read_ns / 1000);
        if (!r.ok) {
            check_open();
            die("%s: protocol error from the server", name);
        }
        const std::uint64_t now_us = read_ns / 1000;
        while (const Frame* f = session->peek_bus_frame(now_us)) {
            on_frame(*f);
            session->pop_bus_frame();
        }
        // As a port does after each read: what reached the "bus" is acknowledged (feature::resume).
        session->tick(now_us);
        flush();
        check_open();
        return static_cast<std::size_t>(n);
    }

    // Reads until nothing is waiting (at most 64 reads).
    template <class OnFrame>
    std::size_t read_all(OnFrame&& on_frame) {
        std::size_t total = 0;
        for (int i = 0; i < 64; ++i) {
            const std::size_t n = read_once(on_frame);
            if (n == 0) {
                break;
            }
            total += n;
        }
        return total;
    }
};

// Waits for A writable (when it has output) or B readable, at most timeout_ns.
void wait_io(Client& a, Client& b, std::uint64_t timeout_ns) {
    if (b.transport->has_buffered_input() || a.transport->has_buffered_input()) {
        return;  // TLS records already read from the socket: poll would not tell
    }
    // EPOLLIN/EPOLLOUT have the values of POLLIN/POLLOUT.
    pollfd p[2] = {{b.fd, static_cast<short>(b.transport->wanted_events(false)), 0},
                   {a.fd, static_cast<short>(a.transport->wanted_events(!a.session->output().empty())), 0}};
    const timespec ts{static_cast<time_t>(timeout_ns / s_ns), static_cast<long>(timeout_ns % s_ns)};
    ppoll(p, 2, &ts, nullptr);
}

void put_u64(Frame& f, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        f.data[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}
std::uint64_t get_u64(const Frame& f) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | f.data[static_cast<std::size_t>(i)];
    }
    return v;
}

void handshake(Client& a, Client& b) {
    const std::uint64_t deadline = mono_ns() + 5 * s_ns;
    auto no_frames = [](const Frame&) { die("a frame arrived before the test started"); };
    // Until both are established and have written everything (B's 'h' included).
    while (!(a.established() && b.established() && a.session->output().empty() && b.session->output().empty())) {
        if (mono_ns() > deadline) {
            die("the sessions were not established within 5 s (A %d, B %d)", static_cast<int>(a.session->state()),
                static_cast<int>(b.session->state()));
        }
        a.flush();
        b.flush();
        a.read_all(no_frames);
        b.read_all(no_frames);
        pollfd p[2] = {{a.fd, POLLIN, 0}, {b.fd, POLLIN, 0}};
        poll(p, 2, 10);
    }
    if (a.session->version() != 2 || b.session->version() != 2) {
        die("expected protocol version 2, agreed %u and %u", a.session->version(), b.session->version());
    }
}

// ---- (a) throughput --------------------------------------------------------------------------
struct Throughput {
    std::uint64_t sent = 0, received = 0, out_of_order = 0, lost = 0;
    double seconds = 0, fps = 0;
    double server_stat_us = 0, server_oncpu_us = 0, bench_us = 0;  // CPU per frame
    bool timed_out = false;
};

Throughput run_throughput(Client& a, Client& b, pid_t server, std::uint64_t frames) {
    Throughput t;
    Frame frame;
    frame.id = 0x123;
    frame.len = 8;
    const std::size_t message = frame_message_size(frame, (a.session->agreed_features() & feature::sequence) != 0,
                                                   (a.session->agreed_features() & feature::timestamps) != 0);
    std::uint64_t expected = 0;
    auto on_frame = [&](const Frame& f) {
        const std::uint64_t index = get_u64(f);
        if (index != expected) {
            ++t.out_of_order;
        }
        expected = index + 1;
        ++t.received;
    };
    const Cpu server_before = process_cpu(server);
    const double self_before = self_cpu_s();
    const std::uint64_t start = mono_ns();
    const std::uint64_t deadline = start + 120 * s_ns;
    std::uint64_t last_progress = start;
    std::uint64_t end = start;
    while (t.received < frames) {
        const std::uint64_t now = mono_ns();
        if (now > deadline || now - last_progress > 5 * s_ns) {
            t.timed_out = true;
            break;
        }
        // Refilled only once the socket has taken everything: Session::output_room() can
        // promise room that send_frame() then refuses (output_full) while a partly written
        // message sits near the end of the buffer, since the buffer is only compacted when
        // less than one message fits at its end, not less than the control reserve plus one.
        // A whole 64 KiB session buffer per refill keeps the socket busy all the same.
        if (a.session->output().empty()) {
            for (; t.sent < frames && a.session->output_room() >= message && a.session->has_room_for(1, message);
                 ++t.sent) {
                put_u64(frame, t.sent);
                if (const SendResult r = a.session->send_frame(frame, now / 1000); r != SendResult::queued) {
                    die("A: the session refused frame %" PRIu64 " (send result %d)", t.sent, static_cast<int>(r));
                }
            }
        }
        a.session->tick(now / 1000);
        b.session->tick(now / 1000);  // acknowledgements (feature::resume) go out from here
        const std::size_t out = a.flush();
        b.flush();  // B only ever has control messages (pongs, acknowledgements) to write
        const std::size_t in = b.read_all(on_frame);
        a.read_all([](const Frame&) { die("A received a frame it sent"); });
        if (in > 0) {
            end = b.read_ns;
            last_progress = end;
        }
        if (out == 0 && in == 0) {
            wait_io(a, b, 100 * ms_ns);
        }
    }
    const Cpu server_after = process_cpu(server);
    const double self_after = self_cpu_s();
    t.seconds = static_cast<double>(end - start) / 1e9;
    t.fps = t.seconds > 0 ? static_cast<double>(t.received) / t.seconds : 0;
    const double n = t.received > 0 ? static_cast<double>(t.received) : 1;
    t.server_stat_us = (server_after.stat_s - server_before.stat_s) * 1e6 / n;
    t.server_oncpu_us = (server_after.oncpu_s - server_before.oncpu_s) * 1e6 / n;
    t.bench_us = (self_after - self_before) * 1e6 / n;
    t.lost = t.sent - t.received;
    return t;
}

// ---- (b) latency ------------------------------------------------------------------------------
struct Latency {
    std::uint64_t planned = 0, sent = 0, received = 0, out_of_order = 0;
    double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;  // µs
    double send_lag_max_us = 0;  // how far behind its schedule A's worst send was
    double server_cpu_pct = 0;   // server CPU over the phase, % of one core
    bool timed_out = false;
};

double percentile(const std::vector<std::uint64_t>& sorted, double q) {
    if (sorted.empty()) {
        return 0;
    }
    // Nearest rank: the smallest value with at least q of the samples at or below it.
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

Latency run_latency(Client& a, Client& b, pid_t server, double rate, double seconds) {
    Latency l;
    l.planned = static_cast<std::uint64_t>(std::llround(rate * seconds));
    std::vector<std::uint64_t> samples;
    samples.reserve(l.planned);
    Frame frame;
    frame.id = 0x124;
    frame.len = 8;
    std::uint64_t last_sent_at = 0;
    auto on_frame = [&](const Frame& f) {
        const std::uint64_t sent_at = get_u64(f);
        if (sent_at < last_sent_at) {
            ++l.out_of_order;
        }
        last_sent_at = sent_at;
        samples.push_back(b.read_ns - sent_at);
        ++l.received;
    };
    const double period = 1e9 / rate;
    const Cpu server_before = process_cpu(server);
    const std::uint64_t start = mono_ns() + ms_ns;
    const std::uint64_t deadline = start + static_cast<std::uint64_t>(seconds * 1e9) + 10 * s_ns;
    std::uint64_t last_progress = start;
    auto due = [&](std::uint64_t i) { return start + static_cast<std::uint64_t>(std::llround(period * static_cast<double>(i))); };
    while (l.received < l.planned) {
        std::uint64_t now = mono_ns();
        if (now > deadline || (l.sent == l.planned && now - last_progress > 2 * s_ns)) {
            l.timed_out = true;
            break;
        }
        while (l.sent < l.planned && due(l.sent) <= now) {
            const std::uint64_t at = mono_ns();
            l.send_lag_max_us = std::max(l.send_lag_max_us, static_cast<double>(at - due(l.sent)) / 1000.0);
            put_u64(frame, at);
            if (const SendResult r = a.session->send_frame(frame, at / 1000); r != SendResult::queued) {
                die("A: the session refused frame %" PRIu64 " (send result %d, %zu bytes unwritten)", l.sent,
                    static_cast<int>(r), a.session->output().size());
            }
            ++l.sent;
            a.flush();
            now = mono_ns();
        }
        a.session->tick(now / 1000);
        b.session->tick(now / 1000);
        a.flush();
        b.flush();
        if (b.read_all(on_frame) > 0) {
            last_progress = b.read_ns;
        }
        a.read_all([](const Frame&) { die("A received a frame it sent"); });
        now = mono_ns();
        std::uint64_t wait = 100 * ms_ns;
        if (l.sent < l.planned) {
            const std::uint64_t next = due(l.sent);
            wait = next > now ? next - now : 0;
        }
        if (wait > 0) {
            wait_io(a, b, wait);
        }
    }
    const std::uint64_t end = mono_ns();
    const Cpu server_after = process_cpu(server);
    l.server_cpu_pct = 100.0 * (server_after.stat_s - server_before.stat_s) / (static_cast<double>(end - start) / 1e9);
    std::sort(samples.begin(), samples.end());
    l.p50 = percentile(samples, 0.50);
    l.p90 = percentile(samples, 0.90);
    l.p99 = percentile(samples, 0.99);
    l.p999 = percentile(samples, 0.999);
    l.max = samples.empty() ? 0 : static_cast<double>(samples.back()) / 1000.0;
    double sum = 0;
    for (std::uint64_t s : samples) {
        sum += static_cast<double>(s);
    }
    l.mean = samples.empty() ? 0 : sum / static_cast<double>(samples.size()) / 1000.0;
    return l;
}

// ---- main ----------------------------------------------------------------------------------------
Options parse(int argc, char** argv) {
    Options o;
    auto number = [&](int& i, const char* what) {
        if (i + 1 >= argc) {
            die("%s needs a value", what);
        }
        char* end = nullptr;
        const double v = std::strtod(argv[++i], &end);
        if (end == argv[i] || *end != '\0' || !(v > 0)) {
            die("%s: '%s' is not a positive number", what, argv[i]);
        }
        return v;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--frames") {
            o.frames = static_cast<std::uint64_t>(number(i, "--frames"));
        } else if (arg == "--rate") {
            o.rate = number(i, "--rate");
        } else if (arg == "--seconds") {
            o.seconds = number(i, "--seconds");
        } else if (arg == "--plain-only") {
            o.tls = false;
        } else if (arg == "--no-resume") {
            o.resume = false;
        } else if (arg == "--tls-only") {
            o.plain = false;
        } else if (arg == "-h" || arg == "--help") {
            std::printf("usage: bench_bridge TCPCAN [--frames N] [--rate FPS] [--seconds S] [--plain-only | --tls-only] "
                        "[--no-resume]\n");
            std::exit(0);
        } else if (o.tcpcan.empty() && !arg.starts_with("-")) {
            o.tcpcan = arg;
        } else {
            die("unexpected argument '%s' (usage: bench_bridge TCPCAN [--frames N] [--rate FPS] [--seconds S])", argv[i]);
        }
    }
    if (o.tcpcan.empty()) {
        die("usage: bench_bridge TCPCAN [--frames N] [--rate FPS] [--seconds S]");
    }
    if (access(o.tcpcan.c_str(), X_OK) != 0) {
        die("%s is not an executable program", o.tcpcan.c_str());
    }
    if (!o.plain && !o.tls) {
        die("--plain-only and --tls-only exclude each other");
    }
    if (o.rate * o.seconds > 1e8) {
        die("--rate times --seconds is above 100,000,000 frames");
    }
    return o;
}

// The 1-minute load average: other work on the machine shows up in the latency tail.
double load_average() {
    std::ifstream in("/proc/loadavg");
    double load = -1;
    in >> load;
    return load;
}

std::string last_line_with(const std::string& log, std::string_view what) {
    const std::size_t at = log.rfind(what);
    if (at == std::string::npos) {
        return {};
    }
    const std::size_t begin = log.rfind('\n', at);
    const std::size_t end = log.find('\n', at);
    return log.substr(begin == std::string::npos ? 0 : begin + 1, end == std::string::npos ? std::string::npos : end - begin - 1);
}

// A folder with a mode-600 PSK file holding one fresh random key; removed at exit.
class PskFile {
public:
    PskFile() {
        char folder[] = "/tmp/bench_bridge_psk_XXXXXX";
        if (mkdtemp(folder) == nullptr) {
            die("mkdtemp: %s", std::strerror(errno));
        }
        folder_ = folder;
        path_ = folder_ + "/bench.psk";
        std::array<std::uint8_t, 32> key{};
        const int random = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (random < 0 || read(random, key.data(), key.size()) != static_cast<ssize_t>(key.size())) {
            die("cannot read /dev/urandom");
        }
        close(random);
        std::string line = "bench:";
        for (std::uint8_t byte : key) {
            char hex[3];
            std::snprintf(hex, sizeof hex, "%02x", byte);
            line += hex;
        }
        line += "\n";
        const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
            die("cannot write %s", path_.c_str());
        }
        close(fd);
    }
    ~PskFile() {
        unlink(path_.c_str());
        rmdir(folder_.c_str());
    }
    PskFile(const PskFile&) = delete;
    PskFile& operator=(const PskFile&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string folder_, path_;
};

struct ModeResult {
    const char* mode = "";
    Throughput t;
    Latency l;
    bool complete = false;
    // Server CPU per frame at the latency phase's fixed rate, µs.
    [[nodiscard]] double cpu_per_frame_at_rate_us(double rate) const { return l.server_cpu_pct / 100.0 / rate * 1e6; }
};

Server* current_server = nullptr;  // for cleanup_on_exit

// One mode end to end: its own server, A and B, throughput, latency, the server stopped.
ModeResult run_mode(const Options& o, const char* mode, const TlsContext* tls, std::vector<std::string> server_args) {
    if (!o.resume) {
        server_args.push_back("--no-resume");
    }
    const double load_before = load_average();
    Server server;
    current_server = &server;
    bool started = false;
    for (int attempt = 0; attempt < 3 && !started; ++attempt) {
        started = server.start(o.tcpcan, free_port(), server_args);
        if (!started) {
            std::fprintf(stderr, "bench_bridge: the server did not start; its log:\n%s\n", server.log().c_str());
        }
    }
    if (!started) {
        die("giving up: %s server did not start", o.tcpcan.c_str());
    }

    ModeResult result;
    result.mode = mode;
    Client a, b;
    a.name = "A";
    b.name = "B";
    const std::uint64_t connect_deadline = mono_ns() + 5 * s_ns;
    a.connect_to(server.port(), connect_deadline, tls, o.resume);
    b.connect_to(server.port(), connect_deadline, tls, o.resume);
    handshake(a, b);

    const Throughput t = run_throughput(a, b, server.pid(), o.frames);
    const Latency l = run_latency(a, b, server.pid(), o.rate, o.seconds);
    const SessionStats& bs = b.session->stats();

    server.stop();
    current_server = nullptr;
    const std::string log = server.log();
    const std::string final_stats = last_line_with(log, "final stats:");
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const double load_after = load_average();

    std::printf("tcpcan bridge benchmark, %s: tcpcan server --can - on 127.0.0.1:%u, clients A and B (protocol 2, "
                "features %s), %ld CPUs, load average %.2f before, %.2f after\n",
                mode, server.port(),
                (a.session->agreed_features() & feature::resume)     ? "seq,resume"
                : (a.session->agreed_features() & feature::sequence) ? "seq"
                                                                     : "none",
                cpus,
                load_before, load_after);
    std::printf("  throughput (A -> server -> B, 8-byte classic frames)\n");
    std::printf("    frames sent / received          %" PRIu64 " / %" PRIu64 " (%" PRIu64 " lost, %" PRIu64
                " out of order)%s\n",
                t.sent, t.received, t.lost, t.out_of_order, t.timed_out ? " TIMED OUT" : "");
    std::printf("    end to end                      %.0f frames/s (%.3f s)\n", t.fps, t.seconds);
    std::printf("    server CPU per frame            %.2f us (utime+stime), %.2f us (on-CPU, schedstat)\n",
                t.server_stat_us, t.server_oncpu_us);
    std::printf("    bench CPU per frame (A and B)   %.2f us\n", t.bench_us);
    std::printf("  latency (A -> server -> B, %.0f frames/s for %.1f s)\n", o.rate, o.seconds);
    std::printf("    frames sent / received          %" PRIu64 " / %" PRIu64 " (%" PRIu64 " out of order)%s\n", l.sent,
                l.received, l.out_of_order, l.timed_out ? " TIMED OUT" : "");
    std::printf("    p50 / p90 / p99 / p99.9 / max   %.1f / %.1f / %.1f / %.1f / %.1f us (mean %.1f)\n", l.p50, l.p90, l.p99,
                l.p999, l.max, l.mean);
    std::printf("    worst send lag behind schedule  %.1f us\n", l.send_lag_max_us);
    std::printf("    server CPU                      %.1f %% of one core (%.2f us per frame)\n", l.server_cpu_pct,
                l.server_cpu_pct / 100.0 / o.rate * 1e6);
    std::printf("  B's session: gaps=%" PRIu64 " lost=%" PRIu64 " duplicates=%" PRIu64 "\n", bs.sequence.gaps,
                bs.sequence.lost, bs.sequence.duplicates);
    std::printf("  server: %s (exit status %d)\n", final_stats.empty() ? "no final stats line" : final_stats.c_str(),
                server.exit_status());
    std::printf("bench_bridge: mode=%s resume=%d frames=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64 " out_of_order=%" PRIu64
                " seconds=%.3f fps=%.0f server_cpu_us_per_frame=%.3f server_oncpu_us_per_frame=%.3f "
                "bench_cpu_us_per_frame=%.3f lat_rate=%.0f lat_seconds=%.1f lat_sent=%" PRIu64 " lat_received=%" PRIu64
                " p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f send_lag_max_us=%.1f "
                "lat_server_cpu_pct=%.1f lat_server_cpu_us_per_frame=%.3f cpus=%ld load_before=%.2f load_after=%.2f\n",
                mode, (a.session->agreed_features() & feature::resume) != 0 ? 1 : 0, t.sent, t.received, t.lost,
                t.out_of_order, t.seconds, t.fps, t.server_stat_us, t.server_oncpu_us,
                t.bench_us, o.rate, o.seconds, l.sent, l.received, l.p50, l.p90, l.p99, l.p999, l.max, l.mean,
                l.send_lag_max_us, l.server_cpu_pct, l.server_cpu_pct / 100.0 / o.rate * 1e6, cpus, load_before,
                load_after);
    std::fflush(stdout);
    result.t = t;
    result.l = l;
    result.complete = !t.timed_out && !l.timed_out && t.lost == 0 && t.out_of_order == 0 && l.received == l.planned &&
                      l.out_of_order == 0;
    if (!result.complete) {
        std::fprintf(stderr, "bench_bridge: %s: frames were lost or reordered; server log:\n%s\n", mode, log.c_str());
    }
    return result;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL);  // wake at the send times asked for, not 50 µs later
    cleanup_on_exit = [] {
        if (Server* server = current_server) {
            current_server = nullptr;
            server->stop();
            std::fprintf(stderr, "bench_bridge: server log:\n%s\n", server->log().c_str());
            server->remove_log();
        }
    };

    std::vector<ModeResult> results;
    if (o.plain) {
        results.push_back(run_mode(o, "plain", nullptr, {}));
    }
    if (o.tls) {
        static PskFile psk;  // static: die() exits without unwinding, atexit-style cleanup still runs
        linux_port::TlsOptions options;
        options.role = linux_port::TlsRole::client;
        options.psk_file = psk.path();
        linux_port::TlsContextResult made = TlsContext::create(options);
        if (!made.context) {
            die("TLS client context: %s", made.error.c_str());
        }
        results.push_back(run_mode(o, "tls", made.context.get(), {"--tls-psk-file", psk.path()}));
    }
    bool complete = true;
    for (const ModeResult& r : results) {
        complete = complete && r.complete;
    }
    if (results.size() == 2) {
        const ModeResult& plain = results[0];
        const ModeResult& tls = results[1];
        const double fps_ratio = plain.t.fps > 0 ? tls.t.fps / plain.t.fps : 0;
        const double plain_cpu = plain.cpu_per_frame_at_rate_us(o.rate);
        const double cpu_ratio = plain_cpu > 0 ? tls.cpu_per_frame_at_rate_us(o.rate) / plain_cpu : 0;
        std::printf("TLS against plain, same run: %.0f / %.0f frames/s at full speed (%.2f of plain); server CPU per "
                    "frame at %.0f frames/s %.2f / %.2f us (%.2fx)\n",
                    tls.t.fps, plain.t.fps, fps_ratio, o.rate, tls.cpu_per_frame_at_rate_us(o.rate), plain_cpu, cpu_ratio);
        std::printf("bench_bridge: tls_vs_plain fps_ratio=%.3f cpu_per_frame_ratio=%.3f\n", fps_ratio, cpu_ratio);
    }
    return complete ? 0 : 1;
}
