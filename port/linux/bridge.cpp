// The bridge composes the parts: the EventLoop (descriptors and time), the bus port, the
// Router (what goes where: include/tcpcan/router.hpp), and one Connection per TCP peer
// (a Transport for the bytes and a Link for the protocol). What is decided here is only
// the life of connections: accepting, admitting (admission.hpp), reconnecting, closing.
#include "bridge.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include <tcpcan/candump_text.hpp>
#include <tcpcan/reconnect.hpp>
#include <tcpcan/router.hpp>

#include "admission.hpp"
#include "clock.hpp"
#include "detect_link.hpp"
#include "dialect.hpp"
#include "handshake_limit.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "net.hpp"
#include "notify.hpp"
#include "socketcan_port.hpp"
#include "socketcand_beacon.hpp"
#include "stdio_port.hpp"
#include "tcpcan_link.hpp"
#include "tls.hpp"
#include "transport.hpp"
#include "udp_net.hpp"

namespace tcpcan::linux_port {

namespace {

constexpr std::uint64_t second_us = 1'000'000;
constexpr std::size_t bus_batch = 64;
constexpr std::size_t max_routed_peers = 1024;  // the most --max-clients allows
constexpr std::size_t max_buses = 16;           // --can entries one server serves

// One bus the daemon serves (--can), and how the loop waits on it.
struct BusSlot {
    std::unique_ptr<BusPort> port;
    int read_fd = -1;
    int write_fd = -1;
    std::uint32_t generation = 0;
    bool busy = false;            // frames wait for it to take more
    bool readable = false;        // epoll said so on this pass
    std::uint64_t quiet_until = 0;  // latency budget: the bus is read again from then
    std::uint64_t frames_read_us = 0;  // when a read last found frames
};

struct Connection {
    int fd = -1;
    std::string address;  // "127.0.0.1:5000": log limits per host use it
    std::string name;     // the address, then "127.0.0.1:5000 [pi-7]" once TLS named the peer
    std::string identity;  // the authenticated identity (TLS), else empty
    bool connecting = false;  // client: connect() still in progress
    bool handshaking = false;  // TLS handshake under way: no link yet
    std::uint32_t link_version = highest_version;  // proposed once the link starts
    bool holds_handshake_slot = false;  // server: counted in handshakes_
    std::uint64_t connected_us = 0;
    std::uint64_t bytes_in = 0;  // nothing read yet: a failure is a refusal, not a loss
    std::unique_ptr<Transport> transport;
    Dialect dialect = Dialect::tcpcan;  // the listener's (server) or --dialect (client)
    std::optional<std::size_t> bus;     // tied by the listener or the client; else the peer chooses
    std::unique_ptr<Link> link;
    bool detect_canip = false;  // tcpcan or canip_peer, from the first bytes (detect_link.hpp)
    bool serving_datagrams = false;  // a server's datagram listener socket (cannelloni-udp), for good
    TransmitPolicy policy{};  // what this peer may send towards the bus (the Router enforces it)
    bool attached = false;  // agreed, admitted and known to the Router
    bool stalled = false;   // as last logged
    std::uint64_t drops_logged = 0;
    std::uint64_t drops_logged_at = 0;
    std::uint64_t refusals_logged = 0;
    std::uint64_t refusals_logged_at = 0;
};

// "127.0.0.1:4242" -> "127.0.0.1", "[::1]:4242" -> "[::1]": log limits per host, so a
// client cannot multiply its allowance by reconnecting.
std::string host_of(const std::string& name) {
    const std::size_t colon = name.rfind(':');
    return colon == std::string::npos ? name : name.substr(0, colon);
}

std::string frame_text(const Frame& f) {
    std::array<char, max_candump_frame + 1> text{};
    const std::size_t n = format_candump_frame(f, std::span<char>(text.data(), max_candump_frame));
    return std::string(text.data(), n);
}

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

BusWriteResult to_router(BusWrite w) {
    switch (w) {
    case BusWrite::written: return BusWriteResult::written;
    case BusWrite::busy: return BusWriteResult::busy;
    case BusWrite::down: return BusWriteResult::down;
    case BusWrite::refused: return BusWriteResult::refused;
    }
    return BusWriteResult::refused;
}

class Bridge {
public:
    explicit Bridge(const BridgeConfig& config)
        : config_(config),
          handshakes_(static_cast<std::size_t>(config.max_pending), config.negotiation_timeout_us) {
        RouterOptions options;
        options.pace_batch = bus_batch;
        options.stall_after_us = config.stall_after_us;
        router_ = std::make_unique<Router<max_routed_peers, max_buses>>(options);
        for (std::size_t bus = 0; bus < max_buses; ++bus) {
            router_->set_forward_filter(bus, &config_.forward);
        }
        policy_.read_only = config.serve && config.read_only;
        policy_.allow = config.allow_transmit.empty() ? nullptr : &config_.allow_transmit;
    }

    ~Bridge() {
        for (int fd : listen_fds_) {
            ::close(fd);
        }
        for (auto& c : connections_) {
            ::close(c->fd);
        }
    }

    int run() {
        if (!setup()) {
            return 1;
        }
        while (loop_.stop_signal() == 0 && exit_status_ < 0) {
            const auto events = loop_.wait(deadline());
            now_ = loop_.now();
            for (const epoll_event& e : events) {
                const int fd = e.data.fd;
                if (const auto l = std::find(listen_fds_.begin(), listen_fds_.end(), fd); l != listen_fds_.end()) {
                    accept_clients(fd, static_cast<std::size_t>(l - listen_fds_.begin()));
                } else if (Connection* c = find(fd)) {
                    on_io(*c, e.events);
                } else {
                    for (BusSlot& bus : bus_slots_) {
                        bus.readable = bus.readable || fd == bus.read_fd;
                    }
                }
                // A bus write fd needs no action: draining below retries the writes.
            }
            service();
        }
        if (loop_.stop_signal() != 0) {
            LOG_INFO("received %s; closing sessions", strsignal(loop_.stop_signal()));
        }
        shutdown();
        return exit_status_ < 0 ? 0 : exit_status_;
    }

private:
    bool setup() {
        std::string error;
        if (!loop_.open(error)) {
            LOG_ERROR("%s", error.c_str());
            return false;
        }
        if (config_.can_interfaces.empty() || config_.can_interfaces.size() > max_buses) {
            LOG_ERROR("a bridge serves 1 to %zu buses, not %zu", max_buses, config_.can_interfaces.size());
            return false;
        }
        for (const std::string& name : config_.can_interfaces) {
            BusSlot& slot = bus_slots_.emplace_back();
            int in_fd = -1, out_fd = -1;
            std::string fd_error;
            if (name == "-") {
                slot.port = std::make_unique<StdioPort>();
            } else if (parse_fd_bus(name, in_fd, out_fd, fd_error)) {
                slot.port = std::make_unique<StdioPort>("tcpcan", in_fd, out_fd);
            } else if (!fd_error.empty()) {
                LOG_ERROR("%s", fd_error.c_str());
                return false;
            } else {
                auto can = std::make_unique<SocketCanPort>(name, config_.forward);
                const SocketCanOpen opened = can->open();
                if (!opened.ok) {
                    LOG_ERROR("%s", opened.error.c_str());
                    return false;
                }
                LOG_INFO("CAN interface %s open (%s, %zu kernel filters)", name.c_str(),
                         can->fd_capable() ? "CAN FD" : "classic CAN", can->kernel_filter_count());
                slot.port = std::move(can);
            }
            buses_.names.push_back(name);
            buses_.interfaces.push_back(slot.port->name());
        }
        ended_by_bus_.resize(bus_slots_.size());
        if (config_.tls.enabled()) {
            TlsOptions options = config_.tls;
            options.role = config_.serve ? TlsRole::server : TlsRole::client;
            TlsContextResult made = TlsContext::create(options);
            if (!made.context) {
                LOG_ERROR("%s", made.error.c_str());
                return false;
            }
            tls_ = std::move(made.context);
            LOG_INFO("%s", tls_->summary().c_str());
        }
        if (config_.serve && !config_.policies.empty()) {
            LOG_INFO("%zu client policies (--policy-file)", config_.policies.size());
        }
        now_ = loop_.now();
        next_maintain_ = now_ + second_us;
        next_stats_ = config_.stats_interval_us ? now_ + config_.stats_interval_us : 0;
        if (config_.serve) {
            if (!open_listeners() || !start_beacon()) {
                return false;
            }
        } else {
            reconnect_at_ = now_;
        }
        notify_ready(config_.serve ? "listening" : "connecting");
        return true;
    }

