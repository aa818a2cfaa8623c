// The measuring end of the real-vcan benchmark (bench.sh): counts frames on a CAN interface,
// and measures latency from one interface to another with its own timestamped frames.
//
//   bench_probe count IF --expect N [--idle-ms MS] [--max-ms MS]
//       Reads every frame on IF (classic and FD) until N arrived, or no frame came for
//       MS milliseconds (default 1500) after the first, or --max-ms passed (default 60000).
//       Prints `ready` once the socket is bound, then one line of key=value results:
//       count, span_us (first to last frame), fps, overflow (frames the kernel dropped on
//       this socket: then the run cannot judge anything else).
//
//   bench_probe send IF --rate FPS --count N [--fd]
//       Writes N frames (ID 123, 8 or with --fd 64 bytes, a counter in the data) on IF at FPS
//       frames/s on an absolute CLOCK_MONOTONIC schedule: a frame that is due goes out at once,
//       so a generator delayed by a busy machine catches up instead of drifting slower (cangen
//       sleeps a fixed gap after each frame, which under emulation gives half the rate asked).
//       Prints sent, seconds, fps and how many writes had to wait for buffer space.
//
//   bench_probe latency --tx IF0 --rx IF1 --rate FPS --count N [--fd] [--warmup K]
//       Writes N frames on IF0 at FPS frames/s (absolute schedule on CLOCK_MONOTONIC),
//       each carrying its sequence number, and reads them on IF1. The latency of a frame is
//       its receive time minus the time just before its write(), in the same process and
//       clock. Percentiles (µs) over all frames but the first K (default 100). Frames that
//       do not arrive within 2 s of the last write are lost; duplicates and frames out of
//       order are counted. One line of key=value results.
//
// Exit status: 0 when measured, 1 for a run that cannot be judged (probe overflow), 2 for bad
// arguments or a failure to set up. Every loop is bounded by a count or a deadline.
#include <linux/can.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::uint64_t ns_per_ms = 1'000'000;
constexpr std::uint64_t ns_per_s = 1'000'000'000;
constexpr std::uint32_t probe_id = 0x7A5;  // an ID cangen's fixed-ID traffic never uses

[[noreturn]] void usage_error(const char* what) {
    std::fprintf(stderr, "bench_probe: %s\n(see the comment at the top of bench_probe.cpp)\n", what);
    std::exit(2);
}

[[noreturn]] void system_error(const char* what, const char* detail = "") {
    std::fprintf(stderr, "bench_probe: %s%s: %s\n", what, detail, std::strerror(errno));
    std::exit(2);
}

std::uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * ns_per_s + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t parse_number(std::string_view option, const char* text) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        std::fprintf(stderr, "bench_probe: %.*s needs a whole number, got '%s'\n", static_cast<int>(option.size()),
                     option.data(), text);
        std::exit(2);
    }
    return v;
}

// A CAN_RAW socket bound to one interface, FD frames on, a large receive buffer, and
// SO_RXQ_OVFL so the probe notices when it was too slow itself.
int open_can(const char* ifname) {
    const int fd = socket(AF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
    if (fd < 0) {
        system_error("socket(AF_CAN)");
    }
    const int on = 1;
    if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &on, sizeof on) != 0) {
        system_error("CAN_RAW_FD_FRAMES on ", ifname);
    }
    const int buffer = 8 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) != 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);  // not root: the best allowed
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    const unsigned index = if_nametoindex(ifname);
    if (index == 0) {
        system_error("no CAN interface ", ifname);
    }
    sockaddr_can address{};
    address.can_family = AF_CAN;
    address.can_ifindex = static_cast<int>(index);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        system_error("bind to ", ifname);
    }
    return fd;
}

// Reads up to `batch` frames without blocking; returns how many, and the latest kernel
// overflow count seen (SO_RXQ_OVFL is cumulative per socket).
struct Reader {
    static constexpr unsigned batch = 64;
    int fd;
    canfd_frame frames[batch]{};
    iovec iov[batch]{};
    mmsghdr messages[batch]{};
    alignas(cmsghdr) char control[batch][CMSG_SPACE(sizeof(std::uint32_t))]{};
    std::uint32_t overflow = 0;

