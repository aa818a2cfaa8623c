// The Router with fake buses and fake peers: fan-out, filters, rebroadcast, round robin,
// pacing and stalls, transmit policy, counters. Then a real Session behind SessionPeer,
// the reconnect backoff, and a session moved from small to full-size storage.
#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include <tcpcan/filter.hpp>
#include <tcpcan/reconnect.hpp>
#include <tcpcan/router.hpp>
#include <tcpcan/session.hpp>
#include <tcpcan/session_peer.hpp>

using namespace tcpcan;

namespace {

Frame frame(std::uint32_t id, std::uint8_t flags = 0) {
    Frame f;
    f.id = id;
    f.flags = flags;
    f.len = 1;
    f.data[0] = static_cast<std::uint8_t>(id);
    if ((flags & frame_flag::error) != 0) {
        f.len = 8;
    }
    return f;
}

// A peer whose every decision the test sets: ready or not, room or not, and a queue of
// frames "from the network" for the bus.
class FakePeer final : public Peer {
public:
    bool is_ready = true;
    std::size_t room = 1000;  // frames it can still take
    std::vector<Frame> received;
    std::deque<Frame> for_bus;
    std::size_t dropped = 0;

    bool ready() const override { return is_ready; }
    void offer(const Frame& f, std::uint64_t) override {
        if (room == 0) {
            ++dropped;
            return;
        }
        --room;
        received.push_back(f);
    }
    bool has_room(std::size_t frames) const override { return room >= frames; }
    const Frame* peek_for_bus(std::uint64_t, std::uint64_t) override { return for_bus.empty() ? nullptr : &for_bus.front(); }
    void pop_for_bus() override { for_bus.pop_front(); }
};

// A bus that takes `capacity` frames, then is busy.
struct FakeBus {
    std::vector<Frame> written;
    std::size_t capacity = 1000;
    BusWriteResult when_full = BusWriteResult::busy;
    BusWriteResult operator()(const Frame& f) {
        if (written.size() >= capacity) {
            return when_full;
        }
        written.push_back(f);
        return BusWriteResult::written;
    }
};

std::vector<std::uint32_t> ids(const std::vector<Frame>& frames) {
    std::vector<std::uint32_t> out;
    for (const Frame& f : frames) {
        out.push_back(f.id);
    }
    return out;
}

}  // namespace

TEST_CASE("router: bus frames fan out to every ready peer, filtered first") {
    Router<4> router;
    FakePeer a, b, not_ready;
    not_ready.is_ready = false;
    FilterSet<8> forward;
    REQUIRE(parse_filter_list("100-1FF", forward).ok);
    router.set_forward_filter(0, &forward);
    REQUIRE(router.attach(a));
    REQUIRE(router.attach(b));
    REQUIRE(router.attach(not_ready));
    CHECK_FALSE(router.attach(a));  // once only

    router.from_bus(0, frame(0x123), 1);
    router.from_bus(0, frame(0x223), 2);  // filtered
    router.from_bus(0, frame(0x80, frame_flag::error), 3);  // error frames pass every filter

    CHECK(ids(a.received) == std::vector<std::uint32_t>{0x123, 0x80});
    CHECK(ids(b.received) == std::vector<std::uint32_t>{0x123, 0x80});
    CHECK(not_ready.received.empty());
    const BusRouteCounters& c = router.counters(0);
    CHECK(c.from_bus == 3);
    CHECK(c.filtered == 1);
    CHECK(c.unforwarded == 0);
    CHECK(router.ready_peers(0) == 2);
}

TEST_CASE("router: frames read while no peer is ready are counted as unforwarded") {
    Router<2> router;
    FakePeer a;
    a.is_ready = false;
    REQUIRE(router.attach(a));
    router.from_bus(0, frame(1), 0);
    router.from_bus(0, frame(2), 0);
    CHECK(router.counters(0).unforwarded == 2);
    CHECK(a.received.empty());
}