    // Every --listen (or, without any, tcpcan on --host/--bind and --port as always).
    bool open_listeners() {
        std::vector<ListenSpec> specs = config_.listen;
        if (specs.empty()) {
            ListenSpec today;
            today.address = config_.host;
            today.port = config_.port;
            specs.push_back(today);
        }
        for (const ListenSpec& spec : specs) {
            const std::string host = spec.address.empty() ? config_.host : spec.address;
            std::optional<std::size_t> bus;
            if (!spec.bus.empty()) {
                std::size_t index = 0;
                if (!buses_.find(spec.bus, index)) {
                    LOG_ERROR("--listen %s: no bus '%s' (--can gives %s)", spec.text.c_str(), spec.bus.c_str(),
                              bus_names().c_str());
                    return false;
                }
                bus = index;
            }
            if (is_datagram(spec.dialect)) {
                if (!open_datagram_listener(spec, host, bus)) {
                    return false;
                }
                continue;
            }
            std::vector<int> fds;
            const NetResult r = listen_tcp(host, spec.port, fds);
            if (!r.ok) {
                LOG_ERROR("cannot listen on %s port %u: %s", host.c_str(), spec.port, r.error.c_str());
                return false;
            }
            for (int fd : fds) {
                listen_fds_.push_back(fd);
                listeners_.push_back({spec.dialect, bus});
                loop_.set_interest(fd, EPOLLIN);
                if (spec.dialect == Dialect::tcpcan) {
                    LOG_INFO("listening on %s (%s, protocol version %u to %u, at most %d clients%s%s)",
                             local_name(fd).c_str(), served_buses(spec.dialect, bus).c_str(), config_.min_version,
                             config_.max_version, config_.max_clients, config_.read_only ? ", read-only" : "",
                             tls_ ? ", TLS" : "");
                } else {
                    LOG_INFO("listening on %s (%s, %s, at most %d clients%s%s)", local_name(fd).c_str(),
                             std::string(dialect_name(spec.dialect)).c_str(), served_buses(spec.dialect, bus).c_str(),
                             config_.max_clients, config_.read_only ? ", read-only" : "", tls_ ? ", TLS" : "");
                }
            }
            const std::string exposed = exposure_warning(host, spec.port, tls_ != nullptr, config_.read_only,
                                                         !config_.allow_transmit.empty());
            if (!exposed.empty()) {
                LOG_WARNING("%s", exposed.c_str());
            }
        }
        return true;
    }

    // socketcand's discovery beacon, when asked for (--beacon, --beacon-to).
    bool start_beacon() {
        if (!config_.beacon) {
            return true;
        }
        BeaconSetup setup;
        setup.address = config_.beacon_address;
        setup.port = config_.beacon_port;
        setup.buses = buses_.names;
        setup.description = config_.beacon_description;
        for (std::size_t i = 0; i < listeners_.size(); ++i) {
            if (listeners_[i].dialect == Dialect::socketcand) {
                setup.listen_fds.push_back(listen_fds_[i]);
            }
        }
        std::string error;
        beacon_ = SocketcandBeacon::create(setup, now_, error);
        if (!beacon_) {
            LOG_ERROR("--beacon: %s", error.c_str());
            return false;
        }
        LOG_INFO("socketcand beacon every 3 s to %s: %s", beacon_->destination().c_str(),
                 escape_text(beacon_->text()).c_str());
        return true;
    }

    // A datagram dialect has no accept(): each bound socket is one connection, for good.
    bool open_datagram_listener(const ListenSpec& spec, const std::string& host, std::optional<std::size_t> bus) {
        std::vector<int> fds;
        const NetResult r = bind_udp(host, spec.port, fds);
        if (!r.ok) {
            LOG_ERROR("cannot listen on %s UDP port %u: %s", host.c_str(), spec.port, r.error.c_str());
            return false;
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            const std::string local = local_name(fds[i]);
            Connection& c = add_connection(fds[i], std::string(dialect_name(spec.dialect)) + " " + local, false);
            c.serving_datagrams = true;
            c.dialect = spec.dialect;
            c.bus = bus;
            if (!start_datagram_link(c, Role::server, {false, config_.datagram_peer, config_.datagram_flush_us})) {
                for (std::size_t j = i + 1; j < fds.size(); ++j) {
                    ::close(fds[j]);
                }
                return false;
            }
            LOG_INFO("listening on %s (%s over UDP, %s, peer %s)", local.c_str(),
                     std::string(dialect_name(spec.dialect)).c_str(), served_buses(spec.dialect, bus).c_str(),
                     config_.datagram_peer.empty() ? "the first sender" : config_.datagram_peer.c_str());
        }
        const std::string exposed = exposure_warning(host, spec.port, false, config_.read_only,
                                                     !config_.allow_transmit.empty());
        if (!exposed.empty()) {
            LOG_WARNING("%s", exposed.c_str());
        }
        return true;
    }

    // The link and transport of a datagram socket; false when there is none (`c` is gone).
    bool start_datagram_link(Connection& c, Role role, const DatagramPeer& peer) {
        c.policy = policy_for(c.identity);
        LinkSetup setup;
        setup.dialect = c.dialect;
        setup.name = c.name;
        setup.session = session_options(role, config_.max_version);
        setup.buses = &buses_;
        setup.bus = c.bus;
        setup.limiter = &limiter_;
        setup.now = now_;
        MadeDatagram made = make_datagram_link(setup, c.fd, peer);
        if (!made.link) {
            LOG_ERROR("%s: %s", c.name.c_str(), made.error.c_str());
            remove_connection(c);
            exit_status_ = 1;
            return false;
        }
        c.transport = std::move(made.transport);
        c.link = std::move(made.link);
        return true;
    }

    // Client of a datagram dialect: a connected socket, and frames flow at once.
    void connect_datagram() {
        int fd = -1;
        const std::string target = config_.host + ":" + std::to_string(config_.port);
        const NetResult r = connect_udp(config_.host, config_.port, config_.datagram_local_port, fd);
        if (!r.ok) {
            connection_failed(target + ": " + r.error);
            return;
        }
        Connection& c = add_connection(fd, target, false);
        c.dialect = config_.dialect;
        c.bus = 0;
        if (start_datagram_link(c, Role::client, {true, {}, config_.datagram_flush_us})) {
            LOG_INFO("%s: %s over UDP from %s (no connection: frames go at once)", target.c_str(),
                     std::string(dialect_name(config_.dialect)).c_str(), local_name(fd).c_str());
        }
    }

