// tcpcan's bus request ('b', feature::bus; PROTOCOL.md section 4.7) in the Session: two
// sessions back to back, and a server fed hand-written bytes.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <tcpcan/encoder.hpp>
#include <tcpcan/session.hpp>

using namespace tcpcan;

namespace {

using BusSession = Session<4096, 64, 64, 64>;

void pump(BusSession& a, BusSession& b, std::uint64_t now) {
    for (int round = 0; round < 1000; ++round) {
        bool moved = false;
        for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
            const auto out = from->output();
            if (out.empty() || to->is_closed()) {
                continue;
            }
            const ReceiveResult r = to->receive(out, now);
            from->consume_output(r.consumed);
            moved = moved || r.consumed > 0;
        }
        if (!moved) {
            return;
        }
    }
    FAIL("link never went quiet");
}

std::vector<Event> events(BusSession& s) {
    std::vector<Event> all;
    Event e;
    while (s.poll_event(e)) {
        all.push_back(e);
    }
    return all;
}

const Event* find_event(const std::vector<Event>& list, EventType type) {
    const auto it = std::find_if(list.begin(), list.end(), [type](const Event& e) { return e.type == type; });
    return it == list.end() ? nullptr : &*it;
}

SessionOptions options(Role role, std::uint32_t features = feature::sequence) {
    SessionOptions o;
    o.role = role;
    o.features = features;
    o.negotiation_timeout_us = 1000;
    return o;
}

std::vector<std::uint8_t> bytes_of(std::span<const std::uint8_t> s) { return {s.begin(), s.end()}; }

std::vector<std::uint8_t> bus_message(std::string_view name) {
    std::vector<std::uint8_t> out(max_message_size);
    out.resize(encode_bus(out, name));
    return out;
}

}  // namespace

TEST_CASE("bus request: the client names a bus, the server accepts it, frames flow after") {
    BusSession client(options(Role::client), 0);
    BusSession server(options(Role::server, feature::sequence | feature::bus), 0);
    REQUIRE(client.request_bus("can1"));
    pump(client, server, 10);
    CHECK(client.state() == SessionState::established);
    CHECK(server.state() == SessionState::established);
    CHECK(client.agreed_features() == (feature::sequence | feature::bus));
    CHECK(server.bus_pending());
    CHECK(client.bus_pending());
    const auto server_events = events(server);
    REQUIRE(find_event(server_events, EventType::bus_requested) != nullptr);
    CHECK(server.requested_bus() == "can1");

    // The server's answer: 'b' with the same name, on the wire.
    server.accept_bus();
    CHECK(bytes_of(server.output()) == bus_message("can1"));
    CHECK_FALSE(server.bus_pending());
    pump(client, server, 20);
    CHECK_FALSE(client.bus_pending());
    CHECK(find_event(events(client), EventType::bus_chosen) != nullptr);
    CHECK(find_event(events(server), EventType::bus_chosen) != nullptr);

    Frame f;
    f.id = 0x123;
    f.len = 1;
    f.data[0] = 0x42;
    CHECK(client.send_frame(f, 30) == SendResult::queued);
    pump(client, server, 30);
    const Frame* got = server.peek_bus_frame(30);
    REQUIRE(got != nullptr);
    CHECK(got->id == 0x123);

    // Nothing more is pending, so no negotiation timeout either.
    server.tick(5000);
    client.tick(5000);
    CHECK_FALSE(server.is_closed());
    CHECK_FALSE(client.is_closed());
}

TEST_CASE("bus request: the client's bytes are exactly h with BUS, then b") {
    BusSession client(options(Role::client), 0);
    REQUIRE(client.request_bus("vcan0"));
    client.consume_output(client.output().size());  // its 'v'
    const std::uint8_t v2[] = {0x76, 4, 0, 0, 0, 2};
    const std::uint8_t h_server[] = {0x68, 4, 0, 0, 0, 9};
    (void)client.receive(v2, 1);
    const std::vector<std::uint8_t> h_client = {0x68, 4, 0, 0, 0, 9};
    CHECK(bytes_of(client.output()) == h_client);  // SEQ | BUS offered
    client.consume_output(client.output().size());
    (void)client.receive(h_server, 2);
    CHECK(bytes_of(client.output()) == bus_message("vcan0"));
    CHECK(bus_message("vcan0") == std::vector<std::uint8_t>{0x62, 5, 'v', 'c', 'a', 'n', '0'});
}

TEST_CASE("bus request: a server without BUS (one bus, or older) is not asked; the client closes, unsupported") {
    BusSession client(options(Role::client), 0);
    BusSession server(options(Role::server), 0);  // offers SEQ only
    REQUIRE(client.request_bus("can1"));
    pump(client, server, 10);
    CHECK(client.is_closed());
    const auto client_events = events(client);
    const Event* closed = find_event(client_events, EventType::closed);
    REQUIRE(closed != nullptr);
    CHECK(closed->reason == CloseReason::unsupported);
    CHECK_FALSE(closed->by_peer);
    // The server heard why.
    CHECK(server.is_closed());
    CHECK(server.close_text() == "a bus request, which the server does not offer");
}

TEST_CASE("bus request: a client without a request does not offer BUS; nothing changes") {
    BusSession client(options(Role::client), 0);
    BusSession server(options(Role::server, feature::sequence | feature::bus), 0);
    pump(client, server, 10);
    CHECK(server.agreed_features() == feature::sequence);
    CHECK_FALSE(server.bus_pending());
    CHECK_FALSE(client.bus_pending());
}

