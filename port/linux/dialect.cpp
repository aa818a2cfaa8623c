// Wiring a dialect in: return true from its case in dialect_built() (per role if it has
// only one side), build its Link in its case of make_link(), and put its settings in its
// marked blocks (LinkSetup, BridgeConfig, the options in tools/tcpcan.cpp, start_link in
// bridge.cpp). The Link's bus(): setup.bus when the listener is tied to one; otherwise a
// dialect whose peer names a bus (peer_chooses_bus) looks the name up in *setup.buses and
// must have settled it before agreed() turns true; the others use bus 0. A datagram
// dialect (is_datagram) has no accept(): the bridge binds a UDP socket per listener address
// (or connects one, as a client) and takes its Link and Transport from make_datagram_link().
#include "dialect.hpp"

#include <algorithm>
#include <charconv>

#include "tcpcan_link.hpp"
// socketcand's link:
#include "socketcand_link.hpp"

// cannelloni's links:
#include "cannelloni_link.hpp"
#include "udp_net.hpp"

// canip's link:
#include "canip_link.hpp"
#include "detect_link.hpp"

namespace tcpcan::linux_port {

namespace {

bool all_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}


}  // namespace

std::string_view dialect_name(Dialect dialect) {
    switch (dialect) {
    case Dialect::tcpcan: return "tcpcan";
    case Dialect::socketcand: return "socketcand";
    case Dialect::cannelloni: return "cannelloni";
    case Dialect::cannelloni_udp: return "cannelloni-udp";
    case Dialect::canip: return "canip";
    }
    return "?";
}

std::string dialect_list() {
    std::string list;
    constexpr std::size_t n = std::size(all_dialects);
    for (std::size_t i = 0; i < n; ++i) {
        list += i == 0 ? "" : (i + 1 == n ? " or " : ", ");
        list += dialect_name(all_dialects[i]);
    }
    return list;
}

std::optional<Dialect> parse_dialect(std::string_view text) {
    for (Dialect d : all_dialects) {
        if (dialect_name(d) == text) {
            return d;
        }
    }
    return std::nullopt;
}

std::uint16_t default_port(Dialect dialect) {
    switch (dialect) {
    case Dialect::tcpcan: return 20010;
    case Dialect::socketcand: return 29536;
    case Dialect::cannelloni: return 20000;
    case Dialect::cannelloni_udp: return 20000;
    case Dialect::canip: return 3333;
    }
    return 0;
}

bool is_datagram(Dialect dialect) { return dialect == Dialect::cannelloni_udp; }

bool peer_chooses_bus(Dialect dialect) { return dialect == Dialect::tcpcan || dialect == Dialect::socketcand; }

bool dialect_built(Dialect dialect, Role role, std::string& why) {
    switch (dialect) {
    case Dialect::tcpcan:
        return true;

    case Dialect::socketcand:
        if (role != Role::server) {
            why = "the socketcand dialect is served (--listen socketcand@PORT); tcpcan has no socketcand client";
            return false;
        }
        return true;

    case Dialect::cannelloni:
    case Dialect::cannelloni_udp:
        return true;

    case Dialect::canip:
        return true;
    }
    why = "unknown dialect " + std::to_string(static_cast<int>(dialect));  // not a value of the enum
    return false;
}

