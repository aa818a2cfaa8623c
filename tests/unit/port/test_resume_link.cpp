// TcpcanLink and resume (feature::resume): the Linux port's side of a session that outlives
// its connection — a client link suspends and reconnects, a server link's token finds the
// parked link through the lookup the bridge gives it, and that link takes the connection
// over with the bytes that followed the client's 'r'.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "log.hpp"
#include "tcpcan_link.hpp"

using namespace tcpcan;
using namespace tcpcan::linux_port;

namespace {

SessionOptions link_options(Role role) {
    SessionOptions o;
    o.role = role;
    o.features = feature::sequence | feature::resume;
    return o;
}

// Moves bytes both ways until quiet; the server side may change (a resume hands the
// connection to the parked link), so it is followed through adopted_by().
void pump(TcpcanLink& client, TcpcanLink*& server, std::uint64_t now) {
    for (int round = 0; round < 1000; ++round) {
        bool moved = false;
        client.tick(now);
        server->tick(now);
        if (const auto out = client.output(); !out.empty()) {
            const std::vector<std::uint8_t> bytes(out.begin(), out.end());
            client.consume_output(bytes.size());
            server->receive(bytes, now);
            if (TcpcanLink* to = server->adopted_by()) {
                server = to;
            }
            moved = true;
        }
        if (const auto out = server->output(); !out.empty()) {
            const std::vector<std::uint8_t> bytes(out.begin(), out.end());
            server->consume_output(bytes.size());
            client.receive(bytes, now);
            moved = true;
        }
        if (!moved) {
            return;
        }
    }
    FAIL("never quiet");
}

Frame frame_n(std::uint8_t n) {
    Frame f;
    f.id = 0x100 + n;
    f.len = 1;
    f.data[0] = n;
    return f;
}

}  // namespace

TEST_CASE("TcpcanLink: a cut connection resumes onto the parked server link; frames once, in order") {
    LogLimiter limiter{100, 1'000'000};
    const FilterSet<64> none;
    TcpcanLink client("client", link_options(Role::client), none, limiter, 0);
    auto parked = std::make_unique<TcpcanLink>("server-1", link_options(Role::server), none, limiter, 0);
    parked->set_resume({.token = 0xABCDEF});
    int lookups = 0;
    TcpcanLink* server = parked.get();
    pump(client, server, 0);
    REQUIRE(client.ready());
    REQUIRE(server->ready());
    CHECK(client.resume_token() == 0xABCDEF);

    client.offer(frame_n(1), 10);
    server->offer(frame_n(2), 10);
    // Cut before anything crossed: both keep their frames.
    client.transport_closed(20);
    server->transport_closed(20);
    CHECK(client.suspended());
    CHECK(server->suspended());
    CHECK(client.closed());
    CHECK(client.ready());  // still takes frames, for later
    client.offer(frame_n(3), 30);
    server->offer(frame_n(4), 30);

    // A new connection: a fresh server link; the bridge's lookup finds the parked one.
    client.reconnect(40);
    TcpcanLink fresh("server-2", link_options(Role::server), none, limiter, 40);
    fresh.set_resume({.token = 0x1234});
    fresh.set_resume_lookup([&](std::uint64_t token, const TcpcanLink& asking) -> TcpcanLink* {
        ++lookups;
        CHECK(&asking == &fresh);
        return token == parked->resume_token() ? parked.get() : nullptr;
    });
    CHECK_FALSE(fresh.ready());
    server = &fresh;
    pump(client, server, 40);
    CHECK(lookups == 1);
    CHECK(fresh.adopted_by() == parked.get());
    CHECK(fresh.closed());
    CHECK(server == parked.get());
    CHECK_FALSE(parked->suspended());
    CHECK(parked->ready());

    std::vector<std::uint8_t> at_server, at_client;
    for (int i = 0; i < 3; ++i) {
        while (const Frame* f = parked->peek_for_bus(50, 0)) {
            at_server.push_back(f->data[0]);
            parked->pop_for_bus();
        }
        while (const Frame* f = client.peek_for_bus(50, 0)) {
            at_client.push_back(f->data[0]);
            client.pop_for_bus();
        }
        pump(client, server, 50 + 30'000 * static_cast<std::uint64_t>(i + 1));
    }
    CHECK(at_server == std::vector<std::uint8_t>{1, 3});
    CHECK(at_client == std::vector<std::uint8_t>{2, 4});
    LinkTotals totals;
    client.add_totals(totals);
    parked->add_totals(totals);
    CHECK(totals.resumed == 2);
    CHECK(totals.undeliverable == 0);
    CHECK(totals.lost == 0);
}

TEST_CASE("TcpcanLink: an unknown token starts a new session; the client counts what it could not deliver") {
    LogLimiter limiter{100, 1'000'000};
    const FilterSet<64> none;
    TcpcanLink client("client", link_options(Role::client), none, limiter, 0);
    TcpcanLink first("server-1", link_options(Role::server), none, limiter, 0);
    first.set_resume({.token = 77});
    TcpcanLink* server = &first;
    pump(client, server, 0);
    client.offer(frame_n(1), 10);
    pump(client, server, 10);  // received by the server, never put on its bus: unacknowledged
    client.transport_closed(20);
    client.reconnect(30);
    TcpcanLink restarted("server-2", link_options(Role::server), none, limiter, 30);
    restarted.set_resume({.token = 88});
    restarted.set_resume_lookup([](std::uint64_t, const TcpcanLink&) -> TcpcanLink* { return nullptr; });
    server = &restarted;
    pump(client, server, 30);
    CHECK(server == &restarted);
    CHECK(restarted.ready());
    CHECK(client.resume_token() == 88);
    LinkTotals totals;
    client.add_totals(totals);
    CHECK(totals.undeliverable == 1);
    CHECK(totals.resumed == 0);
}