    explicit Reader(int socket_fd) : fd(socket_fd) {
        for (unsigned i = 0; i < batch; ++i) {
            iov[i] = {&frames[i], sizeof frames[i]};
            messages[i].msg_hdr.msg_iov = &iov[i];
            messages[i].msg_hdr.msg_iovlen = 1;
        }
    }

    int read_some() {
        for (unsigned i = 0; i < batch; ++i) {
            messages[i].msg_hdr.msg_control = control[i];
            messages[i].msg_hdr.msg_controllen = sizeof control[i];
        }
        const int n = recvmmsg(fd, messages, batch, MSG_DONTWAIT, nullptr);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return 0;
            }
            system_error("recvmmsg");
        }
        for (int i = 0; i < n; ++i) {
            msghdr& h = messages[i].msg_hdr;
            for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                    std::memcpy(&overflow, CMSG_DATA(c), sizeof overflow);
                }
            }
        }
        return n;
    }

    // Waits up to timeout_ns for something to read (false: nothing came).
    bool wait(std::uint64_t timeout_ns) const {
        pollfd p{fd, POLLIN, 0};
        const timespec ts{static_cast<time_t>(timeout_ns / ns_per_s), static_cast<long>(timeout_ns % ns_per_s)};
        const int r = ppoll(&p, 1, &ts, nullptr);
        if (r < 0 && errno != EINTR) {
            system_error("ppoll");
        }
        return r > 0;
    }
};

int count_main(int argc, char** argv) {
    if (argc < 1) {
        usage_error("count needs an interface");
    }
    const char* ifname = argv[0];
    std::uint64_t expect = 0, idle_ms = 1500, max_ms = 60000;
    for (int i = 1; i < argc; ++i) {
        const std::string_view option = argv[i];
        if (i + 1 >= argc) {
            usage_error("an option lacks its value");
        }
        const char* value = argv[++i];
        if (option == "--expect") {
            expect = parse_number(option, value);
        } else if (option == "--idle-ms") {
            idle_ms = parse_number(option, value);
        } else if (option == "--max-ms") {
            max_ms = parse_number(option, value);
        } else {
            usage_error("unknown option for count");
        }
    }
    if (expect == 0) {
        usage_error("count needs --expect N (N > 0)");
    }
    Reader reader(open_can(ifname));
    std::printf("ready\n");
    std::fflush(stdout);

    const std::uint64_t start = monotonic_ns();
    const std::uint64_t give_up = start + max_ms * ns_per_ms;
    std::uint64_t count = 0, first = 0, last = 0;
    while (count < expect) {
        const std::uint64_t now = monotonic_ns();
        if (now >= give_up) {
            break;
        }
        std::uint64_t until = give_up;
        if (count > 0) {
            until = std::min(until, last + idle_ms * ns_per_ms);
            if (now >= until) {
                break;
            }
        }
        if (!reader.wait(until - now)) {
            continue;
        }
        const int n = reader.read_some();
        if (n > 0) {
            last = monotonic_ns();
            if (count == 0) {
                first = last;
            }
            count += static_cast<std::uint64_t>(n);
        }
    }
    const std::uint64_t span_ns = last - first;
    const double fps = span_ns > 0 && count > 1 ? static_cast<double>(count - 1) * 1e9 / static_cast<double>(span_ns) : 0;
    std::printf("count=%llu span_us=%llu fps=%.0f overflow=%u\n", static_cast<unsigned long long>(count),
                static_cast<unsigned long long>(span_ns / 1000), fps, reader.overflow);
    return reader.overflow == 0 ? 0 : 1;
}