    // 'can0', 'can1': quoted, as a name may hold a comma (fd:3,4).
    std::string bus_names() const {
        std::string names;
        for (const std::string& name : buses_.names) {
            names += (names.empty() ? "'" : ", '") + name + "'";
        }
        return names;
    }

    // What a listener serves: its bus, the only bus, or every bus by name (the first for
    // a peer that names none).
    std::string served_buses(Dialect dialect, std::optional<std::size_t> bus) const {
        if (buses_.names.size() == 1) {
            return "bus " + bus_slots_.front().port->name();  // as before several buses ("tcpcan" for stdio)
        }
        if (bus || !peer_chooses_bus(dialect)) {
            return "bus " + buses_.names[bus.value_or(0)];
        }
        return "buses " + bus_names() + " by name";
    }

    Connection* find(int fd) {
        const auto index = static_cast<std::size_t>(fd);
        return fd >= 0 && index < by_fd_.size() ? by_fd_[index] : nullptr;
    }

    // ---- connections -----------------------------------------------------------------
    SessionOptions session_options(Role role, std::uint32_t max_version) const {
        SessionOptions o;
        o.role = role;
        o.max_version = max_version;
        o.min_version = config_.min_version;
        o.features = config_.features;
        o.negotiation_timeout_us = config_.negotiation_timeout_us;
        o.heartbeat_interval_us = config_.heartbeat_us;
        o.dead_after_us = config_.dead_after_us;
        o.max_frame_age_us = config_.max_age_us;
        if (role == Role::server && config_.resume_window_us == 0) {
            o.features &= ~feature::resume;  // nothing would wait for a client to come back
        }
        return o;
    }

    Connection& add_connection(int fd, std::string name, bool connecting) {
        auto owned = std::make_unique<Connection>();
        Connection& c = *owned;
        c.fd = fd;
        c.address = name;
        c.name = std::move(name);
        c.connecting = connecting;
        c.connected_us = now_;
        const auto index = static_cast<std::size_t>(fd);
        if (index >= by_fd_.size()) {
            by_fd_.resize(index + 1, nullptr);
        }
        by_fd_[index] = &c;
        connections_.push_back(std::move(owned));
        loop_.set_interest(fd, connecting ? EPOLLOUT : EPOLLIN);
        return c;
    }

    // The bytes first: plain TCP, or TLS whose handshake must finish before the link (and
    // its negotiation timer) starts. False when `c` was closed at once (and is gone).
    bool start_transport(Connection& c, Role role, std::uint32_t max_version) {
        c.link_version = max_version;
        if (!tls_) {
            // A plaintext server names a TLS ClientHello instead of reading it as garbage.
            c.transport = make_plain_transport(c.fd, {.refuse_tls_client_hello = role == Role::server});
            return start_link(c, role);
        }
        c.transport = make_tls_transport(*tls_, c.fd, config_.host);
        c.handshaking = c.transport->handshaking();
        if (role == Role::server && c.handshaking) {
            if (!handshakes_.try_begin()) {
                if (host_limiter_.allow(host_of(c.address) + " handshakes-full", now_)) {
                    LOG_WARNING("%s: refused: %zu TLS handshakes already under way (--max-pending)", c.name.c_str(),
                                handshakes_.pending());
                }
                remove_connection(c);
                return false;
            }
            c.holds_handshake_slot = true;
        }
        return continue_handshake(c, role);
    }

    // Drives the TLS handshake one step; false when it failed and `c` is gone.
    bool continue_handshake(Connection& c, Role role) {
        const IoStatus status = c.handshaking ? c.transport->handshake() : IoStatus::ok;
        if (status == IoStatus::would_block) {
            loop_.set_interest(c.fd, c.transport->wanted_events(false));
            return true;
        }
        if (status != IoStatus::ok) {
            const std::string why = c.transport->last_error();
            ++tls_refused_;
            if (role == Role::server) {
                if (host_limiter_.allow(host_of(c.address) + " tls-refused", now_)) {
                    LOG_WARNING("%s: refused: %s", c.name.c_str(), why.c_str());
                }
                remove_connection(c);
            } else {
                const std::string target = c.name;
                remove_connection(c);
                connection_failed(target + ": refused: " + why);
            }
            return false;
        }
        release_handshake_slot(c);
        c.handshaking = false;
        c.identity = c.transport->identity();
        if (!c.identity.empty()) {
            c.name = c.address + " [" + c.identity + "]";
        }
        if (host_limiter_.allow(host_of(c.address) + " authenticated", now_)) {
            LOG_INFO("%s: TLS handshake done, authenticated as '%s'", c.address.c_str(), c.identity.c_str());
        }
        return start_link(c, role);
    }

    void release_handshake_slot(Connection& c) {
        if (c.holds_handshake_slot) {
            c.holds_handshake_slot = false;
            handshakes_.end();
        }
    }

    // The link for the connection's dialect (dialect.cpp); false when there is none and `c` is gone.
    bool start_link(Connection& c, Role role) {
        c.policy = policy_for(c.identity);
        if (role == Role::client && resumable_client_) {
            // The session outlived its last connection: it stays attached and resumes.
            c.link = std::move(resumable_client_);
            c.link->tcpcan_session()->reconnect(now_);
            c.attached = true;
            return true;
        }
        LinkSetup setup;
        setup.dialect = c.dialect;
        setup.name = c.name;
        setup.session = session_options(role, c.link_version);
        setup.subscription = &config_.subscription;
        setup.buses = &buses_;
        setup.bus = c.bus;
        setup.remote_bus = config_.remote_bus;
        setup.limiter = &limiter_;
        setup.now = now_;
        // Each dialect's settings from config_ go below its line (one block each keeps merges apart).
        // socketcand:
        setup.socketcand_ok_hold_us = config_.socketcand_ok_hold_us;

        // cannelloni:
        setup.cannelloni_peer = role == Role::server ? config_.datagram_peer : std::string();
        setup.fd = c.fd;

        // canip:
        setup.detect_canip = c.detect_canip;
        MadeLink made = make_link(setup);
        if (!made.link) {
            LOG_ERROR("%s: %s", c.name.c_str(), made.error.c_str());
            remove_connection(c);
            if (!config_.serve) {
                exit_status_ = 1;  // a client has nothing else to do
            }
            return false;
        }
        c.link = std::move(made.link);
        // tcpcan's resume (a client's session, made later by a DetectLink, takes the defaults).
        if (TcpcanLink* session = c.link->tcpcan_session()) {
            session->set_resume(ResumeOptions{.token = role == Role::server ? new_resume_token() : 0});
            if (role == Role::server) {
                session->set_resume_lookup(
                    [this](std::uint64_t token, const TcpcanLink& asking) { return find_resumable(token, asking); });
            }
        }
        return true;
    }

    // One place maps who the peer is to what it may send; the Router enforces and counts it.
    TransmitPolicy policy_for(const std::string& identity) const {
        if (!config_.serve) {
            return policy_;
        }
        TransmitPolicy policy = policy_;
        if (tls_ && !config_.policies.empty()) {
            if (const ClientPolicy* own = find_policy(config_.policies, identity)) {
                policy = transmit_policy(own);
            }
        }
        policy.read_only = policy.read_only || config_.read_only;  // --read-only holds for everyone
        return policy;
    }

