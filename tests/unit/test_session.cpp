// Two sessions back to back through an in-memory link (h11's ConnectionPair idea).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <tcpcan/encoder.hpp>
#include <tcpcan/interfaces.hpp>
#include <tcpcan/session.hpp>

using namespace tcpcan;

namespace {

using TestSession = Session<4096, 64, 64, 64>;

// Moves each side's output into the other, `chunk` bytes at a time, until quiet.
void pump(TestSession& a, TestSession& b, std::uint64_t now, std::size_t chunk = 1000) {
    for (int round = 0; round < 10000; ++round) {
        bool moved = false;
        for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
            const auto out = from->output();
            if (out.empty() || to->is_closed()) {
                continue;
            }
            const std::size_t n = std::min(chunk, out.size());
            const ReceiveResult r = to->receive(out.first(n), now);
            from->consume_output(r.consumed);
            moved = moved || r.consumed > 0;
        }
        if (!moved) {
            return;
        }
    }
    FAIL("link never went quiet");
}

std::vector<Event> events(TestSession& s) {
    std::vector<Event> all;
    Event e;
    while (s.poll_event(e)) {
        all.push_back(e);
    }
    return all;
}

bool has_event(const std::vector<Event>& list, EventType type) {
    return std::any_of(list.begin(), list.end(), [type](const Event& e) { return e.type == type; });
}