TEST_CASE("router: a frame written to the bus is echoed to the other peers, not its sender") {
    Router<3> router;
    FakePeer a, b, c;
    REQUIRE(router.attach(a));
    REQUIRE(router.attach(b));
    REQUIRE(router.attach(c));
    a.for_bus = {frame(0x10), frame(0x11)};
    FakeBus bus;
    CHECK(router.drain_to_bus(0, bus, 0));
    CHECK(ids(bus.written) == std::vector<std::uint32_t>{0x10, 0x11});
    CHECK(a.received.empty());
    CHECK(ids(b.received) == std::vector<std::uint32_t>{0x10, 0x11});
    CHECK(ids(c.received) == std::vector<std::uint32_t>{0x10, 0x11});
    CHECK(router.counters(0).to_bus == 2);
    CHECK(router.counters(a)->to_bus == 2);
}

TEST_CASE("router: round robin towards the bus, and the blocked peer goes first next time") {
    Router<3> router;
    FakePeer a, b, c;
    REQUIRE(router.attach(a));
    REQUIRE(router.attach(b));
    REQUIRE(router.attach(c));
    for (std::uint32_t i = 0; i < 4; ++i) {
        a.for_bus.push_back(frame(0xA0 + i));
        b.for_bus.push_back(frame(0xB0 + i));
    }
    c.for_bus.push_back(frame(0xC0));
    FakeBus bus;
    bus.capacity = 4;
    CHECK_FALSE(router.drain_to_bus(0, bus, 0));  // busy after 4
    // One frame per peer per round: nobody gets a second turn before the others had one.
    CHECK(ids(bus.written) == std::vector<std::uint32_t>{0xA0, 0xB0, 0xC0, 0xA1});
    bus.capacity = 100;
    CHECK(router.drain_to_bus(0, bus, 0));
    // b was refused by the busy bus, so b goes first; then rounds continue.
    CHECK(ids(bus.written) == std::vector<std::uint32_t>{0xA0, 0xB0, 0xC0, 0xA1, 0xB1, 0xA2, 0xB2, 0xA3, 0xB3});
    CHECK(a.for_bus.empty());
    CHECK(b.for_bus.empty());
}

TEST_CASE("router: a busy bus keeps the frame queued; down and refused drop it, counted") {
    Router<1> router;
    FakePeer a;
    REQUIRE(router.attach(a));
    a.for_bus = {frame(1), frame(2)};
    FakeBus bus;
    bus.capacity = 0;
    CHECK_FALSE(router.drain_to_bus(0, bus, 0));
    CHECK(a.for_bus.size() == 2);
    bus.when_full = BusWriteResult::down;
    CHECK(router.drain_to_bus(0, bus, 0));
    CHECK(a.for_bus.empty());
    CHECK(router.counters(0).bus_down == 2);
    a.for_bus = {frame(3)};
    bus.when_full = BusWriteResult::refused;
    CHECK(router.drain_to_bus(0, bus, 0));
    CHECK(router.counters(0).bus_refused == 1);
    CHECK(router.counters(0).dropped() == 3);
}

