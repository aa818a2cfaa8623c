// feature::resume (PROTOCOL.md 4.6): acknowledgements, the replay buffer, suspend and
// resume, unknown tokens, replay overflow and expiry — two sessions through an in-memory
// link that the tests cut where they like.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

#include <tcpcan/session.hpp>

using namespace tcpcan;

namespace {

constexpr std::size_t replay_capacity = 64;
using RSession = Session<4096, 256, 64, 64, FullProfile, replay_capacity>;
constexpr std::uint64_t token_a = 0x0123456789ABCDEFull;

SessionOptions options(Role role) {
    SessionOptions o;
    o.role = role;
    o.features = feature::sequence | feature::resume;
    return o;
}

// Moves each side's output into the other until quiet; `limit` bytes at most each way
// (then the rest stays in the sender's output, as if the transport died with it).
void pump(RSession& a, RSession& b, std::uint64_t now, std::size_t limit = ~std::size_t{0}) {
    std::size_t moved_ab = 0, moved_ba = 0;
    for (int round = 0; round < 10000; ++round) {
        a.tick(now);  // acknowledgements due go out with this round
        b.tick(now);
        bool moved = false;
        for (auto [from, to, count] : {std::tuple{&a, &b, &moved_ab}, std::tuple{&b, &a, &moved_ba}}) {
            const auto out = from->output();
            if (out.empty() || to->is_closed() || to->is_suspended() || *count >= limit) {
                continue;
            }
            const std::size_t n = std::min({std::size_t{700}, out.size(), limit - *count});
            const ReceiveResult r = to->receive(out.first(n), now);
            from->consume_output(r.consumed);
            *count += r.consumed;
            moved = moved || r.consumed > 0;
        }
        if (!moved) {
            return;
        }
    }
    FAIL("link never went quiet");
}

Frame frame_n(std::uint32_t n) {
    Frame f;
    f.id = n & 0x7FF;
    f.len = 4;
    f.data[0] = static_cast<std::uint8_t>(n >> 24);
    f.data[1] = static_cast<std::uint8_t>(n >> 16);
    f.data[2] = static_cast<std::uint8_t>(n >> 8);
    f.data[3] = static_cast<std::uint8_t>(n);
    return f;
}
std::uint32_t number_of(const Frame& f) {
    return std::uint32_t{f.data[0]} << 24 | std::uint32_t{f.data[1]} << 16 | std::uint32_t{f.data[2]} << 8 | f.data[3];
}

void drain_bus(RSession& s, std::vector<std::uint32_t>& got, std::uint64_t now) {
    while (const Frame* f = s.peek_bus_frame(now)) {
        got.push_back(number_of(*f));
        s.pop_bus_frame();
    }
}

bool has_event(RSession& s, EventType type, Event* found = nullptr) {
    Event e;
    bool seen = false;
    while (s.poll_event(e)) {
        if (e.type == type && !seen) {
            seen = true;
            if (found != nullptr) {
                *found = e;
            }
        }
    }
    return seen;
}

struct Pair {
    RSession client{options(Role::client), 0};
    RSession server{options(Role::server), 0};
    Pair() {
        server.set_resume_options({.token = token_a, .ack_every_frames = 8, .ack_delay_us = 1000});
        client.set_resume_options({.token = 0, .ack_every_frames = 8, .ack_delay_us = 1000});
        pump(client, server, 0);
    }
};

// A server session for a new connection, as a port makes one per accepted socket.
RSession fresh_server(std::uint64_t token, std::uint64_t now) {
    RSession s(options(Role::server), now);
    s.set_resume_options({.token = token, .ack_every_frames = 8, .ack_delay_us = 1000});
    return s;
}

}  // namespace

TEST_CASE("resume: agreed by default between two resumable sessions; the client learns its token") {
    Pair p;
    CHECK(p.client.agreed_features() == (feature::sequence | feature::resume));
    CHECK(p.server.resume_phase() == ResumePhase::running);
    CHECK(p.client.resume_phase() == ResumePhase::running);
    CHECK(p.client.resume_token() == token_a);
    CHECK(p.server.resume_token() == token_a);
}

