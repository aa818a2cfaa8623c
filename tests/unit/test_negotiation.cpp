#include <doctest/doctest.h>

#include <tcpcan/negotiation.hpp>
#include <tcpcan/sequence.hpp>

using namespace tcpcan;

namespace {
// Runs two negotiators against each other until neither has anything to send.
struct Outcome {
    NegotiationState client, server;
    std::uint32_t client_version, server_version;
    int messages;
};
Outcome negotiate(std::uint32_t client_max, std::uint32_t server_max, std::uint32_t server_min = 1) {
    VersionNegotiator client(Role::client, {1, client_max, 8});
    VersionNegotiator server(Role::server, {server_min, server_max, 8});
    CHECK_FALSE(server.start().send);  // a server never speaks first
    NegotiationStep step = client.start();
    CHECK(step.send);
    CHECK(step.send_version == client_max);
    bool to_server = true;
    int messages = 0;
    while (step.send && messages < 20) {
        ++messages;
        step = to_server ? server.on_peer_version(step.send_version) : client.on_peer_version(step.send_version);
        to_server = !to_server;
    }
    return {client.state(), server.state(), client.agreed_version(), server.agreed_version(), messages};
}
}  // namespace

TEST_CASE("negotiation: equal versions agree in one round trip") {
    const Outcome o = negotiate(2, 2);
    CHECK(o.client == NegotiationState::agreed);
    CHECK(o.server == NegotiationState::agreed);
    CHECK(o.client_version == 2);
    CHECK(o.server_version == 2);
    CHECK(o.messages == 2);  // proposal, echo; the client does not answer its own number
}

TEST_CASE("negotiation: a lower server proposes lower and the client acknowledges") {
    const Outcome o = negotiate(5, 2);
    CHECK(o.client_version == 2);
    CHECK(o.server_version == 2);
    CHECK(o.messages == 3);  // 5, 2 (lower), 2 (ack); the server does not answer its own 2
}

TEST_CASE("negotiation: a lower client is acknowledged") {
    const Outcome o = negotiate(1, 2);
    CHECK(o.client_version == 1);
    CHECK(o.server_version == 1);
    CHECK(o.messages == 2);
}

TEST_CASE("negotiation: nothing in common ends with 0") {
    VersionNegotiator server(Role::server, {2, 2, 8});
    (void)server.start();
    const NegotiationStep step = server.on_peer_version(1);
    CHECK(step.send);
    CHECK(step.send_version == 0);
    CHECK(server.state() == NegotiationState::failed);

    VersionNegotiator client(Role::client, {1, 2, 8});
    (void)client.start();
    const NegotiationStep end = client.on_peer_version(0);
    CHECK_FALSE(end.send);
    CHECK(client.state() == NegotiationState::failed);
    CHECK(client.peer_gave_up());
}

TEST_CASE("negotiation: a party never answers its own proposal, and proposals only go down") {
    VersionNegotiator client(Role::client, {1, 3, 8});
    (void)client.start();
    // The peer echoes 3: that is agreement, and nothing is sent back.
    CHECK_FALSE(client.on_peer_version(3).send);
    CHECK(client.state() == NegotiationState::agreed);

    VersionNegotiator raised(Role::client, {1, 2, 8});
    (void)raised.start();
    const NegotiationStep up = raised.on_peer_version(3);
    CHECK(up.error == ProtocolError::peer_raised_version);
    CHECK(raised.state() == NegotiationState::failed);

    VersionNegotiator after(Role::server, {1, 2, 8});
    (void)after.start();
    (void)after.on_peer_version(2);
    CHECK(after.on_peer_version(2).error == ProtocolError::not_allowed_after_agreement);
}