std::vector<Frame> drain_bus(TestSession& s, std::uint64_t now) {
    std::vector<Frame> frames;
    while (const Frame* f = s.peek_bus_frame(now)) {
        frames.push_back(*f);
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

std::vector<Frame> every_kind() {
    return {
        make_frame(0x123, 3, 0, 1),
        make_frame(0x1ABCDE0F, 8, frame_flag::extended, 2),
        make_frame(0x7FF, 4, frame_flag::remote),
        make_frame(0x12345678, 64, frame_flag::extended | frame_flag::fd | frame_flag::brs, 3),
        make_frame(0x100, 12, frame_flag::fd | frame_flag::esi, 4),
        make_frame(0x0, 0),
        make_frame(0x80, 8, frame_flag::error, 5),
    };
}

SessionOptions client_options(std::uint32_t max_version = 2) {
    SessionOptions o;
    o.role = Role::client;
    o.max_version = max_version;
    return o;
}
SessionOptions server_options(std::uint32_t max_version = 2) {
    SessionOptions o = client_options(max_version);
    o.role = Role::server;
    return o;
}

void exchange_every_kind(TestSession& a, TestSession& b, std::uint64_t now, bool with_timestamps) {
    std::vector<Frame> sent = every_kind();
    for (std::size_t i = 0; i < sent.size(); ++i) {
        sent[i].timestamp_us = with_timestamps ? 1'700'000'000'000'000 + i : 0;
        CHECK(a.send_frame(sent[i], now) == SendResult::queued);
    }
    pump(a, b, now, 7);
    CHECK(drain_bus(b, now) == sent);
    for (const Frame& f : sent) {
        CHECK(b.send_frame(f, now) == SendResult::queued);
    }
    pump(a, b, now, 1);
    CHECK(drain_bus(a, now) == sent);
}

}  // namespace

TEST_CASE("session v2 <-> v2: version, features, every kind of frame both ways") {
    SessionOptions co = client_options();
    co.features = feature::sequence | feature::timestamps;
    SessionOptions so = server_options();
    so.features = feature::sequence | feature::timestamps;
    TestSession client(co, 0), server(so, 0);
    pump(client, server, 0);
    CHECK(client.state() == SessionState::established);
    CHECK(server.state() == SessionState::established);
    CHECK(client.version() == 2);
    CHECK(client.agreed_features() == (feature::sequence | feature::timestamps));
    const auto ce = events(client);
    REQUIRE(ce.size() == 2);
    CHECK(ce[0].type == EventType::version_agreed);
    CHECK(ce[0].value == 2);
    CHECK(ce[1].type == EventType::features_agreed);
    exchange_every_kind(client, server, 10, true);
    CHECK(server.stats().sequence.received == 7);
    CHECK(server.stats().sequence.lost == 0);
    CHECK(client.stats().frames_written == 7);
    CHECK(server.stats().frames_to_bus == 7);
}

TEST_CASE("session: features are the intersection; timestamps dropped when one side lacks them") {
    SessionOptions co = client_options();
    co.features = feature::sequence | feature::timestamps | 0x8000'0000u;  // an unknown bit too
    SessionOptions so = server_options();
    so.features = feature::sequence;
    TestSession client(co, 0), server(so, 0);
    pump(client, server, 0);
    CHECK(client.agreed_features() == feature::sequence);
    CHECK(server.agreed_features() == feature::sequence);
    Frame f = make_frame(0x321, 2);
    f.timestamp_us = 99;
    CHECK(client.send_frame(f, 0) == SendResult::queued);
    pump(client, server, 0);
    const auto got = drain_bus(server, 0);
    REQUIRE(got.size() == 1);
    CHECK(got[0].timestamp_us == 0);  // not carried without TS
}

TEST_CASE("session v1 <-> v1: 'd' messages with the Linux struct") {
    TestSession client(client_options(1), 0), server(server_options(1), 0);
    // The client's very first bytes are the proposal of version 1.
    const auto hello = client.output();
    REQUIRE(hello.size() == 6);
    CHECK(std::vector<std::uint8_t>(hello.begin(), hello.end()) == std::vector<std::uint8_t>{'v', 4, 0, 0, 0, 1});
    pump(client, server, 0);
    CHECK(client.version() == 1);
    CHECK(server.version() == 1);
    CHECK(client.state() == SessionState::established);
    exchange_every_kind(client, server, 5, false);
}

TEST_CASE("session v2 client <-> v1 server: negotiates down") {
    TestSession client(client_options(2), 0), server(server_options(1), 0);
    pump(client, server, 0);
    CHECK(client.version() == 1);
    CHECK(server.version() == 1);
    exchange_every_kind(client, server, 5, false);
}

TEST_CASE("session v1 client <-> v2 server") {
    TestSession client(client_options(1), 0), server(server_options(2), 0);
    pump(client, server, 0);
    CHECK(client.version() == 1);
    CHECK(server.version() == 1);
    exchange_every_kind(client, server, 5, false);
}

TEST_CASE("session v2 client against the original tcpcan server that hangs up on anything but 1") {
    // The original server: reads one 'v'; echoes it when it is 1, else closes.
    auto original_server_accepts = [](std::span<const std::uint8_t> bytes) {
        return bytes.size() >= 6 && bytes[0] == 'v' && bytes[1] == 4 && bytes[2] == 0 && bytes[3] == 0 &&
               bytes[4] == 0 && bytes[5] == 1;
    };
    TestSession first(client_options(2), 0);
    CHECK_FALSE(original_server_accepts(first.output()));
    first.transport_closed(1);  // hung up
    CHECK(first.retry_with_version_1());
    const auto ev = events(first);
    REQUIRE(!ev.empty());
    CHECK(ev.back().type == EventType::closed);
    CHECK(ev.back().by_peer);

    TestSession second(client_options(1), 2);
    REQUIRE(original_server_accepts(second.output()));
    const std::uint8_t echo[] = {'v', 4, 0, 0, 0, 1};
    CHECK(second.receive(echo, 2).ok);
    CHECK(second.version() == 1);
    CHECK(second.state() == SessionState::established);
    // And the frame it then sends is the original tool's 16-byte 'd'.
    second.consume_output(6);
    CHECK(second.send_frame(make_frame(0x123, 2, 0, 0xAA), 3) == SendResult::queued);
    const auto d = second.output();
    REQUIRE(d.size() == 18);
    CHECK(d[0] == 'd');
    CHECK(d[1] == 16);
    CHECK(d[2] == 0x23);
    CHECK(d[3] == 0x01);
    CHECK(d[6] == 2);
    CHECK(d[10] == 0xAA);
    CHECK(d[11] == 0xAB);
}

TEST_CASE("session: a server never retries, and a client that agreed does not fall back") {
    TestSession server(server_options(), 0);
    server.transport_closed(1);
    CHECK_FALSE(server.retry_with_version_1());
    TestSession client(client_options(), 0), peer(server_options(), 0);
    pump(client, peer, 0);
    client.transport_closed(1);
    CHECK_FALSE(client.retry_with_version_1());
}

TEST_CASE("session: frames before agreement are dropped and counted, as tcpcan does") {
    TestSession client(client_options(), 0);
    CHECK(client.send_frame(make_frame(1, 1), 0) == SendResult::not_established);
    CHECK(client.stats().drop_not_established == 1);
}

TEST_CASE("session: protocol error names the reason and offset, and closes with reason 2") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    pump(client, server, 0);
    (void)events(server);
    const std::uint8_t garbage[] = {'f', 6, 0, 0, 0, 0x08, 0x00, 0, 'z', 0};  // id 0x800 standard
    const ReceiveResult r = server.receive(garbage, 1);
    CHECK_FALSE(r.ok);
    const auto ev = events(server);
    REQUIRE(ev.size() >= 2);
    CHECK(ev[0].type == EventType::protocol_error);
    CHECK(ev[0].error == ProtocolError::invalid_frame);
    CHECK(ev[0].offset == 6 + 6 + 2);  // past 'v' and 'h' from the client, then the payload start
    CHECK(ev[1].type == EventType::closed);
    CHECK(ev[1].reason == CloseReason::protocol_error);
    CHECK_FALSE(ev[1].by_peer);
    CHECK(server.is_closed());
    // The client learns why.
    pump(client, server, 1);
    const auto ce = events(client);
    REQUIRE(!ce.empty());
    CHECK(ce.back().type == EventType::closed);
    CHECK(ce.back().reason == CloseReason::protocol_error);
    CHECK(ce.back().by_peer);
    CHECK(client.close_text() == "frame content is invalid");
}