int send_main(int argc, char** argv) {
    if (argc < 1) {
        usage_error("send needs an interface");
    }
    const char* ifname = argv[0];
    std::uint64_t rate = 0, count = 0;
    bool fd_frames = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view option = argv[i];
        if (option == "--fd") {
            fd_frames = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage_error("an option lacks its value");
        }
        const char* value = argv[++i];
        if (option == "--rate") {
            rate = parse_number(option, value);
        } else if (option == "--count") {
            count = parse_number(option, value);
        } else {
            usage_error("unknown option for send");
        }
    }
    if (count == 0 || rate == 0 || rate > 1'000'000) {
        usage_error("send needs --count N (N > 0) and --rate 1..1000000");
    }
    const int tx = open_can(ifname);
    const can_filter none{};
    (void)setsockopt(tx, SOL_CAN_RAW, CAN_RAW_FILTER, &none, 0);  // it reads nothing
    canfd_frame frame{};
    frame.can_id = 0x123;
    frame.len = fd_frames ? 64 : 8;
    const std::size_t frame_size = fd_frames ? CANFD_MTU : CAN_MTU;
    const std::uint64_t period_ns = ns_per_s / rate;
    const std::uint64_t start = monotonic_ns();
    std::uint64_t waited = 0;
    for (std::uint64_t seq = 0; seq < count; ++seq) {
        const std::uint64_t due = start + seq * period_ns;
        const timespec at{static_cast<time_t>(due / ns_per_s), static_cast<long>(due % ns_per_s)};
        while (monotonic_ns() < due && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
        }
        std::memcpy(frame.data, &seq, sizeof seq);
        // A full device queue (ENOBUFS) is waited out, at most 100 times 1 ms per frame.
        int tries = 0;
        while (write(tx, &frame, frame_size) != static_cast<ssize_t>(frame_size)) {
            if (errno != ENOBUFS || ++tries > 100) {
                system_error("write to ", ifname);
            }
            ++waited;
            const timespec ms{0, static_cast<long>(ns_per_ms)};
            nanosleep(&ms, nullptr);
        }
    }
    const double seconds = static_cast<double>(monotonic_ns() - start) / 1e9;
    std::printf("sent=%llu seconds=%.3f fps=%.0f waited=%llu\n", static_cast<unsigned long long>(count), seconds,
                seconds > 0 ? static_cast<double>(count) / seconds : 0.0, static_cast<unsigned long long>(waited));
    return 0;
}