ListenParse parse_listen_spec(std::string_view text) {
    ListenParse r;
    r.spec.text = std::string(text);
    const std::string quoted = "--listen '" + std::string(text) + "': ";
    const auto fail = [&](const std::string& what) {
        r.error = quoted + what + " (the form is DIALECT@[ADDR:]PORT[:BUS], e.g. socketcand@29536 or canip@3334:can1)";
        return r;
    };
    const std::size_t at = text.find('@');
    if (at == std::string_view::npos) {
        return fail("no '@' after the dialect");
    }
    const std::string_view dialect = text.substr(0, at);
    const auto parsed = parse_dialect(dialect);
    if (!parsed) {
        return fail(dialect.empty() ? std::string("no dialect before '@'")
                                    : "unknown dialect '" + std::string(dialect) + "', expected " + dialect_list());
    }
    r.spec.dialect = *parsed;
    std::string_view rest = text.substr(at + 1);
    if (rest.empty()) {
        return fail("no port after '@'");
    }
    std::string_view address, port, bus;
    if (rest.front() == '[') {
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            return fail("'[' without ']' around an IPv6 address");
        }
        address = rest.substr(1, close - 1);
        rest = rest.substr(close + 1);
        if (address.empty()) {
            return fail("empty address in '[]'");
        }
        if (rest.empty() || rest.front() != ':') {
            return fail("no ':PORT' after the IPv6 address");
        }
        rest = rest.substr(1);
        const std::size_t colon = rest.find(':');
        port = rest.substr(0, colon);
        bus = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
        if (colon != std::string_view::npos && bus.empty()) {
            return fail("empty bus name after ':'");
        }
    } else {
        const std::size_t first = rest.find(':');
        const std::string_view head = rest.substr(0, first);
        if (first == std::string_view::npos) {
            port = rest;  // PORT
        } else if (first == 0) {
            return fail("empty address before ':' (an IPv6 address goes in brackets: [::1]:PORT)");
        } else if (all_digits(head)) {
            port = head;  // PORT:BUS
            bus = rest.substr(first + 1);
            if (bus.empty()) {
                return fail("empty bus name after ':'");
            }
        } else {
            address = head;  // ADDR:PORT or ADDR:PORT:BUS (a bus name may hold ':', as fd:3,4 does)
            const std::size_t second = rest.find(':', first + 1);
            port = rest.substr(first + 1, second == std::string_view::npos ? std::string_view::npos : second - first - 1);
            if (second != std::string_view::npos) {
                bus = rest.substr(second + 1);
                if (bus.empty()) {
                    return fail("empty bus name after ':'");
                }
            }
        }
    }
    if (port.empty()) {
        return fail("no port");
    }
    if (!all_digits(port)) {
        return fail("port '" + std::string(port) + "' is not a decimal number");
    }
    unsigned value = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error != std::errc{} || end != port.data() + port.size() || value < 1 || value > 65535) {
        return fail("port " + std::string(port) + " is out of range 1 to 65535");
    }
    r.spec.address = std::string(address);
    r.spec.port = static_cast<std::uint16_t>(value);
    r.spec.bus = std::string(bus);
    r.ok = true;
    return r;
}

namespace {

// canip's options from the common ones: SEQ with tcpcan's sequence numbers (on unless
// --no-seq), TS with --timestamps, --max-age on its timestamps.
CanipOptions canip_options(const LinkSetup& setup) {
    CanipOptions o;
    o.start = CanipOptions::Start::hello;
    o.features = static_cast<std::uint8_t>(((setup.session.features & feature::sequence) ? canip::feature::seq : 0) |
                                           ((setup.session.features & feature::timestamps) ? canip::feature::ts : 0));
    o.max_frame_age_us = setup.session.max_frame_age_us;
    o.bus = setup.bus.value_or(0);
    return o;
}

// cannelloni's peer check on a TCP connection: empty when the peer is `allowed` ("ADDR[:PORT]",
// the address alone counts), else why it is refused.
std::string refusal_by_peer_check(int fd, const std::string& allowed) {
    sockaddr_storage want{}, got{};
    socklen_t want_length = 0, got_length = sizeof got;
    bool has_port = false;
    if (!resolve_udp_peer(allowed, want, want_length, has_port).ok ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&got), &got_length) != 0 || !same_host(want, got)) {
        return "not the cannelloni peer " + allowed + " (--cannelloni-peer)";
    }
    return {};
}

}  // namespace

