// The gateway profile (profile.hpp): a Session<..., GatewayProfile> against a full one,
// and what the profile leaves out refused cleanly and counted.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <tcpcan/encoder.hpp>
#include <tcpcan/interfaces.hpp>
#include <tcpcan/session.hpp>

using namespace tcpcan;

namespace {

using FullSession = Session<4096, 64, 64, 64>;
// The capacities port/cortex-m uses.
using GatewaySession = Session<384, 16, 28, 4, GatewayProfile>;

template <class A, class B>
void pump(A& a, B& b, std::uint64_t now, std::size_t chunk = 1000) {
    for (int round = 0; round < 10000; ++round) {
        bool moved = false;
        auto move = [&](auto& from, auto& to) {
            const auto out = from.output();
            if (out.empty() || to.is_closed()) {
                return;
            }
            const std::size_t n = std::min(chunk, out.size());
            const ReceiveResult r = to.receive(out.first(n), now);
            from.consume_output(r.consumed);
            moved = moved || r.consumed > 0;
        };
        move(a, b);
        move(b, a);
        if (!moved) {
            return;
        }
    }
    FAIL("link never went quiet");
}

template <class S>
std::vector<Event> events(S& s) {
    std::vector<Event> all;
    Event e;
    while (s.poll_event(e)) {
        all.push_back(e);
    }
    return all;
}

template <class S>
std::vector<Frame> drain_bus(S& s, std::uint64_t now) {
    std::vector<Frame> frames;
    Frame f;
    while (s.peek_bus_frame(now, f)) {
        frames.push_back(f);
        s.pop_bus_frame();
    }
    return frames;
}

Frame make_frame(std::uint32_t id, std::uint8_t len, std::uint8_t flags = 0, std::uint8_t seed = 0) {
    Frame f;
    f.id = id;
    f.len = len;
    f.flags = flags;
    for (std::uint8_t i = 0; i < len && !(flags & frame_flag::remote); ++i) {
        f.data[i] = static_cast<std::uint8_t>(seed + i);
    }
    return f;
}

std::vector<std::uint8_t> bytes_of(std::span<const std::uint8_t> s) { return {s.begin(), s.end()}; }

SessionOptions server_options() {
    SessionOptions o;
    o.role = Role::server;
    return o;
}

}  // namespace

static_assert(std::is_same_v<FullSession::Stats, SessionStats>, "the default profile keeps 64-bit SessionStats");
static_assert(std::is_same_v<GatewaySession::Stats, BasicSessionStats<std::uint32_t>>);
// The smallest output each profile allows (the static_asserts in Session accept these).
static_assert(sizeof(Session<80, 16, 28, 4, GatewayProfile>) > 80);
static_assert(sizeof(Session<1542, 16, 28, 4>) > 1542);
static_assert(sizeof(GatewaySession) < sizeof(Session<1542, 16, 28, 4>) / 2,
              "the gateway profile is less than half of the smallest full session");

TEST_CASE("gateway server and full client: classic frames both ways, byte for byte") {
    FullSession client({}, 0);
    GatewaySession gateway(server_options(), 0);
    pump(client, gateway, 1);
    REQUIRE(client.state() == SessionState::established);
    REQUIRE(gateway.state() == SessionState::established);
    CHECK(gateway.version() == 2);
    CHECK(gateway.agreed_features() == feature::sequence);

    const std::vector<Frame> classic = {
        make_frame(0x123, 3, 0, 1), make_frame(0x1ABCDE0F, 8, frame_flag::extended, 2),
        make_frame(0x7FF, 4, frame_flag::remote), make_frame(0x0, 0), make_frame(0x80, 8, frame_flag::error, 5)};
    for (const Frame& f : classic) {
        CHECK(client.send_frame(f, 2) == SendResult::queued);
        CHECK(gateway.send_frame(f, 2) == SendResult::queued);
    }
    pump(client, gateway, 3);
    CHECK(drain_bus(gateway, 3) == classic);
    CHECK(drain_bus(client, 3) == classic);
    CHECK(gateway.stats().frames_to_bus == classic.size());
    CHECK(gateway.stats().frames_written == classic.size());
    CHECK(gateway.stats().sequence.received == classic.size());
}