int latency_main(int argc, char** argv) {
    const char* tx_if = nullptr;
    const char* rx_if = nullptr;
    std::uint64_t rate = 1000, count = 0, warmup = 100;
    bool fd_frames = false;
    for (int i = 0; i < argc; ++i) {
        const std::string_view option = argv[i];
        if (option == "--fd") {
            fd_frames = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage_error("an option lacks its value");
        }
        const char* value = argv[++i];
        if (option == "--tx") {
            tx_if = value;
        } else if (option == "--rx") {
            rx_if = value;
        } else if (option == "--rate") {
            rate = parse_number(option, value);
        } else if (option == "--count") {
            count = parse_number(option, value);
        } else if (option == "--warmup") {
            warmup = parse_number(option, value);
        } else {
            usage_error("unknown option for latency");
        }
    }
    if (tx_if == nullptr || rx_if == nullptr || count == 0 || rate == 0 || rate > 1'000'000) {
        usage_error("latency needs --tx IF --rx IF --count N (N > 0) and --rate 1..1000000");
    }
    if (warmup >= count) {
        usage_error("--warmup must be smaller than --count");
    }
    const int tx = open_can(tx_if);
    Reader reader(open_can(rx_if));
    // The transmitting socket must not fill its own receive queue with what rx reads.
    const can_filter none{};
    (void)setsockopt(tx, SOL_CAN_RAW, CAN_RAW_FILTER, &none, 0);

    std::vector<std::uint64_t> sent_at(count, 0), latency_ns(count, 0);
    std::vector<std::uint8_t> seen(count, 0);
    std::uint64_t received = 0, duplicates = 0, out_of_order = 0, foreign = 0, next_expected = 0;

    auto take_frames = [&](int n) {
        const std::uint64_t now = monotonic_ns();
        for (int i = 0; i < n; ++i) {
            const canfd_frame& f = reader.frames[i];
            if ((f.can_id & CAN_EFF_MASK) != probe_id || f.len < 4) {
                ++foreign;
                continue;
            }
            std::uint32_t seq = 0;
            std::memcpy(&seq, f.data, sizeof seq);
            if (seq >= count || sent_at[seq] == 0) {
                ++foreign;
                continue;
            }
            if (seen[seq]) {
                ++duplicates;
                continue;
            }
            seen[seq] = 1;
            ++received;
            latency_ns[seq] = now - sent_at[seq];
            if (seq < next_expected) {
                ++out_of_order;
            }
            next_expected = std::max<std::uint64_t>(next_expected, seq + 1);
        }
    };

    canfd_frame frame{};
    frame.can_id = probe_id;
    frame.len = fd_frames ? 64 : 8;
    for (unsigned i = 4; i < frame.len; ++i) {
        frame.data[i] = static_cast<std::uint8_t>(0xA0 + i);
    }
    const std::size_t frame_size = fd_frames ? CANFD_MTU : CAN_MTU;
    const std::uint64_t period_ns = ns_per_s / rate;
    const std::uint64_t start = monotonic_ns() + 10 * ns_per_ms;
    std::uint64_t write_errors = 0;
    for (std::uint64_t seq = 0; seq < count; ++seq) {
        const std::uint64_t due = start + seq * period_ns;
        // Read what arrived until the next frame is due.
        for (std::uint64_t now = monotonic_ns(); now < due; now = monotonic_ns()) {
            if (reader.wait(due - now)) {
                take_frames(reader.read_some());
            }
        }
        const std::uint32_t seq32 = static_cast<std::uint32_t>(seq);
        std::memcpy(frame.data, &seq32, sizeof seq32);
        sent_at[seq] = monotonic_ns();
        if (write(tx, &frame, frame_size) != static_cast<ssize_t>(frame_size)) {
            ++write_errors;
            sent_at[seq] = 0;
        }
    }
    const std::uint64_t drain_until = monotonic_ns() + 2 * ns_per_s;
    for (std::uint64_t now = monotonic_ns(); now < drain_until && received + write_errors < count; now = monotonic_ns()) {
        if (reader.wait(drain_until - now)) {
            take_frames(reader.read_some());
        }
    }

    std::vector<std::uint64_t> measured;
    measured.reserve(count);
    for (std::uint64_t seq = warmup; seq < count; ++seq) {
        if (seen[seq]) {
            measured.push_back(latency_ns[seq]);
        }
    }
    std::sort(measured.begin(), measured.end());
    auto percentile_us = [&](double p) -> double {
        if (measured.empty()) {
            return 0;
        }
        const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(measured.size() - 1) + 0.5);
        return static_cast<double>(measured[std::min(rank, measured.size() - 1)]) / 1000.0;
    };
    std::printf("sent=%llu received=%llu lost=%llu duplicates=%llu out_of_order=%llu foreign=%llu write_errors=%llu "
                "p50_us=%.0f p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f overflow=%u\n",
                static_cast<unsigned long long>(count - write_errors), static_cast<unsigned long long>(received),
                static_cast<unsigned long long>(count - write_errors - received),
                static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(out_of_order),
                static_cast<unsigned long long>(foreign), static_cast<unsigned long long>(write_errors),
                percentile_us(50), percentile_us(90), percentile_us(99), percentile_us(99.9), percentile_us(100),
                reader.overflow);
    return reader.overflow == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage_error("usage: bench_probe count IF --expect N ... | send IF --rate FPS --count N ... | latency --tx IF --rx IF ...");
    }
    const std::string_view mode = argv[1];
    if (mode == "count") {
        return count_main(argc - 2, argv + 2);
    }
    if (mode == "send") {
        return send_main(argc - 2, argv + 2);
    }
    if (mode == "latency") {
        return latency_main(argc - 2, argv + 2);
    }
    usage_error("the first argument must be count, send or latency");
}