TEST_CASE("router: transmit policy — read-only, allow list, rate limit — counted per cause") {
    Router<3> router;
    FakePeer reader, allowed, limited, listener;
    FilterSet<8> allow;
    REQUIRE(parse_filter_list("7DF,7E0-7EF", allow).ok);
    TransmitPolicy read_only;
    read_only.read_only = true;
    TransmitPolicy allow_list;
    allow_list.allow = &allow;
    TransmitPolicy rate;
    rate.max_frames_per_s = 10;
    rate.burst = 2;
    REQUIRE(router.attach(reader, 0, read_only));
    REQUIRE(router.attach(allowed, 0, allow_list));
    REQUIRE(router.attach(limited, 0, rate));

    reader.for_bus = {frame(0x7DF)};
    allowed.for_bus = {frame(0x7DF), frame(0x123), frame(0x7E8), frame(0x7E8, frame_flag::error), frame(0x7E0 | 0x1000, frame_flag::extended)};
    for (int i = 0; i < 5; ++i) {
        limited.for_bus.push_back(frame(0x300 + static_cast<std::uint32_t>(i)));
    }
    FakeBus bus;
    CHECK(router.drain_to_bus(0, bus, 1'000'000));
    // Rounds: reader (refused), allowed 7DF, limited 300; allowed 123 (refused), limited 301; ...
    CHECK(ids(bus.written) == std::vector<std::uint32_t>{0x7DF, 0x300, 0x301, 0x7E8});
    const BusRouteCounters& c = router.counters(0);
    CHECK(c.refused_read_only == 1);
    CHECK(c.refused_not_allowed == 3);  // 123, the error frame, the extended id
    CHECK(c.refused_rate == 3);         // burst of 2 out of 5 at one instant
    CHECK(router.counters(reader)->refused_read_only == 1);
    CHECK(router.counters(allowed)->refused_not_allowed == 3);
    CHECK(router.counters(limited)->refused_rate == 3);
    // Refused frames reach no other peer either.
    CHECK(ids(reader.received) == std::vector<std::uint32_t>{0x7DF, 0x300, 0x301, 0x7E8});

    // 100 ms later one more token (10/s).
    limited.for_bus = {frame(0x310), frame(0x311)};
    CHECK(router.drain_to_bus(0, bus, 1'100'000));
    CHECK(bus.written.back().id == 0x310);
    CHECK(router.counters(0).refused_rate == 4);
}

TEST_CASE("router: a paced source waits for slow peers but not for a stalled one") {
    RouterOptions options;
    options.pace_batch = 10;
    options.stall_after_us = 2'000'000;
    Router<2> router(options);
    FakePeer healthy, stuck;
    REQUIRE(router.attach(healthy));
    REQUIRE(router.attach(stuck));
    CHECK(router.read_allowed(0, true, 0));
    CHECK(router.read_allowed(0, false, 0));

    stuck.room = 5;  // less than a batch: it is slow; wait for it
    CHECK_FALSE(router.read_allowed(0, true, 1'000'000));
    CHECK_FALSE(router.stalled(stuck, 1'000'000));
    CHECK_FALSE(router.read_allowed(0, true, 2'999'999));
    // No room for 2 s: stalled, no longer waited for.
    CHECK(router.read_allowed(0, true, 3'000'000));
    CHECK(router.stalled(stuck, 3'000'000));
    for (std::uint32_t i = 0; i < 20; ++i) {
        router.from_bus(0, frame(i), 3'000'000);
    }
    CHECK(healthy.received.size() == 20);
    CHECK(stuck.received.size() == 5);
    CHECK(stuck.dropped == 15);  // its drops are its own, counted

    // The healthy one fills up too: now nobody can take frames, so the source waits.
    healthy.room = 0;
    CHECK_FALSE(router.read_allowed(0, true, 3'000'001));
    // The stalled peer reads again: it paces the source once more.
    stuck.room = 100;
    healthy.room = 100;
    CHECK(router.read_allowed(0, true, 3'000'002));
    CHECK_FALSE(router.stalled(stuck, 3'000'002));

    // With no ready peer at all a paced source is not read.
    healthy.is_ready = false;
    stuck.is_ready = false;
    CHECK_FALSE(router.read_allowed(0, true, 4'000'000));
}

TEST_CASE("router: several buses never mix") {
    Router<4, 2> router;
    FakePeer on0, on1, stray;
    REQUIRE(router.attach(on0, 0));
    REQUIRE(router.attach(on1, 1));
    CHECK_FALSE(router.attach(stray, 2));  // there is no bus 2
    router.from_bus(0, frame(0x100), 0);
    router.from_bus(1, frame(0x200), 0);
    CHECK(ids(on0.received) == std::vector<std::uint32_t>{0x100});
    CHECK(ids(on1.received) == std::vector<std::uint32_t>{0x200});
    on0.for_bus = {frame(0x101)};
    on1.for_bus = {frame(0x201)};
    FakeBus bus0, bus1;
    CHECK(router.drain_to_bus(0, bus0, 0));
    CHECK(ids(bus0.written) == std::vector<std::uint32_t>{0x101});
    CHECK(on1.for_bus.size() == 1);
    CHECK(router.drain_to_bus(1, bus1, 0));
    CHECK(ids(bus1.written) == std::vector<std::uint32_t>{0x201});
    CHECK(router.counters(0).from_bus == 1);
    CHECK(router.counters(1).to_bus == 1);
}