TEST_CASE("session: a frame before the peer's 'h' is a protocol error") {
    TestSession server(server_options(), 0);
    const std::uint8_t hello[] = {'v', 4, 0, 0, 0, 2};
    CHECK(server.receive(hello, 0).ok);
    REQUIRE(server.state() == SessionState::awaiting_features);
    const std::uint8_t frame[] = {'f', 7, 0, 0, 0, 1, 0x23, 1, 0x42};
    CHECK_FALSE(server.receive(frame, 1).ok);
    CHECK(server.bus_queue_size() == 0);
    CHECK(server.stats().frames_from_peer == 0);
    const auto ev = events(server);
    REQUIRE(ev.size() >= 2);
    CHECK(ev[1].type == EventType::protocol_error);
    CHECK(ev[1].error == ProtocolError::frame_before_features);
    CHECK(ev[1].offset == 6);
}

TEST_CASE("session: a ping flood never crowds out the close message, and a due ping never stalls the clock") {
    SessionOptions so = server_options();
    so.heartbeat_interval_us = 1000;
    TestSession client(client_options(), 0), server(so, 0);
    pump(client, server, 0);
    // The client pings without ever reading: the server's output fills with pongs and frames.
    std::vector<std::uint8_t> pings;
    for (std::uint32_t i = 0; i < 2000; ++i) {
        pings.insert(pings.end(), {'p', 4, 0, 0, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)});
    }
    CHECK(server.receive(pings, 1).ok);
    while (server.send_frame(make_frame(1, 8), 1) == SendResult::queued) {
    }
    CHECK(server.stats().pongs_skipped > 0);
    // A heartbeat falls due with no room: it is skipped and the deadline moves on.
    server.tick(5000);
    CHECK(server.stats().pings_skipped == 1);
    CHECK(server.next_deadline() > 5000);
    // The close still fits, whole.
    const std::size_t before = server.output().size();
    server.close(CloseReason::shutdown, "bye", 6000);
    CHECK(server.output().size() == before + 2 + 1 + 3);
}

TEST_CASE("session: before the peer's 'h' even optional messages are refused; oversized subscriptions change nothing") {
    TestSession server(server_options(), 0);
    const std::uint8_t hello[] = {'v', 4, 0, 0, 0, 2, 'X', 0};
    CHECK_FALSE(server.receive(hello, 0).ok);
    const auto ev = events(server);
    REQUIRE(ev.size() >= 2);
    CHECK(ev[1].error == ProtocolError::message_before_features);

    TestSession client(client_options(), 0);
    FilterSet<65> many;
    for (std::uint32_t id = 0; id < 65; ++id) {
        REQUIRE(many.add(FilterEntry::exact_id(id)));
    }
    CHECK_FALSE(client.set_local_subscription(many));
    FilterSet<1> one;
    REQUIRE(one.add(FilterEntry::exact_id(0x42)));
    REQUIRE(client.set_local_subscription(one));
    CHECK_FALSE(client.set_local_subscription(many));  // refused whole: the one entry stays
    TestSession server2(server_options(), 0);
    pump(client, server2, 0);
    REQUIRE(server2.peer_subscription().size() == 1);
    CHECK(server2.peer_subscription().entries()[0] == FilterEntry::exact_id(0x42));
}