TEST_CASE("negotiation: rounds are bounded") {
    // max_rounds peer messages are accepted; the next one fails the negotiation.
    VersionNegotiator server(Role::server, {1, 2, 1});
    (void)server.start();
    CHECK(server.on_peer_version(9).send_version == 2);  // counter-proposal, round 1
    CHECK(server.state() == NegotiationState::waiting);
    CHECK(server.on_peer_version(2).error == ProtocolError::negotiation_rounds_exceeded);
    CHECK(server.state() == NegotiationState::failed);

    VersionNegotiator roomy(Role::server, {1, 2, 2});
    (void)roomy.start();
    (void)roomy.on_peer_version(9);
    CHECK(roomy.on_peer_version(2).error == ProtocolError::none);
    CHECK(roomy.state() == NegotiationState::agreed);
}

TEST_CASE("negotiation: a client that proposed above 1 and was hung up on retries with 1") {
    VersionNegotiator client(Role::client, {1, 2, 8});
    (void)client.start();
    CHECK(client.should_retry_with_version_1());
    VersionNegotiator v1(Role::client, {1, 1, 8});
    (void)v1.start();
    CHECK_FALSE(v1.should_retry_with_version_1());
    VersionNegotiator server(Role::server, {1, 2, 8});
    (void)server.start();
    CHECK_FALSE(server.should_retry_with_version_1());
}

TEST_CASE("sequence: in order, gaps, duplicates and late frames") {
    SequenceTracker t;
    CHECK(t.on_frame(0).verdict == SequenceVerdict::in_order);
    CHECK(t.on_frame(1).verdict == SequenceVerdict::in_order);
    const SequenceResult gap = t.on_frame(5);
    CHECK(gap.verdict == SequenceVerdict::gap);
    CHECK(gap.missing == 3);
    CHECK(t.counters().lost == 3);
    CHECK(t.on_frame(5).verdict == SequenceVerdict::duplicate);
    CHECK(t.on_frame(3).verdict == SequenceVerdict::reordered);
    CHECK(t.counters().lost == 2);
    CHECK(t.on_frame(3).verdict == SequenceVerdict::duplicate);
    CHECK(t.counters().duplicates == 2);
    CHECK(t.counters().reordered == 1);
    CHECK(t.counters().received == 6);
}

TEST_CASE("sequence: a first frame above 0 is a gap (frames dropped before sending)") {
    SequenceTracker t;
    const SequenceResult r = t.on_frame(4);
    CHECK(r.verdict == SequenceVerdict::gap);
    CHECK(r.missing == 4);
}

TEST_CASE("sequence: wrap-around at 2^32") {
    SequenceTracker t;
    t.reset(0xFFFF'FFFE);
    CHECK(t.on_frame(0xFFFF'FFFE).verdict == SequenceVerdict::in_order);
    CHECK(t.on_frame(0xFFFF'FFFF).verdict == SequenceVerdict::in_order);
    CHECK(t.on_frame(0).verdict == SequenceVerdict::in_order);
    CHECK(t.on_frame(1).verdict == SequenceVerdict::in_order);
    CHECK(t.counters().lost == 0);
    CHECK(t.on_frame(0xFFFF'FFFF).verdict == SequenceVerdict::duplicate);

    t.reset(0xFFFF'FFFD);
    const SequenceResult gap = t.on_frame(2);  // FFFFFFFD..1 missing: 5 frames
    CHECK(gap.verdict == SequenceVerdict::gap);
    CHECK(gap.missing == 5);
    CHECK(t.on_frame(0xFFFF'FFFF).verdict == SequenceVerdict::reordered);
    CHECK(t.counters().lost == 4);
    CHECK(t.expected() == 3);
}

TEST_CASE("sequence: a jump of half the space or more counts as behind, not a gap") {
    SequenceTracker t;
    t.reset(10);
    CHECK(t.on_frame(10u + 0x7FFF'FFFFu).verdict == SequenceVerdict::gap);  // largest forward jump
    t.reset(10);
    CHECK(t.on_frame(10u + 0x8000'0000u).verdict == SequenceVerdict::duplicate);  // too far: stale
    CHECK(t.counters().lost == 0);
}