TEST_CASE("gateway: CAN FD is refused both ways and counted, the session goes on") {
    FullSession client({}, 0);
    GatewaySession gateway(server_options(), 0);
    pump(client, gateway, 1);
    const Frame fd = make_frame(0x100, 12, frame_flag::fd | frame_flag::brs, 7);
    CHECK(client.send_frame(fd, 2) == SendResult::queued);
    CHECK(client.send_frame(make_frame(0x101, 2), 2) == SendResult::queued);
    pump(client, gateway, 3);
    const std::vector<Frame> got = drain_bus(gateway, 3);
    REQUIRE(got.size() == 1);
    CHECK(got[0].id == 0x101);
    CHECK(gateway.stats().drop_not_classic == 1);
    CHECK(gateway.stats().dropped_towards_bus() == 1);
    CHECK(gateway.state() == SessionState::established);

    CHECK(gateway.send_frame(fd, 4) == SendResult::invalid);
    CHECK(gateway.stats().drop_invalid == 1);
}

TEST_CASE("gateway: a version-1 peer is told 'v 0' (no version 1 in the profile)") {
    SessionOptions v1;
    v1.max_version = 1;
    FullSession client(v1, 0);
    GatewaySession gateway(server_options(), 0);
    const auto proposal = bytes_of(client.output());
    REQUIRE(proposal == std::vector<std::uint8_t>{'v', 4, 0, 0, 0, 1});
    const ReceiveResult r = gateway.receive(proposal, 1);
    CHECK_FALSE(r.ok);
    client.consume_output(proposal.size());
    CHECK(bytes_of(gateway.output()) == std::vector<std::uint8_t>{'v', 4, 0, 0, 0, 0});
    CHECK(gateway.is_closed());
    bool saw = false;
    for (const Event& e : events(gateway)) {
        saw = saw || (e.type == EventType::protocol_error && e.error == ProtocolError::no_common_version);
    }
    CHECK(saw);
}

TEST_CASE("gateway: max_version 1 is raised to 2, the only version the profile speaks") {
    SessionOptions o;
    o.max_version = 1;
    GatewaySession gateway(o, 0);
    CHECK(bytes_of(gateway.output()) == std::vector<std::uint8_t>{'v', 4, 0, 0, 0, 2});
}