    // Connections that are clients: a datagram listener's socket is not one (nor evicted, nor counted
    // against --max-clients), as it lives as long as the server.
    [[nodiscard]] std::size_t count(bool agreed) const {
        return static_cast<std::size_t>(std::count_if(connections_.begin(), connections_.end(), [agreed](const auto& c) {
            return c->link && !c->link->closed() && c->attached == agreed && !(c->serving_datagrams);
        }));
    }

    void accept_clients(int listen_fd, std::size_t listener_index) {
        for (int i = 0; i < 64; ++i) {
            const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    pause_accepting(std::strerror(errno));
                } else if (errno != EAGAIN && errno != EINTR && system_limiter_.allow("accept", now_)) {
                    LOG_WARNING("accept: %s", std::strerror(errno));
                }
                return;
            }
            configure_connection(fd);
            std::string name = peer_name(fd);
            if (count(false) >= static_cast<std::size_t>(config_.max_pending)) {
                close_oldest_pending(name);
            }
            if (host_limiter_.allow(host_of(name) + " connect", now_)) {
                LOG_INFO("client %s connected (%zu now)", name.c_str(), connections_.size() + 1);
            }
            Connection& c = add_connection(fd, std::move(name), false);
            const Listener& listener = listeners_[listener_index];
            c.dialect = listener.dialect;
            c.bus = listener.bus;
            c.detect_canip = config_.detect_canip && config_.listen.empty() && !tls_;
            (void)start_transport(c, Role::server, config_.max_version);
        }
    }

    // Out of descriptors: stop accepting for a second instead of spinning on a listening
    // socket that stays readable. Existing clients are served meanwhile.
    void pause_accepting(const char* why) {
        for (int fd : listen_fds_) {
            loop_.set_interest(fd, 0);
        }
        accept_resume_at_ = now_ + second_us;
        if (system_limiter_.allow("accept-paused", now_)) {
            LOG_WARNING("accept: %s; not accepting new connections for 1 s (%zu open)", why, connections_.size());
        }
    }

    void close_oldest_pending(const std::string& newcomer) {
        std::vector<AdmissionCandidate> all;
        std::vector<Connection*> who;
        for (auto& c : connections_) {
            if (c->link && !c->attached && !c->link->closed() && !c->serving_datagrams) {
                all.push_back({false, c->connected_us, c->link->last_received_us()});
                who.push_back(c.get());
            }
        }
        if (const auto pick = oldest_pending(all)) {
            Connection& victim = *who[*pick];
            ++pending_closed_;
            if (host_limiter_.allow(host_of(newcomer) + " pending-full", now_)) {
                LOG_WARNING("%s: closing, not agreed after %.1f s: %d connections are waiting to agree (--max-pending) "
                            "and %s came",
                            victim.name.c_str(), static_cast<double>(now_ - victim.connected_us) / 1e6,
                            config_.max_pending, newcomer.c_str());
            }
            remove_connection(victim);
        }
    }

    // A connection agreed: route it, if there is room (see admission.hpp).
    void admit(Connection& c) {
        if (config_.serve && !c.serving_datagrams && count(true) >= static_cast<std::size_t>(config_.max_clients)) {
            std::vector<AdmissionCandidate> all;
            std::vector<Connection*> who;
            for (auto& other : connections_) {
                if (other->attached && !other->link->closed() && !other->serving_datagrams) {
                    all.push_back({true, other->connected_us, other->link->last_received_us()});
                    who.push_back(other.get());
                }
            }
            const auto pick = idlest_agreed(all, now_, config_.evict_idle_us);
            if (!pick) {
                ++refused_full_;
                if (host_limiter_.allow(host_of(c.address) + " full", now_)) {
                    LOG_WARNING("%s: refusing: already %d clients (--max-clients), none silent for %.0f s", c.name.c_str(),
                                config_.max_clients, static_cast<double>(config_.evict_idle_us) / 1e6);
                }
                c.link->close(CloseReason::server_full, "server full", now_);
                return;
            }
            Connection& idle = *who[*pick];
            ++evicted_;
            if (host_limiter_.allow(host_of(idle.address) + " evicted", now_)) {
                LOG_WARNING("%s: closing after %.1f s of silence to make room for %s (--max-clients %d)", idle.name.c_str(),
                            static_cast<double>(now_ - idle.link->last_received_us()) / 1e6, c.name.c_str(),
                            config_.max_clients);
            }
            idle.link->close(CloseReason::server_full, "server full: closed after a silence to make room", now_);
        }
        if (c.link->bus() >= bus_slots_.size()) {  // a link's own choice is checked by the link; this is a backstop
            c.link->close(CloseReason::protocol_error, "no such bus", now_);
            return;
        }
        if (!router_->attach(*c.link, c.link->bus(), c.policy)) {
            c.link->close(CloseReason::server_full, "server full", now_);
            return;
        }
        c.attached = true;
        if (!config_.serve) {
            backoff_.connected(now_);
        }
    }

    void connect_to_server() {
        if (is_datagram(config_.dialect)) {
            connect_datagram();
            return;
        }
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
        client_version_ = version;
        Connection& c = add_connection(fd, target, in_progress);
        c.dialect = config_.dialect;
        c.bus = 0;
        c.detect_canip = config_.detect_canip && config_.dialect == Dialect::tcpcan && !tls_;
        if (!in_progress) {
            (void)start_transport(c, Role::client, version);
        }
    }

    void connection_failed(const std::string& why) {
        if (!config_.retry) {
            LOG_ERROR("%s; not retrying (--no-retry)", why.c_str());
            exit_status_ = 1;
            return;
        }
        // A session waiting to resume retries fast (50-100 ms, at most 1 s): a short flap
        // then costs well under a second, and the frames meanwhile wait in its replay buffer.
        const std::uint64_t delay = resumable_client_ ? resume_backoff_.next_delay(now_, static_cast<std::uint32_t>(random_()))
                                                      : backoff_.next_delay(now_, static_cast<std::uint32_t>(random_()));
        LOG_WARNING("%s; retrying in %.2f s", why.c_str(), static_cast<double>(delay) / 1e6);
        reconnect_at_ = now_ + delay;
    }