TEST_CASE("resume: not offered without a replay buffer, without SEQ, or by a server without a token") {
    SUBCASE("no replay buffer") {
        Session<4096, 64, 64, 64> plain(options(Role::server), 0);
        RSession client(options(Role::client), 0);
        for (int i = 0; i < 10; ++i) {
            const auto out = client.output();
            client.consume_output(plain.receive(out, 0).consumed);
            const auto back = plain.output();
            plain.consume_output(client.receive(back, 0).consumed);
        }
        CHECK(client.agreed_features() == feature::sequence);
        CHECK(client.resume_phase() == ResumePhase::off);
    }
    SUBCASE("server without a token") {
        RSession client(options(Role::client), 0);
        RSession server(options(Role::server), 0);
        pump(client, server, 0);
        CHECK(client.agreed_features() == feature::sequence);
        Frame f = frame_n(1);
        CHECK(client.send_frame(f, 0) == SendResult::queued);
        pump(client, server, 0);
        std::vector<std::uint32_t> got;
        drain_bus(server, got, 0);
        CHECK(got == std::vector<std::uint32_t>{1});
    }
    SUBCASE("no SEQ") {
        SessionOptions o = options(Role::client);
        o.features = feature::resume;
        RSession client(o, 0);
        RSession server = fresh_server(token_a, 0);
        pump(client, server, 0);
        CHECK(client.agreed_features() == 0);
    }
}

TEST_CASE("resume: acknowledgements only for frames handed to the bus, and not one per frame") {
    Pair p;
    for (std::uint32_t i = 0; i < 40; ++i) {
        REQUIRE(p.client.send_frame(frame_n(i), 0) == SendResult::queued);
    }
    pump(p.client, p.server, 0);
    // Received, not yet on the bus: nothing acknowledged, all 40 kept.
    CHECK(p.client.replay_size() == 40);
    CHECK(p.server.stats().acks_sent == 0);
    std::vector<std::uint32_t> got;
    drain_bus(p.server, got, 0);
    REQUIRE(got.size() == 40);
    pump(p.client, p.server, 0);
    CHECK(p.client.replay_size() == 0);
    CHECK(p.server.stats().acks_sent >= 1);
    CHECK(p.server.stats().acks_sent <= 2);  // one 'k' covers many frames
    // A single frame is acknowledged after ack_delay_us, not at once.
    REQUIRE(p.client.send_frame(frame_n(99), 10) == SendResult::queued);
    pump(p.client, p.server, 10);
    drain_bus(p.server, got, 10);
    pump(p.client, p.server, 20);
    const auto acks = p.server.stats().acks_sent;
    CHECK(p.client.replay_size() == 1);
    CHECK(p.server.next_deadline() <= 20 + 1000);
    pump(p.client, p.server, 5000);
    CHECK(p.server.stats().acks_sent == acks + 1);
    CHECK(p.client.replay_size() == 0);
}

TEST_CASE("resume: an acknowledgement due by time is not sent with a frame just received; one due by count is") {
    Pair p;  // ack_every_frames 8, ack_delay_us 1000, ack_hold_us 100 (the default)
    std::vector<std::uint32_t> got;
    auto deliver = [&](std::uint32_t first, std::uint32_t count, std::uint64_t now) {
        for (std::uint32_t i = first; i < first + count; ++i) {
            REQUIRE(p.client.send_frame(frame_n(i), now) == SendResult::queued);
        }
        pump(p.client, p.server, now);
        drain_bus(p.server, got, now);
        p.server.tick(now);
    };
    SUBCASE("the delay rule waits for a pass without frames") {
        deliver(0, 1, 5000);  // 5 ms after the last 'k' (none yet): due by delay, but a frame just came
        const auto acks = p.server.stats().acks_sent;
        CHECK(p.server.output().empty());
        CHECK(p.server.next_deadline() == 5000 + 100);
        p.server.tick(5099);
        CHECK(p.server.stats().acks_sent == acks);
        p.server.tick(5100);
        CHECK(p.server.stats().acks_sent == acks + 1);
    }
    SUBCASE("the count rule does not wait (at high rates every pass has frames)") {
        deliver(0, 7, 10);
        const auto acks = p.server.stats().acks_sent;
        CHECK(p.server.next_deadline() == 1000);  // the delay rule (from agreement at 0), not the hold
        deliver(7, 1, 20);  // 8 waiting = ack_every_frames
        CHECK(p.server.stats().acks_sent == acks + 1);
        pump(p.client, p.server, 20);
        CHECK(p.client.replay_size() == 0);
    }
    CHECK(got.size() >= 1);
}

