#include "bridge.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include <tcpcan/candump_text.hpp>
#include <tcpcan/session.hpp>

#include "clock.hpp"
#include "log.hpp"
#include "net.hpp"
#include "notify.hpp"
#include "socketcan_port.hpp"
#include "stdio_port.hpp"

namespace tcpcan::linux_port {

namespace {

// 64 KiB of encoded frames towards each peer (~3,000 frames: a fraction of a second
// of a full bus) and 2,048 frames waiting for the bus from each peer.
using BridgeSession = Session<65536, 2048, 64, 64>;

constexpr std::uint64_t second_us = 1'000'000;
constexpr std::uint64_t max_backoff_us = 30 * second_us;
constexpr std::size_t bus_batch = 64;
constexpr std::size_t max_frame_message = header_size + 6 + 4 + 8 + max_fd_length;

struct Connection {
    int fd = -1;
    std::string peer;
    bool connecting = false;
    std::uint32_t registered = 0;  // epoll events asked for now
    std::unique_ptr<BridgeSession> session;
    std::uint64_t drops_logged = 0;  // drops already reported in the log
    std::uint64_t drops_logged_at = 0;
};

// Session counters summed over every session, live and ended.
struct Totals {
    std::uint64_t sent = 0, received = 0, dropped = 0, lost = 0, duplicates = 0, gaps = 0, filtered = 0;
    std::uint64_t output_full = 0, bus_queue_full = 0, expired = 0, refused_read_only = 0, unsent_at_close = 0;
    std::uint64_t rtt_us = 0;  // the last round trip measured, over all sessions

    void add(const SessionStats& s) {
        sent += s.frames_written;
        received += s.frames_from_peer;
        dropped += s.dropped_towards_peer() + s.dropped_towards_bus();
        lost += s.sequence.lost;
        duplicates += s.sequence.duplicates;
        gaps += s.sequence.gaps;
        filtered += s.filtered_out;
        rtt_us = s.rtt_last_us != 0 ? s.rtt_last_us : rtt_us;
        output_full += s.drop_output_full;
        bus_queue_full += s.drop_bus_queue_full;
        expired += s.drop_expired;
        refused_read_only += s.drop_refused;
        unsent_at_close += s.drop_unsent_at_close + s.drop_unsent_bus_queue;
    }
};

std::string feature_names(std::uint32_t features) {
    std::string s;
    if (features & feature::sequence) {
        s += "seq";
    }
    if (features & feature::timestamps) {
        s += s.empty() ? "ts" : ",ts";
    }
    return s.empty() ? "none" : s;
}

std::string frame_text(const Frame& f) {
    std::array<char, max_candump_frame + 1> text{};
    const std::size_t n = format_candump_frame(f, std::span<char>(text.data(), max_candump_frame));
    return std::string(text.data(), n);
}

class Bridge {
public:
    explicit Bridge(const BridgeConfig& config) : config_(config) {}

    ~Bridge() {
        for (int fd : listen_fds_) {
            ::close(fd);
        }
        for (auto& c : connections_) {
            ::close(c->fd);
        }
        if (signal_fd_ >= 0) {
            ::close(signal_fd_);
        }
        if (epoll_fd_ >= 0) {
            ::close(epoll_fd_);
        }
    }

    int run() {
        if (!setup()) {
            return 1;
        }
        std::array<epoll_event, 64> events{};
        while (!stopping_ && exit_status_ < 0) {
            const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), wait_ms());
            if (n < 0 && errno != EINTR) {
                LOG_ERROR("epoll_wait: %s", std::strerror(errno));
                return 1;
            }
            now_ = monotonic_us();
            bool bus_readable = false;
            for (int i = 0; i < n; ++i) {
                const int fd = events[i].data.fd;
                const std::uint32_t what = events[i].events;
                if (fd == signal_fd_) {
                    signalfd_siginfo info{};
                    if (::read(signal_fd_, &info, sizeof info) == sizeof info) {
                        LOG_INFO("received %s; closing sessions", strsignal(static_cast<int>(info.ssi_signo)));
                    }
                    stopping_ = true;
                } else if (std::find(listen_fds_.begin(), listen_fds_.end(), fd) != listen_fds_.end()) {
                    accept_clients(fd);
                } else if (Connection* c = find(fd)) {
                    on_connection_event(*c, what);
                } else if (fd == registered_bus_read_fd_) {
                    bus_readable = true;
                }
                // The stdout wait fd needs no action: draining below retries the writes.
            }
            service(bus_readable);
        }
        shutdown();
        return exit_status_ < 0 ? 0 : exit_status_;
    }

private:
    bool setup() {
        epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGINT);
        sigaddset(&signals, SIGTERM);
        sigprocmask(SIG_BLOCK, &signals, nullptr);
        signal(SIGPIPE, SIG_IGN);
        signal_fd_ = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
        watch(signal_fd_, EPOLLIN);