    void on_io(Connection& c, std::uint32_t what) {
        if (c.connecting) {
            if (!(what & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                return;
            }
            const NetResult r = finish_connect(c.fd);
            if (!r.ok) {
                const std::string why = "cannot connect to " + c.name + ": " + r.error;
                remove_connection(c);
                connection_failed(why);
                return;
            }
            c.connecting = false;
            (void)start_transport(c, Role::client, client_version_);
            return;
        }
        if (c.handshaking) {
            if (!continue_handshake(c, config_.serve ? Role::server : Role::client) || c.handshaking) {
                return;
            }
            // Done: the peer's first bytes may have come with the handshake; read them now.
        }
        if (what & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
            read_from(c);
        }
        if (what & (EPOLLOUT | EPOLLERR)) {
            flush(c);
        }
    }

    void read_from(Connection& c) {
        for (int round = 0; round < 4; ++round) {
            const std::size_t budget = std::min(c.link->read_budget(), read_buffer_.size());
            if (budget == 0) {
                return;  // interest drops EPOLLIN until the link has room again
            }
            const IoResult r = c.transport->read(std::span<std::uint8_t>(read_buffer_.data(), budget));
            if (r.status == IoStatus::ok) {
                c.bytes_in += r.bytes;
                c.link->receive(std::span<const std::uint8_t>(read_buffer_.data(), r.bytes), now_);
                take_over_if_resumed(c);
                if (r.bytes < budget && !c.transport->has_buffered_input()) {
                    return;
                }
                continue;
            }
            if (r.status == IoStatus::would_block) {
                return;
            }
            if (r.status == IoStatus::error && host_limiter_.allow(host_of(c.address) + " lost", now_)) {
                // A plaintext server that read nothing yet: its transport refused the first bytes (a TLS ClientHello).
                const bool refused = config_.serve && !tls_ && c.bytes_in == 0;
                LOG_WARNING("%s: %s: %s", c.name.c_str(), refused ? "refused" : "connection lost",
                            c.transport->last_error().c_str());
            }
            c.link->transport_closed(now_);
            return;
        }
    }

    void flush(Connection& c) {
        if (!c.transport) {
            return;
        }
        for (;;) {
            const auto out = c.link->output();
            if (out.empty()) {
                return;
            }
            const IoResult r = c.transport->write(out);
            if (r.status == IoStatus::ok && r.bytes > 0) {
                c.link->consume_output(r.bytes);
                continue;
            }
            if (r.status == IoStatus::error || r.status == IoStatus::closed) {
                if (host_limiter_.allow(host_of(c.address) + " lost", now_)) {
                    LOG_WARNING("%s: connection lost while sending: %s", c.name.c_str(), c.transport->last_error().c_str());
                }
                c.link->transport_closed(now_);
            }
            return;
        }
    }

    // At most one line a second per peer, so a slow peer cannot flood the log.
    void log_new_drops(Connection& c) {
        const std::uint64_t drops = c.link->drops();
        if (drops == c.drops_logged || now_ - c.drops_logged_at < second_us) {
            return;
        }
        LOG_WARNING("%s: %s", c.name.c_str(), c.link->describe_drops().c_str());
        c.drops_logged = drops;
        c.drops_logged_at = now_;
    }

    // Frames refused by this peer's policy, at most one line a second per peer.
    void log_refusals(Connection& c) {
        // Time first: the counters are a search over the Router's peers, not for every pass.
        if (!c.attached || now_ - c.refusals_logged_at < second_us) {
            return;
        }
        const PeerRouteCounters* counters = router_->counters(*c.link);
        if (counters == nullptr) {
            return;
        }
        const std::uint64_t refused = counters->refused_read_only + counters->refused_not_allowed + counters->refused_rate;
        c.refusals_logged_at = now_;  // looked at now; the next look is a second away
        if (refused == c.refusals_logged) {
            return;
        }
        LOG_WARNING("%s: %llu frames refused by its policy so far (read_only=%llu not_allowed=%llu rate_limited=%llu); "
                    "they reach neither the bus nor other clients",
                    c.name.c_str(), ull(refused), ull(counters->refused_read_only), ull(counters->refused_not_allowed),
                    ull(counters->refused_rate));
        c.refusals_logged = refused;
    }

    void log_stall(Connection& c) {
        const BusPort& bus = *bus_slots_[c.attached ? c.link->bus() : 0].port;
        if (!bus.paced()) {
            return;  // only a paced source waits for peers, so only there can one stall it
        }
        const bool stalled = c.attached && router_->stalled(*c.link, now_);
        if (stalled == c.stalled) {
            return;
        }
        c.stalled = stalled;
        if (!host_limiter_.allow(host_of(c.address) + " stall", now_)) {
            return;
        }
        if (stalled) {
            LOG_WARNING("%s is not reading: %s is no longer paced to it; frames it cannot take are dropped and counted",
                        c.name.c_str(), bus.name().c_str());
        } else {
            LOG_INFO("%s is reading again", c.name.c_str());
        }
    }

    void remove_connection(Connection& c) {
        Link* link = c.link.get();
        TcpcanLink* session = link ? link->tcpcan_session() : nullptr;  // only tcpcan falls back to version 1
        if (session && session->adopted_by() != nullptr) {
            link->log_events(now_);  // served by the session it resumed; this one never carried frames
            limiter_.release(link->name());
            c.link.reset();
            link = nullptr;
            session = nullptr;
        }
        const bool keep = link && !stopping_ && link->closed() && park_if_resumable(c);
        if (keep) {
            link = nullptr;  // parked: still attached, its counters still live
            session = nullptr;
        }
        if (link) {
            if (!link->closed()) {
                link->close(CloseReason::normal, "", now_);
            }
            flush(c);  // one try to deliver the close message
            link->transport_closed(now_);
            link->discard();
            link->log_events(now_);
            limiter_.release(link->name());
            if (c.attached) {
                router_->detach(*link);
            }
            link->add_totals(ended_);
            if (c.attached) {
                link->add_totals(ended_by_bus_[link->bus()]);
            }
        }
        const bool retry_v1 = session && session->retry_with_version_1();
        const bool hung_up = session && session->hung_up_on_proposal();
        const bool was_client_link = (link || keep) && !config_.serve;
        const std::string name = c.name;
        release_handshake_slot(c);
        if (c.transport) {
            c.transport->shutdown();
        }
        loop_.forget(c.fd);
        by_fd_[static_cast<std::size_t>(c.fd)] = nullptr;
        ::close(c.fd);
        connections_.erase(std::find_if(connections_.begin(), connections_.end(),
                                        [&c](const auto& p) { return p.get() == &c; }));
        if (!was_client_link || stopping_) {
            return;
        }
        if (retry_v1) {
            LOG_WARNING("%s closed the connection on our version %u proposal: retrying with version 1 (original "
                        "tcpcan), which has no heartbeat, sequence numbers, timestamps, subscriptions or close reasons "
                        "(--min-protocol-version 2 refuses this)%s",
                        name.c_str(), config_.max_version,
                        tls_ ? "" : "; a server that requires TLS closes a plaintext client the same way "
                                    "(then give --tls-psk-file or --tls-cert/--tls-key/--tls-ca)");
            fallback_to_v1_ = true;
            reconnect_at_ = now_;
            return;
        }
        if (hung_up && config_.min_version > 1) {
            LOG_WARNING("%s closed the connection on our version %u proposal; not falling back to version 1 "
                        "(--min-protocol-version %u)",
                        name.c_str(), client_version_, config_.min_version);
        }
        fallback_to_v1_ = false;
        connection_failed("connection to " + name + " ended");
    }

    // ---- resume (feature::resume) -------------------------------------------------------------
    struct Parked {
        std::unique_ptr<Link> link;  // its tcpcan_session() is suspended
        std::uint64_t since_us = 0;
        std::string identity;  // TLS: only the same identity may resume it
    };

    static std::uint64_t new_resume_token() {
        static std::random_device device;
        std::uint64_t token = 0;
        while (token == 0) {
            token = (std::uint64_t{device()} << 32) | device();
        }
        return token;
    }

    // The connection `c` ended. A session kept for a resume is parked (server) or kept for
    // the next connection (client), still attached to the Router, so bus frames wait for it
    // in its replay buffer. False when there is nothing to keep.
    bool park_if_resumable(Connection& c) {
        Link& link = *c.link;
        if (!link.closed()) {
            return false;  // still live: only the bridge's own decisions close it (and end it)
        }
        flush(c);  // one try to deliver a pending close message ('c' 3, peer silent)
        link.transport_closed(now_);
        link.log_events(now_);
        const TcpcanLink* session = link.tcpcan_session();
        if (session == nullptr || !session->suspended() || !c.attached) {
            return false;
        }
        if (config_.serve) {
            // Bounded: a client that keeps dropping fresh sessions cannot pile them up.
            if (parked_.size() >= static_cast<std::size_t>(config_.max_clients)) {
                give_up(parked_.front().link, "more sessions waiting for a resume than --max-clients; the oldest goes");
                parked_.erase(parked_.begin());
            }
            parked_.push_back({std::move(c.link), now_, c.identity});
        } else {
            resumable_client_ = std::move(c.link);
        }
        c.attached = false;
        return true;
    }

    // Server: the suspended session holding `token`. A live connection that still holds it
    // is stale (the client is already back on a new one): its transport is ended first.
    TcpcanLink* find_resumable(std::uint64_t token, const TcpcanLink& asking) {
        const auto own = std::find_if(connections_.begin(), connections_.end(), [&asking](const auto& c) {
            return c->link && c->link->tcpcan_session() == &asking;
        });
        const std::string identity = own != connections_.end() ? (*own)->identity : std::string();
        for (auto& c : connections_) {
            const TcpcanLink* session = c->link ? c->link->tcpcan_session() : nullptr;
            if (session && session != &asking && !c->link->closed() && session->resume_token() == token &&
                c->identity == identity) {
                LOG_INFO("%s: the client is back on a new connection; closing the old one", c->name.c_str());
                c->link->transport_closed(now_);
                remove_connection(*c);
                break;
            }
        }
        for (const Parked& p : parked_) {
            TcpcanLink* session = p.link->tcpcan_session();
            if (session && session->resume_token() == token && session->suspended()) {
                if (p.identity != identity) {
                    // Another identity's session: not handed over (the token alone proves nothing).
                    LOG_WARNING("%s: a client authenticated as '%s' presented the resume token of '%s'; refused, "
                                "it starts a new session",
                                p.link->name().c_str(), identity.c_str(), p.identity.c_str());
                    return nullptr;
                }
                return session;
            }
        }
        return nullptr;
    }

    // After receive(): a parked session that took over the connection now serves it.
    void take_over_if_resumed(Connection& c) {
        const TcpcanLink* session = c.link->tcpcan_session();
        TcpcanLink* to = session ? session->adopted_by() : nullptr;
        if (to == nullptr) {
            return;
        }
        const auto it = std::find_if(parked_.begin(), parked_.end(),
                                     [to](const Parked& p) { return p.link->tcpcan_session() == to; });
        if (it == parked_.end()) {
            return;
        }
        c.link->log_events(now_);
        limiter_.release(c.link->name());
        c.link = std::move(it->link);
        parked_.erase(it);
        c.attached = true;
    }

    // Gives a kept session up: what its peer never acknowledged is undeliverable (counted, said).
    void give_up(std::unique_ptr<Link>& link, const char* why) {
        TcpcanLink* session = link->tcpcan_session();
        const std::uint64_t lost = session ? session->abandon(now_) : 0;
        if (lost != 0) {
            LOG_WARNING("%s: %s: %llu frames for it were never acknowledged and are undeliverable", link->name().c_str(),
                        why, ull(lost));
        }
        link->discard();
        link->log_events(now_);
        limiter_.release(link->name());
        router_->detach(*link);
        link->add_totals(ended_);
        link->add_totals(ended_by_bus_[link->bus()]);
        link.reset();
    }

    void expire_parked() {
        for (std::size_t i = 0; i < parked_.size();) {
            if (now_ - parked_[i].since_us < config_.resume_window_us) {
                ++i;
                continue;
            }
            char why[96];
            std::snprintf(why, sizeof why, "no resume within %.0f s (--resume-window)",
                          static_cast<double>(config_.resume_window_us) / 1e6);
            give_up(parked_[i].link, why);
            parked_.erase(parked_.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }

    // ---- frames ------------------------------------------------------------------------
    void read_bus(std::size_t index) {
        BusSlot& bus = bus_slots_[index];
        if (now_ < bus.quiet_until) {
            return;
        }
        for (int round = 0; round < 16 && router_->read_allowed(index, bus.port->paced(), now_); ++round) {
            const std::size_t n = bus.port->read(frames_);
            // Frames closer together than the budget (two in one read, or this read within
            // the budget of the last that found any) start a quiet while: the bus is read again
            // only when it ends, so that while's frames go on together, one wake-up for all.
            // Frames further apart are read as they come: waiting would add latency and a
            // wake-up that finds nothing. A read that found none starts nothing.
            if (n > 0 && n < frames_.size() && config_.latency_budget_us != 0 &&
                (n > 1 || now_ - bus.frames_read_us < config_.latency_budget_us)) {
                bus.quiet_until = now_ + config_.latency_budget_us;
            }
            if (n > 0) {
                bus.frames_read_us = now_;
            }
            for (std::size_t i = 0; i < n; ++i) {
                if (log_enabled(LogLevel::debug)) {
                    LOG_DEBUG("%s -> peers: %s", bus.port->name().c_str(), frame_text(frames_[i]).c_str());
                }
                router_->from_bus(index, frames_[i], now_);
            }
            if (n < frames_.size()) {
                break;
            }
        }
    }

    void drain_to_bus() {
        const std::uint64_t wall = config_.max_age_us != 0 ? wall_clock_us() : 0;
        for (std::size_t index = 0; index < bus_slots_.size(); ++index) {
            BusPort& port = *bus_slots_[index].port;
            bus_slots_[index].busy = !router_->drain_to_bus(
                index,
                [&port](const Frame& f) {
                    const BusWrite w = port.write(f);
                    if (w == BusWrite::written && log_enabled(LogLevel::debug)) {
                        LOG_DEBUG("peer -> %s: %s", port.name().c_str(), frame_text(f).c_str());
                    }
                    return to_router(w);
                },
                now_, wall);
        }
    }

    // ---- the loop's regular work ---------------------------------------------------------
    void service() {
        for (std::size_t index = 0; index < bus_slots_.size(); ++index) {
            BusSlot& bus = bus_slots_[index];
            // A quiet while that ended is read at once: epoll was not asked about the bus during it.
            const bool quiet_ended = bus.quiet_until != 0 && now_ >= bus.quiet_until;
            if (bus.readable || quiet_ended || bus.port->read_always_ready()) {
                if (quiet_ended) {
                    bus.quiet_until = 0;
                }
                read_bus(index);
            }
            bus.readable = false;
        }
        drain_to_bus();
        if (beacon_) {
            beacon_->send_if_due(now_, limiter_);
        }
        if (now_ >= next_maintain_) {
            for (BusSlot& bus : bus_slots_) {
                bus.port->maintain();
            }
            limiter_.flush(now_);
            host_limiter_.flush(now_);
            next_maintain_ = now_ + second_us;
        }
        if (accept_resume_at_ != 0 && now_ >= accept_resume_at_) {
            accept_resume_at_ = 0;
            for (int fd : listen_fds_) {
                loop_.set_interest(fd, EPOLLIN);
            }
        }
        expire_parked();
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
            if (c.handshaking && handshakes_.expired(c.connected_us, now_)) {
                ++tls_refused_;
                const std::string why = "TLS handshake did not finish within " +
                                        std::to_string(handshakes_.timeout_us() / 1000) + " ms";
                const std::string name = c.name;
                remove_connection(c);
                if (!config_.serve) {
                    connection_failed(name + ": " + why);
                } else if (host_limiter_.allow(host_of(name) + " tls-refused", now_)) {
                    LOG_WARNING("%s: refused: %s", name.c_str(), why.c_str());
                }
                continue;  // the vector shrank
            }
            if (c.connecting || !c.link) {
                ++i;
                continue;
            }
            if (config_.dead_after_us != 0 && now_ - c.link->last_received_us() >= config_.dead_after_us) {
                // After a pause (SIGSTOP, a suspend; epoll_wait then returns EINTR with no
                // events) the peer's bytes may be waiting in the socket: read them before the
                // dead-after timer can declare the peer dead. (Before `link` below: a resume
                // read here can hand the connection to another session.)
                read_from(c);
            }
            Link& link = *c.link;
            link.tick(now_);
            flush(c);
            const TcpcanLink* session = link.tcpcan_session();
            if (!config_.serve && session != nullptr && link.ready() && !link.closed() && session->version() != 0) {
                resume_backoff_.connected(now_);  // resumed (or new): the next loss retries fast again
            }
            if (!c.attached && link.agreed() && !link.closed()) {
                admit(c);
                flush(c);
            }
            link.log_events(now_);
            log_new_drops(c);
            log_refusals(c);
            log_stall(c);
            if (link.closed()) {
                remove_connection(c);
                continue;  // the vector shrank: same index, next connection
            }
            if (link.read_budget() > 0 && c.transport->has_buffered_input()) {
                read_from(c);  // TLS records already read from the socket: epoll will not tell
            }
            // c.link, not `link`: that read may have resumed a parked session onto `c`.
            std::uint32_t events = c.transport->wanted_events(!c.link->output().empty());
            if (c.link->read_budget() == 0 && !c.transport->handshaking()) {
                events &= ~std::uint32_t{EPOLLIN};  // TCP pushes back; and no EPOLLHUP spin (see EventLoop)
            }
            loop_.set_interest(c.fd, events);
            ++i;
        }
        // Frames staged by the bus port (one sendmmsg, or stdout's buffer) still waiting count as busy.
        for (std::size_t index = 0; index < bus_slots_.size(); ++index) {
            BusSlot& bus = bus_slots_[index];
            bus.busy = !bus.port->flush() || bus.busy;
            update_bus_watch(index);
        }
    }

    void update_bus_watch(std::size_t index) {
        BusSlot& bus = bus_slots_[index];
        const BusPort& port = *bus.port;
        const int read_fd = port.read_fd();
        if (read_fd != bus.read_fd || port.generation() != bus.generation) {
            loop_.forget(bus.read_fd);  // also when the port closed it: the cached interest goes
            bus.read_fd = read_fd;
            bus.generation = port.generation();
        }
        // With a latency budget the bus is not waited on for a while after a short read, so
        // the frames of that while are read (and sent on) together: fewer wake-ups per frame.
        const bool want_read =
            read_fd >= 0 && now_ >= bus.quiet_until && router_->read_allowed(index, port.paced(), now_);
        const int write_fd = bus.busy ? port.write_wait_fd() : -1;
        if (write_fd >= 0 && write_fd == read_fd) {
            loop_.set_interest(read_fd, (want_read ? std::uint32_t{EPOLLIN} : 0u) | EPOLLOUT);
            return;
        }
        loop_.set_interest(bus.read_fd, want_read ? std::uint32_t{EPOLLIN} : 0u);
        if (write_fd != bus.write_fd) {
            loop_.forget(bus.write_fd);
            bus.write_fd = write_fd;
        }
        loop_.set_interest(bus.write_fd, EPOLLOUT);
    }

    std::uint64_t deadline() {
        for (std::size_t index = 0; index < bus_slots_.size(); ++index) {
            const BusSlot& bus = bus_slots_[index];
            if (bus.port->read_always_ready() && now_ >= bus.quiet_until &&
                router_->read_allowed(index, bus.port->paced(), now_)) {
                return 0;
            }
        }
        std::uint64_t deadline = next_maintain_;
        if (beacon_) {
            deadline = std::min(deadline, beacon_->next_at());
        }
        if (next_stats_ != 0) {
            deadline = std::min(deadline, next_stats_);
        }
        if (accept_resume_at_ != 0) {
            deadline = std::min(deadline, accept_resume_at_);
        }
        for (const BusSlot& bus : bus_slots_) {
            if (bus.quiet_until > now_) {
                deadline = std::min(deadline, bus.quiet_until);
            }
            if (bus.busy && bus.port->write_wait_fd() < 0) {
                deadline = std::min(deadline, now_ + 1000);  // SocketCAN gives no EPOLLOUT for ENOBUFS: poll
            }
        }
        if (!config_.serve && connections_.empty() && reconnect_at_ != 0) {
            deadline = std::min(deadline, reconnect_at_);
        }
        for (const Parked& p : parked_) {
            deadline = std::min(deadline, p.since_us + config_.resume_window_us);
        }
        for (const auto& c : connections_) {
            if (c->handshaking) {
                deadline = std::min(deadline, handshakes_.deadline(c->connected_us));
            }
            if (c->link) {
                // A link closed by another's doing (eviction) is removed on the next pass, now.
                deadline = std::min(deadline, c->link->closed() ? now_ : c->link->next_deadline());
                if (c->link->read_budget() > 0 && c->transport->has_buffered_input()) {
                    return 0;  // TLS records already taken from the socket: epoll will not wake us for them
                }
            }
        }
        return deadline;
    }

    void print_stats(const char* label) {
        LinkTotals t = ended_;
        std::size_t live = 0;
        for (const auto& c : connections_) {
            if (c->link) {
                c->link->add_totals(t);
                live += c->attached && c->link->ready() && !c->link->closed() ? 1 : 0;
            }
        }
        for (const Parked& p : parked_) {
            p.link->add_totals(t);
        }
        if (resumable_client_) {
            resumable_client_->add_totals(t);
        }
        BusCounters b{};
        BusRouteCounters r{};
        for (std::size_t index = 0; index < bus_slots_.size(); ++index) {
            add_counters(b, bus_slots_[index].port->counters());
            add_counters(r, router_->counters(index));
        }
        const std::uint64_t dropped = t.dropped + r.dropped() + b.refused + b.rx_overflow + b.down_drops;
        LOG_INFO("%s: from_bus=%llu to_bus=%llu sent=%llu received=%llu dropped=%llu filtered=%llu unforwarded=%llu "
                 "lost=%llu duplicates=%llu peers=%zu rtt_ms=%.3f drops[output_full=%llu bus_queue_full=%llu "
                 "expired=%llu read_only=%llu not_allowed=%llu rate_limited=%llu bus_down=%llu bus_refused=%llu "
                 "bus_rx_overflow=%llu unsent_at_close=%llu] bad_input=%llu evicted=%llu refused_full=%llu "
                 "pending_closed=%llu tls_refused=%llu handshakes_full=%llu log_dropped=%llu resumed=%llu replayed=%llu "
                 "undeliverable=%llu",
                 label, ull(r.from_bus), ull(r.to_bus), ull(t.sent), ull(t.received), ull(dropped),
                 ull(r.filtered + t.filtered), ull(r.unforwarded), ull(t.lost), ull(t.duplicates), live, t.rtt_us / 1000.0,
                 ull(t.output_full), ull(t.bus_queue_full), ull(t.expired), ull(t.refused_read_only + r.refused_read_only),
                 ull(r.refused_not_allowed), ull(r.refused_rate), ull(r.bus_down + b.down_drops), ull(b.refused + r.bus_refused),
                 ull(b.rx_overflow), ull(t.unsent_at_close), ull(b.bad_input), ull(evicted_), ull(refused_full_),
                 ull(pending_closed_), ull(tls_refused_), ull(handshakes_.refused()), ull(log_lines_dropped()), ull(t.resumed),
                 ull(t.replayed), ull(t.undeliverable));
        if (bus_slots_.size() > 1) {
            print_bus_stats(label);
        }
        // Authenticated peers by name, with what their policy refused.
        for (const auto& c : connections_) {
            const PeerRouteCounters* pc = c->attached && !c->identity.empty() ? router_->counters(*c->link) : nullptr;
            if (pc == nullptr) {
                continue;
            }
            LinkTotals own{};
            c->link->add_totals(own);
            // Not "<label>:", so whoever reads the last statistics line still finds the totals.
            LOG_INFO("%s for peer %s: sent=%llu received=%llu read_only=%llu not_allowed=%llu rate_limited=%llu", label,
                     c->name.c_str(), ull(own.sent), ull(own.received), ull(pc->refused_read_only),
                     ull(pc->refused_not_allowed), ull(pc->refused_rate));
        }
    }

    static void add_counters(BusCounters& sum, const BusCounters& c) {
        sum.refused += c.refused;
        sum.bad_input += c.bad_input;
        sum.read_errors += c.read_errors;
        sum.rx_overflow += c.rx_overflow;
        sum.down_drops += c.down_drops;
    }

    static void add_counters(BusRouteCounters& sum, const BusRouteCounters& c) {
        sum.from_bus += c.from_bus;
        sum.to_bus += c.to_bus;
        sum.filtered += c.filtered;
        sum.unforwarded += c.unforwarded;
        sum.bus_down += c.bus_down;
        sum.bus_refused += c.bus_refused;
        sum.refused_read_only += c.refused_read_only;
        sum.refused_not_allowed += c.refused_not_allowed;
        sum.refused_rate += c.refused_rate;
    }

    // One line per bus when there are several ("<label> for bus NAME:", so the last
    // "<label>:" line stays the totals).
    void print_bus_stats(const char* label) {
        for (std::size_t index = 0; index < bus_slots_.size(); ++index) {
            LinkTotals t = ended_by_bus_[index];
            std::size_t live = 0;
            for (const auto& c : connections_) {
                if (c->link && c->attached && c->link->bus() == index) {
                    c->link->add_totals(t);
                    live += c->link->ready() ? 1 : 0;
                }
            }
            const BusCounters& b = bus_slots_[index].port->counters();
            const BusRouteCounters& r = router_->counters(index);
            const std::uint64_t dropped = t.dropped + r.dropped() + b.refused + b.rx_overflow + b.down_drops;
            LOG_INFO("%s for bus %s: from_bus=%llu to_bus=%llu sent=%llu received=%llu dropped=%llu filtered=%llu "
                     "unforwarded=%llu peers=%zu drops[output_full=%llu bus_queue_full=%llu expired=%llu read_only=%llu "
                     "not_allowed=%llu rate_limited=%llu bus_down=%llu bus_refused=%llu bus_rx_overflow=%llu] "
                     "bad_input=%llu",
                     label, buses_.names[index].c_str(), ull(r.from_bus), ull(r.to_bus), ull(t.sent), ull(t.received),
                     ull(dropped), ull(r.filtered + t.filtered), ull(r.unforwarded), live, ull(t.output_full),
                     ull(t.bus_queue_full), ull(t.expired), ull(t.refused_read_only + r.refused_read_only),
                     ull(r.refused_not_allowed), ull(r.refused_rate), ull(r.bus_down + b.down_drops),
                     ull(b.refused + r.bus_refused), ull(b.rx_overflow), ull(b.bad_input));
        }
    }

    void shutdown() {
        stopping_ = true;
        now_ = monotonic_us();
        drain_to_bus();
        while (!connections_.empty()) {
            Connection& c = *connections_.front();
            if (c.link && !c.link->closed()) {
                c.link->close(CloseReason::shutdown, "tcpcan is shutting down", now_);
            }
            remove_connection(c);
        }
        while (!parked_.empty()) {
            give_up(parked_.back().link, "tcpcan is shutting down");
            parked_.pop_back();
        }
        if (resumable_client_) {
            give_up(resumable_client_, "tcpcan is shutting down");
        }
        for (BusSlot& bus : bus_slots_) {
            bus.port->flush();
        }
        print_stats("final stats");
    }

    const BridgeConfig& config_;
    EventLoop loop_;
    std::vector<BusSlot> bus_slots_;  // in --can order, as buses_ names them
    std::unique_ptr<TlsContext> tls_;  // outlives every transport: declared before connections_
    HandshakeLimit handshakes_;
    std::unique_ptr<Router<max_routed_peers, max_buses>> router_;
    TransmitPolicy policy_{};
    struct Listener {
        Dialect dialect = Dialect::tcpcan;
        std::optional<std::size_t> bus;  // tied to one bus, else the peer chooses (or the first)
    };
    std::vector<int> listen_fds_;
    std::vector<Listener> listeners_;  // one per listen_fds_ entry
    BusDirectory buses_;
    std::unique_ptr<SocketcandBeacon> beacon_;
    std::vector<std::unique_ptr<Connection>> connections_;
    std::vector<Connection*> by_fd_;
    std::array<std::uint8_t, 65536> read_buffer_{};
    std::array<Frame, bus_batch> frames_{};
    LinkTotals ended_{};
    std::vector<LinkTotals> ended_by_bus_;  // links that ended, by the bus they were attached to
    LogLimiter limiter_{5, 10 * second_us};        // per link and kind of event
    LogLimiter host_limiter_{20, 10 * second_us};  // per host and kind of connection event
    LogLimiter system_limiter_{1, second_us};      // accept failures and the like
    ReconnectBackoff backoff_{};
    ReconnectBackoff resume_backoff_{ReconnectOptions{100'000, 1'000'000, 0}};
    std::vector<Parked> parked_;                     // server: sessions waiting for their client
    std::unique_ptr<Link> resumable_client_;  // client: the session between connections
    std::minstd_rand random_{std::random_device{}()};
    std::uint64_t now_ = 0;
    std::uint64_t next_maintain_ = 0, next_stats_ = 0, reconnect_at_ = 0, accept_resume_at_ = 0;
    std::uint64_t evicted_ = 0, refused_full_ = 0, pending_closed_ = 0, tls_refused_ = 0;
    std::uint32_t client_version_ = highest_version;
    bool fallback_to_v1_ = false;
    bool stopping_ = false;
    int exit_status_ = -1;
};

}  // namespace

int run_bridge(const BridgeConfig& config) {
    auto bridge = std::make_unique<Bridge>(config);  // 64 KiB read buffer and the Router: not on the stack
    return bridge->run();
}

}  // namespace tcpcan::linux_port