TEST_CASE("resume: a cut link loses nothing: the server parks, the client resumes, every frame once and in order") {
    Pair p;
    std::vector<std::uint32_t> at_server, at_client;
    std::uint32_t next_up = 0, next_down = 0;
    std::uint64_t now = 0;
    for (int cut = 0; cut < 6; ++cut) {
        for (int i = 0; i < 20; ++i) {
            REQUIRE(p.client.send_frame(frame_n(next_up++), now) == SendResult::queued);
            REQUIRE(p.server.send_frame(frame_n(next_down++), now) == SendResult::queued);
        }
        // Part of the bytes cross, then the transport dies with the rest in flight; the
        // receiving sides have handed only some frames to their bus.
        pump(p.client, p.server, now, 150 + static_cast<std::size_t>(cut) * 37);
        drain_bus(p.server, at_server, now);
        now += 5000;
        p.client.transport_closed(now);
        p.server.transport_closed(now);
        REQUIRE(p.client.is_suspended());
        REQUIRE(p.server.is_suspended());
        // Frames keep coming from both buses while the link is down.
        for (int i = 0; i < 5; ++i) {
            REQUIRE(p.client.send_frame(frame_n(next_up++), now) == SendResult::queued);
            REQUIRE(p.server.send_frame(frame_n(next_down++), now) == SendResult::queued);
        }
        drain_bus(p.client, at_client, now);  // the client's bus still gets what arrived
        // A new connection: the client presents its token; the port finds the parked session.
        p.client.reconnect(now);
        RSession fresh = fresh_server(0x5555, now);
        pump(p.client, fresh, now);
        REQUIRE(fresh.requested_resume_token() == token_a);
        REQUIRE(p.server.adopt(fresh, now));
        CHECK(fresh.is_closed());
        pump(p.client, p.server, now);
        CHECK(p.client.resume_phase() == ResumePhase::running);
        CHECK(p.server.resume_phase() == ResumePhase::running);
    }
    for (int round = 0; round < 10; ++round) {
        now += 5000;
        drain_bus(p.server, at_server, now);
        drain_bus(p.client, at_client, now);
        pump(p.client, p.server, now);
    }
    std::vector<std::uint32_t> expected_up(next_up), expected_down(next_down);
    for (std::uint32_t i = 0; i < next_up; ++i) {
        expected_up[i] = i;
    }
    for (std::uint32_t i = 0; i < next_down; ++i) {
        expected_down[i] = i;
    }
    CHECK(at_server == expected_up);
    CHECK(at_client == expected_down);
    CHECK(p.client.stats().resumed == 6);
    CHECK(p.server.stats().resumed == 6);
    CHECK(p.client.stats().sequence.lost == 0);
    CHECK(p.server.stats().sequence.lost == 0);
    CHECK(p.client.stats().undeliverable == 0);
    CHECK(p.server.stats().frames_replayed + p.client.stats().frames_replayed > 0);
    CHECK(p.client.replay_size() == 0);
    CHECK(p.server.replay_size() == 0);
    CHECK(p.client.stats().dropped_towards_peer() == 0);
    CHECK(p.server.stats().dropped_towards_bus() == p.server.stats().drop_duplicate);
}