TEST_CASE("gateway: a 'd' message is refused even where version 1 would take it") {
    BasicDecoder<GatewayProfile> decoder(DecoderMode::version1);
    BasicMessage<0> m;
    const std::vector<std::uint8_t> d = {'d', 16, 0x23, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(decoder.decode(d, m).status == DecodeStatus::error);
    CHECK(decoder.error() == ProtocolError::not_allowed_in_version_1);
    Decoder full(DecoderMode::version1);
    Message fm;
    CHECK(full.decode(d, fm).status == DecodeStatus::complete);
}

TEST_CASE("gateway: closes with the reason code alone; reads the peer's text") {
    FullSession client({}, 0);
    GatewaySession gateway(server_options(), 0);
    pump(client, gateway, 1);
    // The peer breaks the protocol: an 'f' without the agreed sequence number.
    const std::vector<std::uint8_t> bad = {'f', 6, 0, 0, 0, 1, 0x23, 0};
    CHECK_FALSE(gateway.receive(bad, 2).ok);
    CHECK(bytes_of(gateway.output()) == std::vector<std::uint8_t>{'c', 1, 2});

    FullSession client2({}, 0);
    GatewaySession gateway2(server_options(), 0);
    pump(client2, gateway2, 1);
    client2.close(CloseReason::shutdown, "bye", 2);
    pump(client2, gateway2, 2);
    CHECK(gateway2.is_closed());
    CHECK(gateway2.close_text() == "bye");
    bool saw = false;
    for (const Event& e : events(gateway2)) {
        saw = saw || (e.type == EventType::closed && e.by_peer && e.reason == CloseReason::shutdown);
    }
    CHECK(saw);

    GatewaySession gateway3(server_options(), 0);
    gateway3.close(CloseReason::shutdown, "not sent", 1);  // before agreement: nothing to send
    CHECK(gateway3.output().empty());
}

TEST_CASE("gateway: heartbeat, round trip and dead peer") {
    SessionOptions o = server_options();
    o.heartbeat_interval_us = 1000;
    o.dead_after_us = 3000;
    FullSession client({}, 0);
    GatewaySession gateway(o, 0);
    pump(client, gateway, 10);
    REQUIRE(gateway.state() == SessionState::established);
    CHECK(gateway.next_deadline() == 1010);
    gateway.tick(1010);
    CHECK(bytes_of(gateway.output()) == std::vector<std::uint8_t>{'p', 4, 0, 0, 0, 1});
    pump(client, gateway, 1500);
    CHECK(gateway.stats().pongs_received == 1);
    CHECK(gateway.stats().rtt_last_us == 490);
    // Silence from the client until dead_after.
    gateway.tick(4499);
    CHECK_FALSE(gateway.is_closed());
    gateway.tick(4500);
    CHECK(gateway.is_closed());
    const auto out = bytes_of(gateway.output());
    REQUIRE(out.size() >= 3);
    CHECK(std::vector<std::uint8_t>(out.end() - 3, out.end()) == std::vector<std::uint8_t>{'c', 1, 3});
}

TEST_CASE("gateway: a full output drops frames (counted) but keeps room for pong and close") {
    FullSession client({}, 0);
    GatewaySession gateway(server_options(), 0);
    pump(client, gateway, 1);
    std::size_t queued = 0;
    for (int i = 0; i < 100; ++i) {
        if (gateway.send_frame(make_frame(0x100, 8, 0, static_cast<std::uint8_t>(i)), 2) == SendResult::queued) {
            ++queued;
        }
    }
    CHECK(queued > 0);
    CHECK(queued < 100);
    CHECK(gateway.stats().drop_output_full == 100 - queued);
    CHECK(gateway.output_room() < max_classic_frame_message_size);
    // A ping still gets its pong, and a close still goes out.
    const std::vector<std::uint8_t> ping = {'p', 4, 0, 0, 0, 9};
    CHECK(gateway.receive(ping, 3).ok);
    auto out = bytes_of(gateway.output());
    CHECK(std::vector<std::uint8_t>(out.end() - 6, out.end()) == std::vector<std::uint8_t>{'q', 4, 0, 0, 0, 9});
    gateway.close(CloseReason::shutdown, "", 4);
    out = bytes_of(gateway.output());
    CHECK(std::vector<std::uint8_t>(out.end() - 3, out.end()) == std::vector<std::uint8_t>{'c', 1, 1});
    // Everything queued reaches the client intact.
    pump(client, gateway, 5);
    CHECK(drain_bus(client, 5).size() == queued);
}

TEST_CASE("gateway: a 28-entry subscription from the peer is honoured; one more entry is refused") {
    FullSession client({}, 0);
    GatewaySession gateway(server_options(), 0);
    FilterSet<64> only;
    REQUIRE(only.add(FilterEntry::exact_id(0x42)));
    for (std::uint32_t i = 0; i < 27; ++i) {
        REQUIRE(only.add(FilterEntry::exact_id(0x600 + i)));
    }
    REQUIRE(client.set_local_subscription(only));
    pump(client, gateway, 1);
    CHECK(gateway.peer_subscription().size() == 28);
    CHECK(gateway.send_frame(make_frame(0x42, 1), 2) == SendResult::queued);
    CHECK(gateway.send_frame(make_frame(0x43, 1), 2) == SendResult::filtered);
    CHECK(gateway.stats().filtered_out == 1);

    (void)events(gateway);  // only 4 event slots: read them before the next step
    REQUIRE(only.add(FilterEntry::exact_id(0x700)));
    REQUIRE(client.set_local_subscription(only));  // 29 entries: replace + append
    pump(client, gateway, 3);
    CHECK(gateway.is_closed());
    bool saw = false;
    for (const Event& e : events(gateway)) {
        saw = saw || (e.type == EventType::protocol_error && e.error == ProtocolError::subscription_too_large);
    }
    CHECK(saw);
}

TEST_CASE("gateway: frames older than max_frame_age are dropped with 32-bit arrival times across the wrap") {
    SessionOptions o = server_options();
    o.max_frame_age_us = 100;
    FullSession client({}, 0);
    GatewaySession gateway(o, 0);
    const std::uint64_t base = 0xFFFF'FFC0u;  // 32-bit arrival times wrap between the steps below
    pump(client, gateway, base);
    REQUIRE(client.send_frame(make_frame(0x1, 1), base) == SendResult::queued);
    pump(client, gateway, base);
    Frame f;
    CHECK(gateway.peek_bus_frame(base + 100, f));  // exactly the limit: still fresh
    CHECK_FALSE(gateway.peek_bus_frame(base + 101, f));
    CHECK(gateway.stats().drop_expired == 1);
}

TEST_CASE("bridge_step with a gateway session") {
    struct Can final : CanPort {
        std::vector<Frame> rx, tx;
        bool read(Frame& f) override {
            if (rx.empty()) {
                return false;
            }
            f = rx.front();
            rx.erase(rx.begin());
            return true;
        }
        bool write(const Frame& f) override {
            tx.push_back(f);
            return true;
        }
    };
    struct Link final : ByteStream {
        std::vector<std::uint8_t>* in;
        std::vector<std::uint8_t>* out;
        StreamRead read(std::span<std::uint8_t> b) override {
            const std::size_t n = std::min(b.size(), in->size());
            std::copy_n(in->begin(), n, b.begin());
            in->erase(in->begin(), in->begin() + static_cast<std::ptrdiff_t>(n));
            return {n, false};
        }
        std::size_t write(std::span<const std::uint8_t> b) override {
            out->insert(out->end(), b.begin(), b.end());
            return b.size();
        }
    };
    std::vector<std::uint8_t> a_to_b, b_to_a;
    Can can_a, can_b;
    Link link_a, link_b;
    link_a.in = &b_to_a;
    link_a.out = &a_to_b;
    link_b.in = &a_to_b;
    link_b.out = &b_to_a;
    FullSession a({}, 0);
    GatewaySession b(server_options(), 0);
    FilterSet<1> everything;
    for (int i = 0; i < 10; ++i) {
        can_a.rx.push_back(make_frame(0x200 + static_cast<std::uint32_t>(i), 8, 0, static_cast<std::uint8_t>(i)));
        can_b.rx.push_back(make_frame(0x300 + static_cast<std::uint32_t>(i), 2, 0, static_cast<std::uint8_t>(i)));
    }
    const std::vector<Frame> from_a = can_a.rx, from_b = can_b.rx;
    // Frames read before agreement are dropped (counted); start the buses afterwards.
    std::vector<Frame> held_a, held_b;
    std::swap(held_a, can_a.rx);
    std::swap(held_b, can_b.rx);
    for (std::uint64_t now = 1; now < 200; ++now) {
        if (now == 20) {
            std::swap(held_a, can_a.rx);
            std::swap(held_b, can_b.rx);
        }
        (void)bridge_step(a, can_a, link_a, everything, now, 3);
        (void)bridge_step(b, can_b, link_b, everything, now, 3);
    }
    CHECK(can_b.tx == from_a);
    CHECK(can_a.tx == from_b);
}

namespace {

// A small deterministic generator (xorshift32), so a failure repeats exactly.
struct Random {
    std::uint32_t state;
    std::uint32_t next() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        return state;
    }
    std::uint32_t below(std::uint32_t n) { return next() % n; }
};

// Mostly valid version-2 messages for an agreed SEQ session, now and then a broken one.
std::vector<std::uint8_t> random_message(Random& r, std::uint32_t& sequence) {
    std::vector<std::uint8_t> m;
    switch (r.below(10)) {
    case 0: m = {'p', 4, 0, 0, 0, static_cast<std::uint8_t>(r.next())}; break;
    case 1: {  // a subscription of up to 28 entries
        const std::uint32_t entries = r.below(29);
        m = {'s', static_cast<std::uint8_t>(1 + 9 * entries), static_cast<std::uint8_t>(r.below(2))};
        for (std::uint32_t i = 0; i < entries; ++i) {
            const std::uint32_t id = r.below(0x800);
            m.insert(m.end(), {0, 0, 0, static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0, 0,
                               0x07, 0xFF});
        }
        break;
    }
    case 2: {  // CAN FD: valid on the wire, not for this bus
        m = {'f', 22, 0x48, 0, 0, 1, 0, 12};
        for (int i = 0; i < 4; ++i) {
            m.push_back(static_cast<std::uint8_t>(sequence >> (24 - 8 * i)));
        }
        ++sequence;
        m.insert(m.end(), 12, 0xA5);
        break;
    }
    case 3:  // something broken: a random prefix and length
        m = {static_cast<std::uint8_t>(r.next()), static_cast<std::uint8_t>(r.below(4))};
        m.insert(m.end(), m[1], 0);
        break;
    default: {  // a classic frame
        const std::uint8_t len = static_cast<std::uint8_t>(r.below(9));
        m = {'f', static_cast<std::uint8_t>(10 + len), 0x40, 0, 0, static_cast<std::uint8_t>(r.below(8)),
             static_cast<std::uint8_t>(r.next()), len};
        for (int i = 0; i < 4; ++i) {
            m.push_back(static_cast<std::uint8_t>(sequence >> (24 - 8 * i)));
        }
        sequence += r.below(20) == 0 ? 2 : 1;  // now and then a gap
        for (std::uint8_t i = 0; i < len; ++i) {
            m.push_back(static_cast<std::uint8_t>(r.next()));
        }
        break;
    }
    }
    return m;
}

}  // namespace