        if (config_.can_interface == "-") {
            bus_ = std::make_unique<StdioPort>();
        } else {
            auto can = std::make_unique<SocketCanPort>(config_.can_interface, config_.forward);
            const SocketCanOpen opened = can->open();
            if (!opened.ok) {
                LOG_ERROR("%s", opened.error.c_str());
                return false;
            }
            LOG_INFO("CAN interface %s open (%s, %zu kernel filters)", config_.can_interface.c_str(),
                     can->fd_capable() ? "CAN FD" : "classic CAN", can->kernel_filter_count());
            bus_ = std::move(can);
        }
        now_ = monotonic_us();
        next_maintain_ = now_ + second_us;
        next_stats_ = config_.stats_interval_us ? now_ + config_.stats_interval_us : 0;
        if (config_.serve) {
            const NetResult r = listen_tcp(config_.host, config_.port, listen_fds_);
            if (!r.ok) {
                LOG_ERROR("cannot listen on %s port %u: %s", config_.host.c_str(), config_.port, r.error.c_str());
                return false;
            }
            for (int fd : listen_fds_) {
                watch(fd, EPOLLIN);
                LOG_INFO("listening on %s (bus %s, protocol version up to %u, at most %d clients%s)",
                         local_name(fd).c_str(), bus_->name().c_str(), config_.max_version, config_.max_clients,
                         config_.read_only ? ", read-only" : "");
            }
        } else {
            reconnect_at_ = now_;
        }
        notify_ready(config_.serve ? "listening" : "connecting");
        return true;
    }

    // ---- epoll bookkeeping -----------------------------------------------------------
    void watch(int fd, std::uint32_t events) {
        epoll_event e{};
        e.events = events;
        e.data.fd = fd;
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e);
    }
    void rewatch(int fd, std::uint32_t events) {
        epoll_event e{};
        e.events = events;
        e.data.fd = fd;
        epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &e);
    }

    Connection* find(int fd) {
        for (auto& c : connections_) {
            if (c->fd == fd) {
                return c.get();
            }
        }
        return nullptr;
    }

    // ---- connections -----------------------------------------------------------------
    SessionOptions session_options(Role role, std::uint32_t max_version) const {
        SessionOptions o;
        o.role = role;
        o.max_version = max_version;
        o.features = config_.features;
        o.negotiation_timeout_us = config_.negotiation_timeout_us;
        o.heartbeat_interval_us = config_.heartbeat_us;
        o.dead_after_us = config_.dead_after_us;
        o.max_frame_age_us = config_.max_age_us;
        o.accept_frames = !config_.read_only;
        return o;
    }

    void add_connection(int fd, std::string peer, bool connecting, Role role, std::uint32_t max_version) {
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        c->peer = std::move(peer);
        c->connecting = connecting;
        if (!connecting) {
            start_session(*c, role, max_version);
        }
        c->registered = connecting ? EPOLLOUT : EPOLLIN;
        watch(fd, c->registered);
        connections_.push_back(std::move(c));
    }

    void start_session(Connection& c, Role role, std::uint32_t max_version) {
        c.session = std::make_unique<BridgeSession>(session_options(role, max_version), now_);
        if (role == Role::client && !config_.subscription.empty() &&
            !c.session->set_local_subscription(config_.subscription)) {
            LOG_WARNING("subscription has more entries than a session holds; sending all it can");
        }
    }

    void accept_clients(int listen_fd) {
        for (int i = 0; i < 64; ++i) {
            const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno != EAGAIN && errno != EINTR) {
                    LOG_WARNING("accept: %s", std::strerror(errno));
                }
                return;
            }
            configure_connection(fd);
            std::string peer = peer_name(fd);
            if (static_cast<int>(connections_.size()) >= config_.max_clients) {
                // Before agreement only 'v' may be sent, so there is no way to say why.
                LOG_WARNING("refusing client %s: already %zu clients (--max-clients %d)", peer.c_str(),
                            connections_.size(), config_.max_clients);
                ::close(fd);
                continue;
            }
            LOG_INFO("client %s connected (%zu now)", peer.c_str(), connections_.size() + 1);
            add_connection(fd, std::move(peer), false, Role::server, config_.max_version);
        }
    }

    void connect_to_server() {
        int fd = -1;
        bool in_progress = false;
        const std::uint32_t version = fallback_to_v1_ ? 1 : config_.max_version;
        const NetResult r = start_connect(config_.host, config_.port, fd, in_progress);
        const std::string target = config_.host + ":" + std::to_string(config_.port);
        if (!r.ok) {
            connection_failed(target + ": " + r.error);
            return;
        }
        LOG_DEBUG("connecting to %s (proposing version %u)", target.c_str(), version);
        add_connection(fd, target, in_progress, Role::client, version);
    }

    void connection_failed(const std::string& why) {
        if (!config_.retry) {
            LOG_ERROR("%s; not retrying (--no-retry)", why.c_str());
            exit_status_ = 1;
            return;
        }
        LOG_WARNING("%s; retrying in %.0f s", why.c_str(), static_cast<double>(backoff_us_) / 1e6);
        reconnect_at_ = now_ + backoff_us_;
        backoff_us_ = std::min(backoff_us_ * 2, max_backoff_us);
    }

    void on_connection_event(Connection& c, std::uint32_t what) {
        if (c.connecting) {
            if (!(what & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                return;
            }
            const NetResult r = finish_connect(c.fd);
            if (!r.ok) {
                const std::string why = "cannot connect to " + c.peer + ": " + r.error;
                remove_connection(c, false);
                connection_failed(why);
                return;
            }
            c.connecting = false;
            c.peer = peer_name(c.fd);
            const std::uint32_t version = fallback_to_v1_ ? 1 : config_.max_version;
            LOG_INFO("connected to %s from %s; proposing version %u", c.peer.c_str(), local_name(c.fd).c_str(), version);
            start_session(c, Role::client, version);
            return;
        }
        if (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            read_from_peer(c);
        }
    }

    void read_from_peer(Connection& c) {
        BridgeSession& s = *c.session;
        const std::size_t room = s.bus_queue_free() * 8;
        if (room == 0 || s.is_closed()) {
            return;
        }
        const ssize_t n = ::read(c.fd, read_buffer_.data(), std::min(read_buffer_.size(), room));
        if (n > 0) {
            const ReceiveResult r = s.receive(std::span<const std::uint8_t>(read_buffer_.data(), static_cast<std::size_t>(n)), now_);
            (void)r;  // a protocol error arrives as an event and closes the session
        } else if (n == 0) {
            LOG_DEBUG("%s: end of stream", c.peer.c_str());
            s.transport_closed(now_);
        } else if (errno != EAGAIN && errno != EINTR) {
            LOG_WARNING("%s: connection lost: %s", c.peer.c_str(), std::strerror(errno));
            s.transport_closed(now_);
        }
    }

    // Writes what the session has for the peer; false when the connection broke.
    void flush(Connection& c) {
        BridgeSession& s = *c.session;
        while (!s.output().empty()) {
            const auto out = s.output();
            const ssize_t n = send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                s.consume_output(static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && errno != EAGAIN) {
                LOG_WARNING("%s: connection lost while sending: %s", c.peer.c_str(), std::strerror(errno));
                s.transport_closed(now_);
            }
            return;
        }
    }

    void log_events(Connection& c) {
        BridgeSession& s = *c.session;
        const char* peer = c.peer.c_str();
        Event e;
        while (s.poll_event(e)) {
            switch (e.type) {
            case EventType::version_agreed:
                LOG_INFO("%s: version %u agreed%s", peer, e.value, e.value == 1 ? " (plain tcpcan)" : "");
                break;
            case EventType::features_agreed:
                backoff_us_ = second_us;
                if (s.version() >= 2) {
                    LOG_INFO("%s: features agreed: %s", peer, feature_names(e.value).c_str());
                }
                if (s.version() == 1 && !config_.subscription.empty()) {
                    LOG_WARNING("%s: version 1 cannot subscribe; filtering received frames here instead", peer);
                }
                break;
            case EventType::subscription_set:
                LOG_INFO("%s: subscribed with %u filter entries", peer, e.value);
                break;
            case EventType::sequence_gap:
                LOG_WARNING("%s: SEQ gap: %u frames lost before sequence %u", peer, e.value2, e.value + e.value2);
                break;
            case EventType::sequence_duplicate:
                LOG_WARNING("%s: SEQ duplicate: sequence %u dropped", peer, e.value);
                break;
            case EventType::sequence_reordered:
                LOG_WARNING("%s: SEQ late frame: sequence %u", peer, e.value);
                break;
            case EventType::rtt_measured:
                LOG_DEBUG("%s: round trip %.3f ms", peer, e.value / 1000.0);
                break;
            case EventType::peer_dead:
                LOG_WARNING("%s: dead peer: nothing received for %.1f s", peer, e.value / 1e6);
                break;
            case EventType::protocol_error:
                LOG_WARNING("%s: protocol error: %s at byte %llu of the stream; closing", peer, describe(e.error),
                            static_cast<unsigned long long>(e.offset));
                break;
            case EventType::closed:
                if (e.by_peer && s.version() >= 2 && !s.close_text().empty()) {
                    LOG_INFO("%s: closed by peer: %s (%.*s)", peer, describe(e.reason), static_cast<int>(s.close_text().size()),
                             s.close_text().data());
                } else if (e.by_peer) {
                    LOG_INFO("%s: %s", peer, s.version() >= 2 && e.reason != CloseReason::normal ? describe(e.reason)
                                                                                                  : "disconnected");
                } else {
                    LOG_INFO("%s: closing: %s", peer, describe(e.reason));
                }
                break;
            }
        }
    }

    // At most one line a second per peer, so a slow peer cannot flood the log.
    void log_new_drops(Connection& c) {
        const SessionStats& s = c.session->stats();
        const std::uint64_t drops = s.dropped_towards_peer() + s.dropped_towards_bus();
        if (drops == c.drops_logged || now_ - c.drops_logged_at < second_us) {
            return;
        }
        LOG_WARNING("%s: %llu frames dropped so far (towards peer: output full %llu; towards bus: expired %llu, "
                    "read-only %llu, queue full %llu)",
                    c.peer.c_str(), ull(drops), ull(s.drop_output_full), ull(s.drop_expired), ull(s.drop_refused),
                    ull(s.drop_bus_queue_full));
        c.drops_logged = drops;
        c.drops_logged_at = now_;
    }

    void remove_connection(Connection& c, bool reconnect) {
        if (c.session) {
            if (!c.session->is_closed()) {
                c.session->close(CloseReason::normal, "", now_);
            }
            flush(c);  // one try to deliver the close message
            c.session->transport_closed(now_);
            c.session->discard_bus_queue();
            log_events(c);
            ended_.add(c.session->stats());
        }
        const bool retry_v1 = c.session && c.session->retry_with_version_1();
        const std::string peer = c.peer;
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        connections_.erase(std::find_if(connections_.begin(), connections_.end(),
                                        [&c](const auto& p) { return p.get() == &c; }));
        if (config_.serve || !reconnect || stopping_) {
            return;
        }
        if (retry_v1) {
            LOG_INFO("%s closed the connection on our version %u proposal: retrying with version 1 (original tcpcan)",
                     peer.c_str(), config_.max_version);
            fallback_to_v1_ = true;
            reconnect_at_ = now_;
            return;
        }
        fallback_to_v1_ = false;
        connection_failed("connection to " + peer + " ended");
    }

    // ---- frames --------------------------------------------------------------------
    bool established(const Connection& c) const {
        return !c.connecting && c.session && c.session->state() == SessionState::established;
    }

    // A source that is not real time (stdin) is read only as fast as every peer takes it.
    bool bus_read_allowed() const {
        if (!bus_->paced()) {
            return true;
        }
        bool any = false;
        for (const auto& c : connections_) {
            if (established(*c)) {
                any = true;
                if (c->session->output_room() < bus_batch * max_frame_message) {
                    return false;
                }
            }
        }
        return any;
    }

    void offer_to_peers(const Frame& f, const Connection* except) {
        for (auto& c : connections_) {
            if (c.get() != except && established(*c)) {
                (void)c->session->send_frame(f, now_);  // every outcome is counted by the session
            }
        }
    }

    void read_bus() {
        std::array<Frame, bus_batch> frames{};
        for (int round = 0; round < 16 && bus_read_allowed(); ++round) {
            const std::size_t n = bus_->read(frames);
            for (std::size_t i = 0; i < n; ++i) {
                const Frame& f = frames[i];
                ++from_bus_;
                if (log_enabled(LogLevel::debug)) {
                    LOG_DEBUG("%s -> peers: %s", bus_->name().c_str(), frame_text(f).c_str());
                }
                if (!config_.forward.matches(f)) {
                    ++filtered_;
                    continue;
                }
                if (std::none_of(connections_.begin(), connections_.end(), [this](const auto& c) { return established(*c); })) {
                    ++unforwarded_;
                    continue;
                }
                offer_to_peers(f, nullptr);
            }
            if (n < frames.size()) {
                break;
            }
        }
    }

    // Round robin over peers until the bus is busy or every queue is empty.
    void drain_to_bus() {
        bus_busy_ = false;
        bool progress = true;
        while (progress && !bus_busy_) {
            progress = false;
            for (std::size_t i = 0; i < connections_.size() && !bus_busy_; ++i) {
                Connection& c = *connections_[i];
                if (!c.session) {
                    continue;
                }
                const Frame* f = c.session->peek_bus_frame(now_, wall_clock_us());
                if (f == nullptr) {
                    continue;
                }
                const BusWrite w = bus_->write(*f);
                if (w == BusWrite::busy) {
                    bus_busy_ = true;
                    break;
                }
                progress = true;
                if (w == BusWrite::written) {
                    ++to_bus_;
                    if (log_enabled(LogLevel::debug)) {
                        LOG_DEBUG("%s -> %s: %s", c.peer.c_str(), bus_->name().c_str(), frame_text(*f).c_str());
                    }
                    // Our own socket does not see what it sends: other peers hear it from us.
                    offer_to_peers(*f, &c);
                } else if (w == BusWrite::down) {
                    ++bus_down_drops_;
                }
                c.session->pop_bus_frame();
            }
        }
    }

    // ---- the loop's regular work ------------------------------------------------------
    void service(bool bus_readable) {
        if (bus_readable || bus_->read_always_ready()) {
            read_bus();
        }
        drain_to_bus();
        if (now_ >= next_maintain_) {
            bus_->maintain();
            next_maintain_ = now_ + second_us;
        }
        if (next_stats_ != 0 && now_ >= next_stats_) {
            print_stats("stats");
            next_stats_ = now_ + config_.stats_interval_us;
        }
        if (!config_.serve && connections_.empty() && reconnect_at_ != 0 && now_ >= reconnect_at_) {
            reconnect_at_ = 0;
            connect_to_server();
        }
        for (std::size_t i = 0; i < connections_.size();) {
            Connection& c = *connections_[i];
            if (c.connecting) {
                ++i;
                continue;
            }
            c.session->tick(now_);
            flush(c);
            log_events(c);
            log_new_drops(c);
            if (c.session->is_closed()) {
                remove_connection(c, true);
                continue;  // the vector shrank: same index, next connection
            }
            std::uint32_t want = 0;
            want |= c.session->bus_queue_free() > 0 ? std::uint32_t{EPOLLIN} : 0u;
            want |= c.session->output().empty() ? 0u : std::uint32_t{EPOLLOUT};
            if (want != c.registered) {
                rewatch(c.fd, want);
                c.registered = want;
            }
            ++i;
        }
        const bool stdout_pending = !bus_->flush();
        update_bus_watch(stdout_pending);
    }

    void update_bus_watch(bool write_pending) {
        const int read_fd = bus_read_allowed() ? bus_->read_fd() : -1;
        if (read_fd != registered_bus_read_fd_ || bus_->generation() != registered_generation_) {
            registered_generation_ = bus_->generation();
            if (registered_bus_read_fd_ >= 0) {
                epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, registered_bus_read_fd_, nullptr);
            }
            if (read_fd >= 0) {
                watch(read_fd, EPOLLIN);
            }
            registered_bus_read_fd_ = read_fd;
        }
        const int write_fd = (write_pending || bus_busy_) ? bus_->write_wait_fd() : -1;
        if (write_fd != registered_bus_write_fd_) {
            if (registered_bus_write_fd_ >= 0) {
                epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, registered_bus_write_fd_, nullptr);
            }
            if (write_fd >= 0) {
                watch(write_fd, EPOLLOUT);
            }
            registered_bus_write_fd_ = write_fd;
        }
    }

    int wait_ms() const {
        if (bus_->read_always_ready() && bus_read_allowed()) {
            return 0;
        }
        std::uint64_t deadline = next_maintain_;
        if (next_stats_ != 0) {
            deadline = std::min(deadline, next_stats_);
        }
        if (!config_.serve && connections_.empty() && reconnect_at_ != 0) {
            deadline = std::min(deadline, reconnect_at_);
        }
        for (const auto& c : connections_) {
            if (c->session) {
                deadline = std::min(deadline, c->session->next_deadline());
            }
        }
        if (bus_busy_ && bus_->write_wait_fd() < 0) {
            deadline = std::min(deadline, now_ + 1000);  // SocketCAN gives no EPOLLOUT for ENOBUFS: poll
        }
        if (deadline <= now_) {
            return 0;
        }
        return static_cast<int>(std::min<std::uint64_t>((deadline - now_ + 999) / 1000, 1000));
    }

    void print_stats(const char* label) {
        Totals t = ended_;
        std::size_t live = 0;
        for (const auto& c : connections_) {
            if (c->session) {
                t.add(c->session->stats());
                live += established(*c) ? 1 : 0;
            }
        }
        const BusCounters& b = bus_->counters();
        const std::uint64_t dropped = t.dropped + bus_down_drops_ + b.refused + b.rx_overflow;
        LOG_INFO("%s: from_bus=%llu to_bus=%llu sent=%llu received=%llu dropped=%llu filtered=%llu unforwarded=%llu "
                 "lost=%llu duplicates=%llu peers=%zu rtt_ms=%.3f drops[output_full=%llu bus_queue_full=%llu "
                 "expired=%llu read_only=%llu bus_down=%llu bus_refused=%llu bus_rx_overflow=%llu unsent_at_close=%llu] bad_input=%llu",
                 label, ull(from_bus_), ull(to_bus_), ull(t.sent), ull(t.received), ull(dropped), ull(filtered_ + t.filtered),
                 ull(unforwarded_), ull(t.lost), ull(t.duplicates), live, t.rtt_us / 1000.0, ull(t.output_full),
                 ull(t.bus_queue_full), ull(t.expired), ull(t.refused_read_only), ull(bus_down_drops_), ull(b.refused),
                 ull(b.rx_overflow), ull(t.unsent_at_close), ull(b.bad_input));
    }
    static unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

    void shutdown() {
        now_ = monotonic_us();
        drain_to_bus();
        while (!connections_.empty()) {
            Connection& c = *connections_.front();
            if (c.session && !c.session->is_closed()) {
                c.session->close(CloseReason::shutdown, "tcpcan is shutting down", now_);
            }
            remove_connection(c, false);
        }
        bus_->flush();
        print_stats("final stats");
    }

    const BridgeConfig& config_;
    int epoll_fd_ = -1;
    int signal_fd_ = -1;
    std::unique_ptr<BusPort> bus_;
    int registered_bus_read_fd_ = -1;
    int registered_bus_write_fd_ = -1;
    std::uint32_t registered_generation_ = 0;
    bool bus_busy_ = false;
    std::vector<int> listen_fds_;
    std::vector<std::unique_ptr<Connection>> connections_;
    std::array<std::uint8_t, 65536> read_buffer_{};
    Totals ended_{};
    std::uint64_t now_ = 0;
    std::uint64_t from_bus_ = 0, to_bus_ = 0, filtered_ = 0, unforwarded_ = 0, bus_down_drops_ = 0;
    std::uint64_t next_maintain_ = 0, next_stats_ = 0, reconnect_at_ = 0;
    std::uint64_t backoff_us_ = second_us;
    bool fallback_to_v1_ = false;
    bool stopping_ = false;
    int exit_status_ = -1;
};

}  // namespace

int run_bridge(const BridgeConfig& config) {
    Bridge bridge(config);
    return bridge.run();
}

}  // namespace tcpcan::linux_port