TEST_CASE("router: slots are reused after detach; a full router refuses more") {
    Router<2> router;
    FakePeer a, b, c;
    REQUIRE(router.attach(a));
    REQUIRE(router.attach(b));
    CHECK_FALSE(router.attach(c));
    a.for_bus = {frame(1)};
    FakeBus bus;
    CHECK(router.drain_to_bus(0, bus, 0));
    router.detach(a);
    CHECK(router.counters(a) == nullptr);
    CHECK(router.counters(0).to_bus == 1);  // bus totals keep what a did
    CHECK(router.attach(c));
    router.from_bus(0, frame(2), 0);
    CHECK(a.received.empty());
    CHECK(c.received.size() == 1);
}

TEST_CASE("reconnect: first retry within 250 ms, doubling with jitter to 30 s, reset after a healthy session") {
    ReconnectBackoff backoff;
    std::uint64_t now = 0;
    const std::uint64_t first = backoff.next_delay(now, 0xFFFF'FFFF);
    CHECK(first <= 250'000);
    CHECK(first >= 125'000);
    CHECK(backoff.next_delay(now, 0) == 250'000);  // ceiling 500 ms, lowest draw = half
    std::uint64_t last = 0;
    for (int i = 0; i < 20; ++i) {
        last = backoff.next_delay(now, 0x8000'0000);
        CHECK(last <= 30'000'000);
    }
    CHECK(last >= 15'000'000);
    // A session that lived 5 s does not reset the backoff; one that lived 10 s does.
    backoff.connected(now);
    now += 5'000'000;
    CHECK(backoff.next_delay(now, 0) >= 15'000'000);
    backoff.connected(now);
    now += 10'000'000;
    CHECK(backoff.next_delay(now, 0xFFFF'FFFF) <= 250'000);
    // Different random inputs spread the delays.
    ReconnectBackoff x, y;
    CHECK(x.next_delay(0, 1) != y.next_delay(0, 0xF000'0000));
}

namespace {
using SmallSession = Session<2048, 16, 64, 16>;
using BigSession = Session<8192, 256, 64, 64>;

template <class A, class B>
void pump(A& a, B& b, std::uint64_t now) {
    for (int round = 0; round < 100; ++round) {
        bool moved = false;
        if (!a.output().empty()) {
            const auto r = b.receive(a.output(), now);
            a.consume_output(r.consumed);
            moved = true;
        }
        if (!b.output().empty()) {
            const auto r = a.receive(b.output(), now);
            b.consume_output(r.consumed);
            moved = true;
        }
        if (!moved) {
            return;
        }
    }
}
}  // namespace

TEST_CASE("session: a small negotiating session moves into a full-size one without losing anything") {
    SessionOptions client_options;
    client_options.role = Role::client;
    client_options.heartbeat_interval_us = 1'000'000;
    SessionOptions server_options;
    server_options.role = Role::server;
    BigSession client(client_options, 0);
    SmallSession small(server_options, 0);
    FilterSet<8> subscription;
    REQUIRE(parse_filter_list("100-1FF", subscription).ok);
    REQUIRE(client.set_local_subscription(subscription));
    pump(client, small, 0);
    REQUIRE(small.state() == SessionState::established);
    // Two frames arrive in the same read as the agreement: they are in the small queue.
    REQUIRE(client.send_frame(frame(0x111), 0) == SendResult::queued);
    REQUIRE(client.send_frame(frame(0x112), 0) == SendResult::queued);
    const auto r = small.receive(client.output(), 1);
    client.consume_output(r.consumed);
    REQUIRE(small.bus_queue_size() == 2);

    BigSession big(small);
    CHECK(big.state() == SessionState::established);
    CHECK(big.version() == 2);
    CHECK(big.agreed_features() == small.agreed_features());
    CHECK(big.stats().frames_from_peer == 2);
    CHECK(big.peer_subscription().size() == small.peer_subscription().size());
    CHECK(big.bus_queue_size() == 2);
    CHECK(big.peek_bus_frame(1)->id == 0x111);
    big.pop_bus_frame();
    CHECK(big.peek_bus_frame(1)->id == 0x112);
    big.pop_bus_frame();
    Event e;
    std::vector<EventType> events;
    while (big.poll_event(e)) {
        events.push_back(e.type);
    }
    CHECK(std::find(events.begin(), events.end(), EventType::version_agreed) != events.end());
    CHECK(std::find(events.begin(), events.end(), EventType::subscription_set) != events.end());
    // The moved session carries on: its subscription still applies and sequence numbers continue.
    CHECK(big.send_frame(frame(0x222), 2) == SendResult::filtered);
    CHECK(big.send_frame(frame(0x150), 2) == SendResult::queued);
    REQUIRE(client.send_frame(frame(0x113), 2) == SendResult::queued);
    pump(client, big, 3);
    CHECK(big.stats().sequence.gaps == 0);
    CHECK(big.peek_bus_frame(3)->id == 0x113);
    REQUIRE(client.peek_bus_frame(3) != nullptr);
    CHECK(client.peek_bus_frame(3)->id == 0x150);
    CHECK(client.stats().sequence.gaps == 0);
}

TEST_CASE("session: --min-protocol-version 2 refuses a peer that only speaks 1") {
    SessionOptions client_options;
    client_options.role = Role::client;
    client_options.max_version = 1;
    SessionOptions server_options;
    server_options.role = Role::server;
    server_options.min_version = 2;
    SmallSession client(client_options, 0);
    SmallSession server(server_options, 0);
    pump(client, server, 0);
    CHECK(server.is_closed());
    CHECK(server.state() != SessionState::established);
    CHECK(client.state() != SessionState::established);
}

TEST_CASE("router with real sessions: SessionPeer moves frames both ways and echoes between clients") {
    SessionOptions server_options;
    server_options.role = Role::server;
    SessionOptions client_options;
    using S = Session<4096, 64, 64, 16>;
    S server_a(server_options, 0), server_b(server_options, 0), client_a(client_options, 0), client_b(client_options, 0);
    pump(client_a, server_a, 0);
    pump(client_b, server_b, 0);
    SessionPeer<S> peer_a(server_a), peer_b(server_b);
    Router<4> router;
    REQUIRE(router.attach(peer_a));
    REQUIRE(router.attach(peer_b));
    CHECK(peer_a.ready());
    router.from_bus(0, frame(0x42), 1);
    REQUIRE(client_a.send_frame(frame(0x43), 1) == SendResult::queued);
    pump(client_a, server_a, 1);
    pump(client_b, server_b, 1);
    FakeBus bus;
    CHECK(router.drain_to_bus(0, bus, 2));
    CHECK(ids(bus.written) == std::vector<std::uint32_t>{0x43});
    pump(client_a, server_a, 2);
    pump(client_b, server_b, 2);
    std::vector<std::uint32_t> at_a, at_b;
    for (const Frame* f; (f = client_a.peek_bus_frame(3)) != nullptr; client_a.pop_bus_frame()) {
        at_a.push_back(f->id);
    }
    for (const Frame* f; (f = client_b.peek_bus_frame(3)) != nullptr; client_b.pop_bus_frame()) {
        at_b.push_back(f->id);
    }
    CHECK(at_a == std::vector<std::uint32_t>{0x42});
    CHECK(at_b == std::vector<std::uint32_t>{0x42, 0x43});
}