TEST_CASE("session: garbage before agreement is refused") {
    TestSession server(server_options(), 0);
    const std::uint8_t http[] = {'G', 'E', 'T', ' ', '/'};
    CHECK_FALSE(server.receive(http, 0).ok);
    const auto ev = events(server);
    REQUIRE(!ev.empty());
    CHECK(ev[0].error == ProtocolError::not_allowed_before_agreement);
    CHECK(ev[0].offset == 0);
    CHECK(server.output().empty());  // no 'c' before agreement: only 'v' may be sent
}

TEST_CASE("session: orderly close carries reason and text") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    pump(client, server, 0);
    (void)events(client);
    server.close(CloseReason::shutdown, "bye", 5);
    pump(client, server, 5);
    const auto ev = events(client);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].reason == CloseReason::shutdown);
    CHECK(ev[0].by_peer);
    CHECK(client.close_text() == "bye");
    CHECK(client.send_frame(make_frame(1, 1), 6) == SendResult::closed);
}

TEST_CASE("session: heartbeat measures RTT; silence declares the peer dead") {
    SessionOptions co = client_options();
    co.heartbeat_interval_us = 1'000'000;
    co.dead_after_us = 3'000'000;
    TestSession client(co, 0), server(server_options(), 0);
    pump(client, server, 0);
    (void)events(client);
    CHECK(client.next_deadline() == 1'000'000);
    client.tick(1'000'000);
    CHECK(client.stats().pings_sent == 1);
    // The ping reaches the server at once, the pong comes back 250 µs later.
    const auto ping = client.output();
    CHECK(server.receive(ping, 1'000'000).ok);
    client.consume_output(ping.size());
    CHECK(client.receive(server.output(), 1'000'250).ok);
    server.consume_output(server.output().size());
    const auto ev = events(client);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].type == EventType::rtt_measured);
    CHECK(ev[0].value == 250);
    CHECK(client.stats().rtt_last_us == 250);
    // Now the server goes silent (stopped): pings go unanswered.
    client.tick(2'000'250);
    client.tick(3'000'000);
    CHECK_FALSE(client.is_closed());
    client.tick(4'000'250);
    CHECK(client.is_closed());
    const auto dead = events(client);
    CHECK(has_event(dead, EventType::peer_dead));
    CHECK(dead.back().reason == CloseReason::peer_dead);
}

TEST_CASE("session: negotiation times out") {
    SessionOptions so = server_options();
    so.negotiation_timeout_us = 5'000'000;
    TestSession server(so, 100);
    server.tick(5'000'099);
    CHECK_FALSE(server.is_closed());
    CHECK(server.next_deadline() == 5'000'100);
    server.tick(5'000'100);
    CHECK(server.is_closed());
    const auto ev = events(server);
    REQUIRE(!ev.empty());
    CHECK(ev.back().reason == CloseReason::negotiation_timeout);
}

TEST_CASE("session: a full output drops frames, counts them, and the peer sees the gap") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    pump(client, server, 0);
    std::size_t queued = 0, dropped = 0;
    for (int i = 0; i < 200; ++i) {
        const SendResult r = client.send_frame(make_frame(0x10, 8, 0, static_cast<std::uint8_t>(i)), 1);
        (r == SendResult::queued ? queued : dropped)++;
        CHECK((r == SendResult::queued || r == SendResult::output_full));
    }
    CHECK(dropped > 0);
    CHECK(client.stats().drop_output_full == dropped);
    pump(client, server, 1);
    // After room frees up, one more frame shows the receiver the gap.
    CHECK(client.send_frame(make_frame(0x10, 1), 2) == SendResult::queued);
    pump(client, server, 2);
    CHECK(server.stats().sequence.lost == dropped);
    CHECK(server.stats().sequence.gaps == 1);
    CHECK(server.stats().frames_from_peer == queued + 1);
    // The server's bus queue (64) overflowed in turn: counted there, not lost silently.
    CHECK(drain_bus(server, 2).size() + server.stats().drop_bus_queue_full == queued + 1);
    const auto ev = events(server);
    CHECK(has_event(ev, EventType::sequence_gap));
}

TEST_CASE("session: after a partial write the free room is usable again (no false output_full)") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    pump(client, server, 0);
    while (client.send_frame(make_frame(0x10, 8), 1) == SendResult::queued) {
    }
    const std::uint64_t full_drops = client.stats().drop_output_full;
    // The transport takes all but the last 20 bytes.
    client.consume_output(client.output().size() - 20);
    CHECK(client.output_room() > 2000);
    for (int i = 0; i < 50; ++i) {
        CHECK(client.send_frame(make_frame(0x10, 8), 2) == SendResult::queued);
    }
    CHECK(client.stats().drop_output_full == full_drops);
}