MadeLink make_link(const LinkSetup& setup) {
    MadeLink made;
    std::string why;
    if (!dialect_built(setup.dialect, setup.session.role, why)) {
        made.error = why;
        return made;
    }
    static const FilterSet<1> no_subscription;
    switch (setup.dialect) {
    case Dialect::tcpcan: {
        SessionOptions session = setup.session;
        // A server lets a client name its bus only where there is a choice: an untied
        // listener of several buses (with one bus, nothing changes on the wire).
        if (session.role == Role::server && !setup.bus && setup.buses != nullptr && setup.buses->names.size() > 1) {
            session.features |= feature::bus;
        }
        if (setup.detect_canip) {
            DetectOptions o;
            o.tcpcan = session;
            o.canip = canip_options(setup);
            o.buses = setup.buses;
            made.link = std::make_unique<DetectLink>(
                setup.name, o, setup.subscription ? *setup.subscription : no_subscription, *setup.limiter, setup.now);
            return made;
        }
        auto link = std::make_unique<TcpcanLink>(setup.name, session,
                                                 setup.subscription ? *setup.subscription : no_subscription,
                                                 *setup.limiter, setup.now);
        link->tie_to_bus(setup.bus.value_or(0));
        if (!setup.remote_bus.empty() && !link->request_bus(setup.remote_bus)) {
            made.error = "--remote-bus '" + setup.remote_bus + "': a bus name is 1 to 64 printable characters, no spaces";
            return made;
        }
        link->serve_buses(setup.buses);
        made.link = std::move(link);
        return made;
    }

    case Dialect::socketcand: {
        static const BusDirectory no_buses;
        SocketcandOptions options;
        options.open_timeout_us = setup.session.negotiation_timeout_us;
        options.ok_hold_us = setup.socketcand_ok_hold_us;
        made.link = std::make_unique<SocketcandLink>(setup.name, setup.buses ? *setup.buses : no_buses, options,
                                                     *setup.limiter, setup.now, setup.bus);
        return made;
    }

    case Dialect::cannelloni: {
        CannelloniOptions options;
        options.role = setup.session.role;
        options.bus = setup.bus.value_or(0);
        options.handshake_timeout_us = setup.session.negotiation_timeout_us;
        if (!setup.cannelloni_peer.empty() && setup.fd >= 0) {
            options.refuse_because = refusal_by_peer_check(setup.fd, setup.cannelloni_peer);
        }
        made.link = std::make_unique<CannelloniTcpLink>(setup.name, options, *setup.limiter, setup.now);
        return made;
    }

    case Dialect::cannelloni_udp:
        made.error = "cannelloni-udp has no connection to accept: its socket comes from make_datagram_link()";
        return made;

    case Dialect::canip:
        made.link = std::make_unique<CanipLink>(setup.name, canip_options(setup), *setup.limiter, setup.now);
        return made;
    }
    made.error = "the " + std::string(dialect_name(setup.dialect)) + " dialect has no link in make_link()";
    return made;
}

MadeDatagram make_datagram_link(const LinkSetup& setup, int fd, const DatagramPeer& peer_spec) {
    MadeDatagram made;
    if (setup.dialect != Dialect::cannelloni_udp) {
        made.error = "the " + std::string(dialect_name(setup.dialect)) + " dialect is not carried over UDP";
        return made;
    }
    auto peer = std::make_shared<UdpPeer>();
    peer->connected = peer_spec.connected;
    peer->known = peer_spec.connected;
    if (!peer_spec.connected && !peer_spec.fixed_peer.empty()) {
        const NetResult r = resolve_udp_peer(peer_spec.fixed_peer, peer->address, peer->address_length, peer->port_fixed);
        if (!r.ok) {
            made.error = "--cannelloni-peer " + r.error;
            return made;
        }
        peer->address_fixed = true;
        peer->known = peer->port_fixed;  // without a port, the peer's first packet says where to answer
    }
    CannelloniOptions options;
    options.role = setup.session.role;
    options.bus = setup.bus.value_or(0);
    sockaddr_storage local{};
    socklen_t local_length = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) == 0 && local.ss_family == AF_INET6) {
        options.ip_udp_overhead = cannelloni::ipv6_udp_overhead;
    }
    if (peer_spec.flush_timeout_us != 0) {
        options.flush_timeout_us = peer_spec.flush_timeout_us;
    }
    made.transport = make_udp_transport(fd, peer);
    made.link = std::make_unique<CannelloniUdpLink>(setup.name, options, std::move(peer), *setup.limiter, setup.now);
    return made;
}

}  // namespace tcpcan::linux_port