TEST_CASE("gateway: random traffic keeps memory bounded, frames classic and every frame accounted for") {
    std::size_t closes = 0;
    std::uint64_t to_bus = 0, not_classic = 0;
    for (std::uint32_t seed = 1; seed <= 300; ++seed) {
        Random r{seed};
        SessionOptions o = server_options();
        o.heartbeat_interval_us = 1000;
        o.dead_after_us = 50'000;
        o.max_frame_age_us = 3000;
        GatewaySession gateway(o, 0);
        std::uint64_t now = 1;
        const std::vector<std::uint8_t> hello = {'v', 4, 0, 0, 0, 2, 'h', 4, 0, 0, 0, 1};
        REQUIRE(gateway.receive(hello, now).ok);
        REQUIRE(gateway.state() == SessionState::established);
        std::uint32_t sequence = 0;
        std::vector<std::uint8_t> pending;
        std::vector<std::uint8_t> wire;  // everything the gateway wrote
        bool closed_by_peer = false;
        auto write_out = [&](std::size_t n) {
            const auto out = gateway.output();
            n = std::min(n, out.size());
            wire.insert(wire.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
            gateway.consume_output(n);
        };
        for (int step = 0; step < 400 && !gateway.is_closed(); ++step) {
            now += r.below(400);
            if (pending.empty()) {
                pending = random_message(r, sequence);
            }
            const std::size_t offer = 1 + r.below(static_cast<std::uint32_t>(pending.size()));
            const ReceiveResult in = gateway.receive(std::span<const std::uint8_t>(pending.data(), offer), now);
            REQUIRE(in.consumed <= offer);
            pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(in.consumed));
            if (r.below(3) == 0) {
                (void)gateway.send_frame(make_frame(r.below(0x800), static_cast<std::uint8_t>(r.below(9))), now);
            }
            gateway.tick(now);
            CHECK(gateway.output().size() <= 384);
            CHECK(gateway.bus_queue_size() <= 16);
            write_out(r.below(64));
            Frame f;
            for (std::uint32_t n = r.below(3); n > 0 && gateway.peek_bus_frame(now, f); --n) {
                CHECK_FALSE(f.is_fd());
                CHECK(check_frame(f) == FrameProblem::none);
                gateway.pop_bus_frame();
            }
            Event e;
            while (gateway.poll_event(e)) {
                closed_by_peer = closed_by_peer || (e.type == EventType::closed && e.by_peer);
            }
        }
        write_out(gateway.output().size());
        const auto& s = gateway.stats();
        to_bus += s.frames_to_bus;
        not_classic += s.drop_not_classic;
        CHECK(s.frames_from_peer == s.frames_to_bus + s.drop_expired + s.drop_bus_queue_full + s.drop_not_classic +
                                        s.drop_refused + gateway.bus_queue_size());
        if (gateway.is_closed() && !closed_by_peer) {
            ++closes;
            // A gateway's close is the reason code alone: the last 3 bytes it wrote.
            REQUIRE(wire.size() >= 3);
            CHECK(wire[wire.size() - 3] == 'c');
            CHECK(wire[wire.size() - 2] == 1);
        }
    }
    CHECK(to_bus > 1000);     // the traffic did reach the bus
    CHECK(not_classic > 100);  // and FD frames were met and counted
    CHECK(closes > 0);    // broken messages do end sessions
    CHECK(closes < 300);  // and valid traffic keeps others going
}