TEST_CASE("session: bounded bus queue counts what it cannot hold; max age drops stale frames") {
    SessionOptions so = server_options();
    so.max_frame_age_us = 1000;
    TestSession client(client_options(), 0), server(so, 0);
    pump(client, server, 0);
    int sent = 0;
    for (int i = 0; i < 40; ++i) {
        sent += client.send_frame(make_frame(0x20, 1), 0) == SendResult::queued;
    }
    pump(client, server, 0);
    for (int i = 0; i < 40; ++i) {
        sent += client.send_frame(make_frame(0x20, 1), 0) == SendResult::queued;
    }
    pump(client, server, 0);
    CHECK(sent == 80);
    CHECK(server.bus_queue_size() == 64);
    CHECK(server.stats().drop_bus_queue_full == 16);
    // Ten frames go out in time; the rest wait too long.
    for (int i = 0; i < 10; ++i) {
        REQUIRE(server.peek_bus_frame(1000) != nullptr);
        server.pop_bus_frame();
    }
    CHECK(server.peek_bus_frame(1001) == nullptr);
    CHECK(server.stats().drop_expired == 54);
    CHECK(server.stats().frames_to_bus + server.stats().dropped_towards_bus() == 80);
}

TEST_CASE("session: a subscription cuts traffic at the source") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    FilterSet<4> wanted;
    REQUIRE(wanted.add(FilterEntry::id_range(0x100, 0x1FF)));
    REQUIRE(wanted.add(FilterEntry::id_mask(0x150, 0x7FF, false, true)));  // but not 0x150
    REQUIRE(client.set_local_subscription(wanted));
    pump(client, server, 0);
    CHECK(server.peer_subscription().size() == 2);
    for (std::uint32_t id : {0x050u, 0x100u, 0x150u, 0x1FFu, 0x200u}) {
        (void)server.send_frame(make_frame(id, 1), 1);
    }
    CHECK(server.stats().filtered_out == 3);
    pump(client, server, 1);
    const auto got = drain_bus(client, 1);
    REQUIRE(got.size() == 2);
    CHECK(got[0].id == 0x100);
    CHECK(got[1].id == 0x1FF);
    // Filtered frames are not numbered: no gap at the client.
    CHECK(client.stats().sequence.lost == 0);
}

TEST_CASE("session: a subscription larger than one message is sent as replace + appends") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    FilterSet<64> wanted;
    for (std::uint32_t id = 0; id < 60; ++id) {
        REQUIRE(wanted.add(FilterEntry::exact_id(id)));
    }
    REQUIRE(client.set_local_subscription(wanted));
    pump(client, server, 0);
    CHECK(server.peer_subscription().size() == 60);
}

TEST_CASE("session: a subscription waits for room and then goes out whole") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    pump(client, server, 0);
    while (client.send_frame(make_frame(0x10, 8), 1) == SendResult::queued) {
    }
    // Fill the control reserve with pongs too, so not even one 's' would fit.
    std::vector<std::uint8_t> pings;
    for (int i = 0; i < 200; ++i) {
        pings.insert(pings.end(), {'p', 4, 0, 0, 0, static_cast<std::uint8_t>(i)});
    }
    CHECK(client.receive(pings, 1).ok);
    FilterSet<64> wanted;
    for (std::uint32_t id = 0; id < 60; ++id) {
        REQUIRE(wanted.add(FilterEntry::exact_id(0x100 + id)));
    }
    REQUIRE(client.set_local_subscription(wanted));
    pump(client, server, 2);
    CHECK(server.peer_subscription().size() == 0);  // deferred, not sent in pieces
    client.tick(2);  // the output has drained: now it goes
    pump(client, server, 2);
    CHECK(server.peer_subscription().size() == 60);
    (void)server.send_frame(make_frame(0x99, 1), 3);
    (void)server.send_frame(make_frame(0x120, 1), 3);
    pump(client, server, 3);
    (void)drain_bus(client, 3);
    CHECK(server.stats().filtered_out == 1);
}

TEST_CASE("session: version 1 cannot subscribe remotely, so the subscription applies on receipt") {
    TestSession client(client_options(1), 0), server(server_options(1), 0);
    FilterSet<2> wanted;
    REQUIRE(wanted.add(FilterEntry::exact_id(0x42)));
    REQUIRE(client.set_local_subscription(wanted));
    pump(client, server, 0);
    (void)server.send_frame(make_frame(0x41, 1), 1);
    (void)server.send_frame(make_frame(0x42, 1), 1);
    pump(client, server, 1);
    const auto got = drain_bus(client, 1);
    REQUIRE(got.size() == 1);
    CHECK(got[0].id == 0x42);
    CHECK(client.stats().filtered_out == 1);
}

