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