TEST_CASE("bus request: an unknown bus is refused by closing with unsupported and a text naming it") {
    BusSession client(options(Role::client), 0);
    BusSession server(options(Role::server, feature::sequence | feature::bus), 0);
    REQUIRE(client.request_bus("can7"));
    pump(client, server, 10);
    REQUIRE(server.requested_bus() == "can7");
    server.close(CloseReason::unsupported, "unknown bus 'can7'", 10);
    pump(client, server, 10);
    CHECK(client.is_closed());
    CHECK(client.close_text() == "unknown bus 'can7'");
    const auto client_events = events(client);
    const Event* closed = find_event(client_events, EventType::closed);
    REQUIRE(closed != nullptr);
    CHECK(closed->by_peer);
    CHECK(closed->reason == CloseReason::unsupported);
}

TEST_CASE("bus request: a server that never hears the request times out as in negotiation") {
    BusSession server(options(Role::server, feature::sequence | feature::bus), 0);
    const std::uint8_t hello[] = {0x76, 4, 0, 0, 0, 2, 0x68, 4, 0, 0, 0, 9};
    (void)server.receive(hello, 1);
    CHECK(server.state() == SessionState::established);
    CHECK(server.bus_pending());
    CHECK(server.next_deadline() == 1000);
    server.tick(999);
    CHECK_FALSE(server.is_closed());
    server.tick(1000);
    CHECK(server.is_closed());
    const auto all = events(server);
    const Event* closed = find_event(all, EventType::closed);
    REQUIRE(closed != nullptr);
    CHECK(closed->reason == CloseReason::negotiation_timeout);
}

TEST_CASE("bus request: 'b' where it is not agreed, twice, or an answer not asked for, is a protocol error") {
    const std::uint8_t v2[] = {0x76, 4, 0, 0, 0, 2};
    const auto b = bus_message("can1");
    const auto expect_error = [](BusSession& s) {
        CHECK(s.is_closed());
        const auto all = events(s);
        const Event* e = find_event(all, EventType::protocol_error);
        REQUIRE(e != nullptr);
        CHECK(e->error == ProtocolError::unexpected_bus_message);
    };
    SUBCASE("server without BUS") {
        BusSession server(options(Role::server), 0);
        const std::uint8_t h[] = {0x68, 4, 0, 0, 0, 9};
        (void)server.receive(v2, 1);
        (void)server.receive(h, 1);
        CHECK_FALSE(server.receive(b, 1).ok);
        expect_error(server);
    }
    SUBCASE("client features without BUS, to a server offering it") {
        BusSession server(options(Role::server, feature::sequence | feature::bus), 0);
        const std::uint8_t h[] = {0x68, 4, 0, 0, 0, 1};
        (void)server.receive(v2, 1);
        (void)server.receive(h, 1);
        CHECK_FALSE(server.receive(b, 1).ok);
        expect_error(server);
    }
    SUBCASE("a second request") {
        BusSession server(options(Role::server, feature::sequence | feature::bus), 0);
        const std::uint8_t h[] = {0x68, 4, 0, 0, 0, 9};
        (void)server.receive(v2, 1);
        (void)server.receive(h, 1);
        CHECK(server.receive(b, 1).ok);
        server.accept_bus();
        CHECK_FALSE(server.receive(b, 1).ok);
        expect_error(server);
    }
    SUBCASE("an answer naming another bus") {
        BusSession client(options(Role::client), 0);
        REQUIRE(client.request_bus("can1"));
        const std::uint8_t h[] = {0x68, 4, 0, 0, 0, 9};
        (void)client.receive(v2, 1);
        (void)client.receive(h, 1);
        CHECK_FALSE(client.receive(bus_message("can2"), 1).ok);
        expect_error(client);
    }
    SUBCASE("an answer the client did not ask for") {
        BusSession client(options(Role::client, feature::sequence | feature::bus), 0);  // offers, never asks
        const std::uint8_t h[] = {0x68, 4, 0, 0, 0, 9};
        (void)client.receive(v2, 1);
        (void)client.receive(h, 1);
        CHECK_FALSE(client.receive(b, 1).ok);
        expect_error(client);
    }
}

TEST_CASE("bus request: names the protocol cannot carry are refused before anything is sent") {
    BusSession client(options(Role::client), 0);
    CHECK_FALSE(client.request_bus(""));
    CHECK_FALSE(client.request_bus("can 1"));
    CHECK_FALSE(client.request_bus(std::string(65, 'a')));
    CHECK_FALSE(client.request_bus("caf\xc3\xa9"));
    CHECK(client.request_bus(std::string(64, 'a')));
    BusSession server(options(Role::server), 0);
    CHECK_FALSE(server.request_bus("can1"));  // a server does not ask
    std::vector<std::uint8_t> out(max_message_size);
    CHECK(encode_bus(out, "can 1") == 0);
    CHECK(encode_bus(out, "") == 0);
    CHECK(encode_bus(std::span<std::uint8_t>(out.data(), 5), "can1") == 0);  // no room
}

TEST_CASE("bus request: the request survives the move from the small to the full session") {
    Session<2048, 16, 64, 16> small_server(options(Role::server, feature::sequence | feature::bus), 0);
    const std::uint8_t hello[] = {0x76, 4, 0, 0, 0, 2, 0x68, 4, 0, 0, 0, 9, 0x62, 4, 'c', 'a', 'n', '1'};
    (void)small_server.receive(hello, 1);
    Session<65536, 256, 64, 64> full(small_server);
    CHECK(full.requested_bus() == "can1");
    CHECK(full.bus_pending());
    full.consume_output(full.output().size());
    full.accept_bus();
    CHECK(bytes_of(full.output()) == bus_message("can1"));
    CHECK_FALSE(full.bus_pending());
}