namespace {
// A profile of one's own: the gateway's, but asking the peer to filter.
struct SubscribingGateway : GatewayProfile {
    static constexpr bool local_subscription = true;
};
}  // namespace

TEST_CASE("a custom profile: a gateway with a local subscription keeps room for it beside its frames") {
    using S = Session<1100, 16, 28, 4, SubscribingGateway>;
    FullSession peer(server_options(), 0);
    S gateway({}, 0);
    pump(gateway, peer, 1);
    REQUIRE(gateway.state() == SessionState::established);
    // Frames stop at the control reserve (4 whole messages, since a subscription can be one)...
    std::size_t queued = 0;
    while (gateway.send_frame(make_frame(0x10, 8), 2) == SendResult::queued) {
        ++queued;
    }
    CHECK(queued == (1100 - 4 * max_message_size) / 20);
    CHECK(gateway.stats().drop_output_full == 1);
    // ...so a whole 28-entry subscription still goes out at once, with room for a close.
    FilterSet<28> wanted;
    for (std::uint32_t i = 0; i < 28; ++i) {
        REQUIRE(wanted.add(FilterEntry::exact_id(0x100 + i)));
    }
    REQUIRE(gateway.set_local_subscription(wanted));
    pump(gateway, peer, 3);
    CHECK(peer.peer_subscription().size() == 28);
    CHECK(peer.send_frame(make_frame(0x100, 1), 5) == SendResult::queued);
    CHECK(peer.send_frame(make_frame(0x200, 1), 5) == SendResult::filtered);
    CHECK(drain_bus(peer, 5).size() == queued);
}