TEST_CASE("resume: unknown token: a new session; the client counts what it cannot know was delivered") {
    Pair p;
    for (std::uint32_t i = 0; i < 10; ++i) {
        REQUIRE(p.client.send_frame(frame_n(i), 0) == SendResult::queued);
    }
    pump(p.client, p.server, 0);  // sent, received, never on the server's bus: unacknowledged
    p.client.transport_closed(1);
    REQUIRE(p.client.is_suspended());
    for (std::uint32_t i = 10; i < 13; ++i) {
        REQUIRE(p.client.send_frame(frame_n(i), 1) == SendResult::queued);  // never sent
    }
    // The server restarted: nobody has the token.
    p.client.reconnect(2);
    RSession restarted = fresh_server(0x7777, 2);
    pump(p.client, restarted, 2);
    REQUIRE(restarted.requested_resume_token() == token_a);
    restarted.refuse_resume(2);
    CHECK(has_event(restarted, EventType::resume_refused));
    pump(p.client, restarted, 2);
    Event e;
    REQUIRE(has_event(p.client, EventType::resume_failed, &e));
    CHECK(e.value == 10);
    CHECK(p.client.stats().undeliverable == 10);
    CHECK(p.client.resume_token() == 0x7777);
    // Frames never sent start the new session, renumbered from 0, so nothing looks lost.
    std::vector<std::uint32_t> got;
    drain_bus(restarted, got, 3);
    CHECK(got == std::vector<std::uint32_t>{10, 11, 12});
    CHECK(restarted.stats().sequence.lost == 0);
}

TEST_CASE("resume: the window ends: the parked session counts what the client never acknowledged") {
    Pair p;
    for (std::uint32_t i = 0; i < 7; ++i) {
        REQUIRE(p.server.send_frame(frame_n(i), 0) == SendResult::queued);
    }
    pump(p.client, p.server, 0);
    p.server.transport_closed(1);
    REQUIRE(p.server.is_suspended());
    REQUIRE(p.server.send_frame(frame_n(7), 2) == SendResult::queued);
    CHECK(p.server.abandon(3) == 8);
    CHECK(p.server.stats().undeliverable == 8);
    CHECK(p.server.is_closed());
    CHECK(p.server.send_frame(frame_n(8), 4) == SendResult::closed);
}

TEST_CASE("resume: a full replay buffer drops the newest, counted; the peer's gap count agrees") {
    Pair p;
    p.server.transport_closed(1);
    p.client.transport_closed(1);
    const std::uint32_t total = replay_capacity + 9;
    for (std::uint32_t i = 0; i < total; ++i) {
        (void)p.server.send_frame(frame_n(i), 2);
    }
    CHECK(p.server.stats().drop_replay_full == 9);
    CHECK_FALSE(p.server.has_room_for(1, 100));
    p.client.reconnect(3);
    RSession fresh = fresh_server(1, 3);
    pump(p.client, fresh, 3);
    REQUIRE(p.server.adopt(fresh, 3));
    pump(p.client, p.server, 3);
    std::vector<std::uint32_t> got;
    drain_bus(p.client, got, 3);
    CHECK(got.size() == replay_capacity);
    pump(p.client, p.server, 4);  // the client acknowledges what reached its bus
    CHECK(p.server.replay_size() == 0);
    // The next frame after the dropped ones shows the gap on the receiving side.
    REQUIRE(p.server.send_frame(frame_n(1000), 4) == SendResult::queued);
    pump(p.client, p.server, 4);
    drain_bus(p.client, got, 4);
    CHECK(p.client.stats().sequence.lost == p.server.stats().drop_replay_full);
    CHECK(got.back() == 1000);
}