TEST_CASE("session: read-only refuses peer frames and counts them") {
    SessionOptions so = server_options();
    so.accept_frames = false;
    TestSession client(client_options(), 0), server(so, 0);
    pump(client, server, 0);
    CHECK(client.send_frame(make_frame(1, 1), 0) == SendResult::queued);
    pump(client, server, 0);
    CHECK(server.bus_queue_size() == 0);
    CHECK(server.stats().drop_refused == 1);
}

TEST_CASE("session: unknown capital-letter messages are skipped, lowercase ones are errors") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    pump(client, server, 0);
    const std::uint8_t optional[] = {'X', 2, 1, 2};
    CHECK(server.receive(optional, 1).ok);
    CHECK(server.stats().messages_skipped == 1);
    const std::uint8_t unknown[] = {'x', 0};
    CHECK_FALSE(server.receive(unknown, 1).ok);
}

TEST_CASE("session: unsent frames are counted when the transport ends") {
    TestSession client(client_options(), 0), server(server_options(), 0);
    pump(client, server, 0);
    for (int i = 0; i < 5; ++i) {
        CHECK(client.send_frame(make_frame(1, 8), 0) == SendResult::queued);
    }
    client.consume_output(frame_message_size(make_frame(1, 8), true, false) * 2 + 3);  // 2 whole, 1 partial
    CHECK(client.stats().frames_written == 2);
    client.transport_closed(1);
    CHECK(client.stats().drop_unsent_at_close == 3);
}

namespace {
struct MemoryCan final : CanPort {
    std::vector<Frame> rx, tx;
    std::size_t capacity = 1000;
    bool read(Frame& f) override {
        if (rx.empty()) {
            return false;
        }
        f = rx.front();
        rx.erase(rx.begin());
        return true;
    }
    bool write(const Frame& f) override {
        if (tx.size() >= capacity) {
            return false;
        }
        tx.push_back(f);
        return true;
    }
};
struct MemoryStream final : ByteStream {
    std::vector<std::uint8_t>* in;
    std::vector<std::uint8_t>* out;
    StreamRead read(std::span<std::uint8_t> buffer) override {
        const std::size_t n = std::min(buffer.size(), in->size());
        std::copy_n(in->begin(), n, buffer.begin());
        in->erase(in->begin(), in->begin() + static_cast<std::ptrdiff_t>(n));
        return {n, false};
    }
    std::size_t write(std::span<const std::uint8_t> bytes) override {
        out->insert(out->end(), bytes.begin(), bytes.end());
        return bytes.size();
    }
};
}  // namespace

TEST_CASE("bridge_step moves frames between two CAN ports through two sessions") {
    std::vector<std::uint8_t> a_to_b, b_to_a;
    MemoryCan can_a, can_b;
    MemoryStream stream_a, stream_b;
    stream_a.in = &b_to_a;
    stream_a.out = &a_to_b;
    stream_b.in = &a_to_b;
    stream_b.out = &b_to_a;
    TestSession a(client_options(), 0), b(server_options(), 0);
    FilterSet<1> everything;
    FilterSet<1> only_0x7;
    REQUIRE(only_0x7.add(FilterEntry::exact_id(7)));
    for (std::uint64_t now = 0; now < 10; ++now) {
        (void)bridge_step(a, can_a, stream_a, everything, now);
        (void)bridge_step(b, can_b, stream_b, only_0x7, now);
    }
    REQUIRE(a.state() == SessionState::established);
    for (std::uint32_t id = 0; id < 100; ++id) {
        can_a.rx.push_back(make_frame(id, 1, 0, static_cast<std::uint8_t>(id)));
        can_b.rx.push_back(make_frame(id, 2));
    }
    for (std::uint64_t now = 10; now < 40; ++now) {
        (void)bridge_step(a, can_a, stream_a, everything, now);
        (void)bridge_step(b, can_b, stream_b, only_0x7, now);
    }
    REQUIRE(can_b.tx.size() == 100);
    for (std::uint32_t id = 0; id < 100; ++id) {
        CHECK(can_b.tx[id] == make_frame(id, 1, 0, static_cast<std::uint8_t>(id)));
    }
    REQUIRE(can_a.tx.size() == 1);  // b forwards only id 7
    CHECK(can_a.tx[0].id == 7);
}