TEST_CASE("gateway: no bus request (profile bus_request = false): not offered, not asked, a 'b' is refused") {
    // A client gateway cannot ask for a bus by name...
    SessionOptions client_options;
    GatewaySession client(client_options, 0);
    CHECK_FALSE(client.request_bus("can1"));
    // ... and against a server that offers BUS the feature is not agreed, so no bus is pending.
    SessionOptions offering = server_options();
    offering.features |= feature::bus;
    FullSession server(offering, 0);
    pump(client, server, 1);
    REQUIRE(client.state() == SessionState::established);
    CHECK((client.agreed_features() & feature::bus) == 0);
    CHECK_FALSE(client.bus_pending());
    CHECK_FALSE(server.bus_pending());

    // A gateway server never offers it either; a 'b' from the peer is a named protocol error.
    FullSession peer({}, 0);
    GatewaySession gateway(server_options(), 0);
    pump(peer, gateway, 1);
    REQUIRE(gateway.state() == SessionState::established);
    (void)events(gateway);
    const std::uint8_t bus_message[] = {'b', 4, 'c', 'a', 'n', '1'};
    (void)gateway.receive(bus_message, 2);
    CHECK(gateway.is_closed());
    bool named = false;
    for (const Event& e : events(gateway)) {
        named = named || (e.type == EventType::protocol_error && e.error == ProtocolError::unexpected_bus_message);
    }
    CHECK(named);
}