TEST_CASE("resume: frames older than max age are not replayed; counted as expired") {
    SessionOptions so = options(Role::server);
    so.max_frame_age_us = 1000;
    RSession client(options(Role::client), 0);
    RSession server(so, 0);
    server.set_resume_options({.token = token_a});
    pump(client, server, 0);
    server.transport_closed(10);
    client.transport_closed(10);
    for (std::uint32_t i = 0; i < 5; ++i) {
        REQUIRE(server.send_frame(frame_n(i), 100) == SendResult::queued);
    }
    REQUIRE(server.send_frame(frame_n(5), 1500) == SendResult::queued);
    client.reconnect(1800);
    RSession fresh = fresh_server(1, 1800);
    pump(client, fresh, 1800);
    REQUIRE(server.adopt(fresh, 1800));
    pump(client, server, 1800);
    std::vector<std::uint32_t> got;
    drain_bus(client, got, 1800);
    CHECK(got == std::vector<std::uint32_t>{5});
    CHECK(server.stats().drop_replay_expired == 5);
    CHECK(client.stats().sequence.lost == 5);
    // Expired frames are never counted twice, even after another resume.
    for (int i = 0; i < 3; ++i) {
        client.tick(1800);
        pump(client, server, 1800 + 30'000 * (i + 1));  // past the client's default ack delay
    }
    CHECK(server.stats().drop_replay_expired == 5);
    CHECK(server.replay_size() == 0);
}

TEST_CASE("resume: a silent peer is declared dead but the session is kept; a 'c' peer_dead suspends the other side") {
    SessionOptions so = options(Role::server);
    so.dead_after_us = 1000;
    RSession client(options(Role::client), 0);
    RSession server(so, 0);
    server.set_resume_options({.token = token_a});
    pump(client, server, 0);
    REQUIRE(client.send_frame(frame_n(1), 10) == SendResult::queued);
    server.tick(2000);  // the client was stopped; its frame is still on the way
    CHECK(server.is_suspended());
    CHECK_FALSE(server.is_closed());
    // The 'c' reaches the client once it runs again: it suspends too (and will resume).
    const auto out = server.output();
    server.consume_output(client.receive(out, 2100).consumed);
    CHECK(client.is_suspended());
}

TEST_CASE("resume: protocol errors: acks of frames never sent, resume messages out of place or unagreed") {
    SUBCASE("ack beyond what was sent") {
        Pair p;
        const std::uint8_t k[] = {'k', 4, 0, 0, 0, 5};
        CHECK_FALSE(p.server.receive(k, 1).ok);
        Event e;
        REQUIRE(has_event(p.server, EventType::protocol_error, &e));
        CHECK(e.error == ProtocolError::bad_ack);
    }
    SUBCASE("an ack behind an earlier one is ignored") {
        Pair p;
        for (std::uint32_t i = 0; i < 10; ++i) {
            REQUIRE(p.client.send_frame(frame_n(i), 0) == SendResult::queued);
        }
        const std::uint8_t k5[] = {'k', 4, 0, 0, 0, 5};
        const std::uint8_t k2[] = {'k', 4, 0, 0, 0, 2};
        CHECK(p.client.receive(k5, 1).ok);
        CHECK(p.client.replay_size() == 5);
        CHECK(p.client.receive(k2, 1).ok);
        CHECK(p.client.replay_size() == 5);
    }
    SUBCASE("'r' sent to a client") {
        Pair p;
        const std::uint8_t r[] = {'r', 12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
        CHECK_FALSE(p.client.receive(r, 1).ok);
        Event e;
        REQUIRE(has_event(p.client, EventType::protocol_error, &e));
        CHECK(e.error == ProtocolError::unexpected_resume_message);
    }
    SUBCASE("'k' without the feature") {
        RSession client(options(Role::client), 0);
        Session<4096, 64, 64, 64> plain(options(Role::server), 0);
        for (int i = 0; i < 10; ++i) {
            client.consume_output(plain.receive(client.output(), 0).consumed);
            plain.consume_output(client.receive(plain.output(), 0).consumed);
        }
        const std::uint8_t k[] = {'k', 4, 0, 0, 0, 0};
        CHECK_FALSE(client.receive(k, 1).ok);
        Event e;
        REQUIRE(has_event(client, EventType::protocol_error, &e));
        CHECK(e.error == ProtocolError::resume_not_agreed);
    }
    SUBCASE("a second 'r'") {
        RSession client(options(Role::client), 0);
        RSession server = fresh_server(token_a, 0);
        pump(client, server, 0);
        const std::uint8_t r[] = {'r', 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        CHECK_FALSE(server.receive(r, 1).ok);
    }
}

TEST_CASE("resume: a session moved into a larger one (as a port grows it) keeps its resume state") {
    Session<2048, 16, 64, 16, FullProfile, 16> small(options(Role::server), 0);
    small.set_resume_options({.token = token_a});
    RSession client(options(Role::client), 0);
    for (int i = 0; i < 10; ++i) {
        client.consume_output(small.receive(client.output(), 0).consumed);
        small.consume_output(client.receive(small.output(), 0).consumed);
    }
    REQUIRE(small.resume_phase() == ResumePhase::running);
    RSession big(small);
    CHECK(big.resume_phase() == ResumePhase::running);
    CHECK(big.resume_token() == token_a);
}

TEST_CASE("resume: a reconnection nobody answers times out but keeps the session; a server waiting for 'r' gives up") {
    Pair p;
    REQUIRE(p.client.send_frame(frame_n(1), 10) == SendResult::queued);
    p.client.transport_closed(20);
    p.client.reconnect(30);
    // The server's kernel accepted, but the server is stopped: nothing comes back.
    p.client.tick(30 + 5'000'000);
    CHECK(p.client.is_suspended());
    CHECK(p.client.replay_size() == 1);
    p.client.transport_closed(30 + 5'000'000);
    CHECK(p.client.is_suspended());
    // A new server session whose client agrees but never says 'r' is closed in time.
    RSession server = fresh_server(token_a, 0);
    const std::uint8_t version_and_features[] = {'v', 4, 0, 0, 0, 2, 'h', 4, 0, 0, 0, 5};
    REQUIRE(server.receive(version_and_features, 0).ok);
    REQUIRE(server.resume_phase() == ResumePhase::awaiting_request);
    CHECK(server.next_deadline() == 5'000'000);
    server.tick(5'000'000);
    CHECK(server.is_closed());
}

TEST_CASE("resume: a gateway-profile client with a replay buffer resumes against a full server") {
    using GatewayResume = Session<1024, 16, 28, 4, GatewayProfile, 16>;
    SessionOptions co = options(Role::client);
    GatewayResume client(co, 0);
    RSession server = fresh_server(token_a, 0);
    auto pump_gw = [&](std::uint64_t now) {
        for (int i = 0; i < 50; ++i) {
            client.tick(now);
            server.tick(now);
            const auto a = client.output();
            const std::size_t ca = server.is_suspended() ? 0 : server.receive(a, now).consumed;
            client.consume_output(ca);
            const auto b = server.output();
            const std::size_t cb = client.is_suspended() ? 0 : client.receive(b, now).consumed;
            server.consume_output(cb);
            if (ca == 0 && cb == 0) {
                return;
            }
        }
    };
    pump_gw(0);
    REQUIRE(client.resume_phase() == ResumePhase::running);
    for (std::uint32_t i = 0; i < 5; ++i) {
        REQUIRE(client.send_frame(frame_n(i), 1) == SendResult::queued);
    }
    client.transport_closed(2);
    server.transport_closed(2);
    REQUIRE(client.is_suspended());
    REQUIRE(client.send_frame(frame_n(5), 3) == SendResult::queued);
    client.reconnect(4);
    RSession fresh = fresh_server(9, 4);
    for (int i = 0; i < 10 && fresh.requested_resume_token() == 0; ++i) {
        client.consume_output(fresh.receive(client.output(), 4).consumed);
        fresh.consume_output(client.receive(fresh.output(), 4).consumed);
    }
    REQUIRE(server.adopt(fresh, 4));
    pump_gw(4);
    std::vector<std::uint32_t> got;
    drain_bus(server, got, 5);
    CHECK(got == std::vector<std::uint32_t>{0, 1, 2, 3, 4, 5});
    pump_gw(100'000);
    CHECK(client.replay_size() == 0);
    CHECK(client.stats().resumed == 1);
}

TEST_CASE("resume: a side that closes acknowledges first, so the peer counts nothing delivered as undeliverable") {
    Pair p;
    for (std::uint32_t i = 0; i < 3; ++i) {
        REQUIRE(p.client.send_frame(frame_n(i), 0) == SendResult::queued);
    }
    pump(p.client, p.server, 0);
    std::vector<std::uint32_t> got;
    drain_bus(p.server, got, 0);
    REQUIRE(got.size() == 3);
    CHECK(p.client.replay_size() == 3);  // fewer than ack_every_frames, before ack_delay_us
    p.server.close(CloseReason::shutdown, "shutting down", 1);
    const auto out = p.server.output();
    p.server.consume_output(p.client.receive(out, 1).consumed);
    CHECK(p.client.is_suspended());  // the server may come back
    CHECK(p.client.replay_size() == 0);
    CHECK(p.client.abandon(2) == 0);
    CHECK(p.client.stats().undeliverable == 0);
}
