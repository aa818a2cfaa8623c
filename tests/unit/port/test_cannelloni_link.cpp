// cannelloni Links alone (no loop): TCP handshake, frames both ways, drops by cause; UDP
// packing, the flush timeout, sequence gaps, refused packets, and the UDP transport's
// peer-address check over real sockets on 127.0.0.1.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cannelloni_link.hpp"
#include "dialect.hpp"
#include "udp_net.hpp"

using namespace tcpcan;
using namespace tcpcan::linux_port;

namespace {

using Bytes = std::vector<std::uint8_t>;

Frame frame(std::uint32_t id, std::uint8_t flags, std::uint8_t len) {
    Frame f;
    f.id = id;
    f.flags = flags;
    f.len = len;
    for (std::uint8_t i = 0; i < len && !f.is_remote(); ++i) {
        f.data[i] = static_cast<std::uint8_t>(0x10 + i);
    }
    return f;
}

Frame error_frame() {
    Frame f;
    f.id = 0x4;
    f.flags = frame_flag::error;
    f.len = 8;
    return f;
}

Bytes take_output(Link& link) {
    const auto out = link.output();
    Bytes b(out.begin(), out.end());
    link.consume_output(b.size());
    return b;
}

std::vector<Frame> take_bus(Link& link) {
    std::vector<Frame> frames;
    for (int guard = 0; guard < 5000; ++guard) {
        const Frame* f = link.peek_for_bus(0, 0);
        if (f == nullptr) {
            break;
        }
        frames.push_back(*f);
        link.pop_for_bus();
    }
    return frames;
}

const Bytes hello{'C', 'A', 'N', 'N', 'E', 'L', 'L', 'O', 'N', 'I', 'v', '1'};

}  // namespace

TEST_CASE("cannelloni TCP link: handshake first, then frames both ways; error frames dropped and counted") {
    LogLimiter limiter;
    CannelloniTcpLink link("peer", CannelloniOptions{}, limiter, 0);
    CHECK_FALSE(link.agreed());
    CHECK(take_output(link) == hello);  // sent at once, without waiting for the peer's

    Bytes in = hello;
    const Bytes std_frame{0x00, 0x00, 0x01, 0x23, 0x02, 0xAB, 0xCD};
    in.insert(in.end(), std_frame.begin(), std_frame.end());
    link.receive(Bytes(in.begin(), in.begin() + 7), 10);  // split inside the handshake
    CHECK_FALSE(link.agreed());
    link.receive(Bytes(in.begin() + 7, in.end() - 1), 20);
    CHECK(link.agreed());
    CHECK(take_bus(link).empty());
    link.receive(Bytes(in.end() - 1, in.end()), 30);
    const auto got = take_bus(link);
    REQUIRE(got.size() == 1);
    CHECK(got[0].id == 0x123);
    CHECK(got[0].len == 2);
    CHECK(got[0].data[1] == 0xCD);

    link.offer(frame(0x1ABCDEF, frame_flag::extended | frame_flag::remote, 4), 40);
    link.offer(error_frame(), 40);
    CHECK(take_output(link) == Bytes{0xC1, 0xAB, 0xCD, 0xEF, 0x04});
    CHECK(link.stats().drop_error_frame_to_peer == 1);

    // An error frame from the peer does not reach the bus.
    link.receive(Bytes{0x20, 0x00, 0x00, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0}, 50);
    CHECK(take_bus(link).empty());
    CHECK(link.stats().drop_error_frame_from_peer == 1);
    CHECK(link.drops() == 2);
    CHECK(link.describe_drops().find("error frames 1") != std::string::npos);
    CHECK_FALSE(link.closed());
}

TEST_CASE("cannelloni TCP link: a refused peer gets no handshake and the link is closed at once") {
    LogLimiter limiter;
    CannelloniOptions o;
    o.refuse_because = "not the cannelloni peer 10.0.0.2 (--cannelloni-peer)";
    CannelloniTcpLink link("peer", o, limiter, 0);
    CHECK(link.closed());
    CHECK_FALSE(link.agreed());
    CHECK(link.output().empty());
    CHECK(link.read_budget() == 0);
}

TEST_CASE("cannelloni TCP link: many small frames in one read all reach the bus") {
    LogLimiter limiter;
    CannelloniTcpLink link("peer", CannelloniOptions{}, limiter, 0);
    Bytes in = hello;
    for (std::uint8_t i = 0; i < 200; ++i) {
        in.insert(in.end(), {0x40, 0x00, 0x01, i, 0x00});  // RTR, len 0: the smallest frame
    }
    link.receive(in, 1);
    const auto got = take_bus(link);
    REQUIRE(got.size() == 200);
    CHECK(got[199].id == 0x100 + 199);
    CHECK(link.stats().frames_received == 200);
}

TEST_CASE("cannelloni TCP link: a wrong handshake or a bad frame closes it; so does no handshake in time") {
    LogLimiter limiter;
    {
        CannelloniTcpLink link("peer", CannelloniOptions{}, limiter, 0);
        link.receive(Bytes{'v', 0, 0, 0, 2}, 1);
        CHECK(link.closed());
        CHECK(link.read_budget() == 0);
    }
    {
        CannelloniTcpLink link("peer", CannelloniOptions{}, limiter, 0);
        Bytes in = hello;
        in.insert(in.end(), {0x00, 0x00, 0x01, 0x23, 0xC1});  // FD len 65
        link.receive(in, 1);
        CHECK(link.agreed());
        CHECK(link.closed());
    }
    {
        CannelloniOptions o;
        o.handshake_timeout_us = 1000;
        CannelloniTcpLink link("peer", o, limiter, 0);
        CHECK(link.next_deadline() == 1000);
        link.tick(999);
        CHECK_FALSE(link.closed());
        link.tick(1000);
        CHECK(link.closed());
    }
}

TEST_CASE("cannelloni TCP link: the output is bounded; frames that do not fit are dropped and counted") {
    LogLimiter limiter;
    CannelloniTcpLink link("peer", CannelloniOptions{}, limiter, 0);
    const Frame big = frame(0x100, frame_flag::fd, 64);  // 70 bytes
    std::size_t offered = 0;
    for (; offered < 2000 && link.has_room(1); ++offered) {
        link.offer(big, 0);
    }
    CHECK(offered > 900);
    CHECK(link.output().size() <= CannelloniTcpLink::output_capacity);
    link.offer(big, 0);
    link.offer(big, 0);
    CHECK(link.stats().drop_output_full >= 1);
    CHECK(link.stats().frames_sent == offered + 2 - link.stats().drop_output_full);
}

TEST_CASE("cannelloni UDP link: frames are packed, flushed after the timeout, and read back") {
    LogLimiter limiter;
    auto peer = std::make_shared<UdpPeer>();
    peer->known = true;
    CannelloniOptions o;
    o.flush_timeout_us = 100'000;
    CannelloniUdpLink link("udp", o, peer, limiter, 0);
    CHECK(link.agreed());
    link.offer(frame(0x123, 0, 1), 1000);
    link.offer(frame(0x100, frame_flag::fd | frame_flag::brs, 12), 2000);
    link.offer(error_frame(), 2000);
    CHECK(link.output().empty());  // waiting for the timeout
    CHECK(link.next_deadline() == 101'000);
    link.tick(100'999);
    CHECK(link.output().empty());
    link.tick(101'000);
    Bytes expect{0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01, 0x23, 0x01, 0x10,
                 0x00, 0x00, 0x01, 0x00, 0x8C, 0x01};
    for (std::uint8_t i = 0; i < 12; ++i) {
        expect.push_back(static_cast<std::uint8_t>(0x10 + i));
    }
    CHECK(take_output(link) == expect);
    CHECK(link.stats().frames_sent == 2);
    CHECK(link.stats().drop_error_frame_to_peer == 1);

    // A full packet goes at once: 112 frames of 13 bytes, then two of 5 bytes fill 1,471 of 1,472.
    for (int i = 0; i < 112; ++i) {
        link.offer(frame(0x7FF, 0, 8), 200'000);
    }
    CHECK(link.output().empty());
    link.offer(frame(0x1, 0, 0), 200'000);
    link.offer(frame(0x2, 0, 0), 200'000);
    const Bytes full = take_output(link);
    CHECK(full.size() == 1471);
    CHECK(full[2] == 1);  // the second packet
    CHECK(full[3] == 0);
    CHECK(full[4] == 114);

    // Receiving: a good packet, a gap of two, a refused packet.
    link.receive(Bytes{0x02, 0x00, 0x05, 0x00, 0x01, 0x80, 0x00, 0x00, 0x42, 0x00}, 300'000);
    link.receive(Bytes{0x02, 0x00, 0x08, 0x00, 0x01, 0x40, 0x00, 0x00, 0x42, 0x03}, 300'000);
    link.receive(Bytes{0x02, 0x00, 0x09, 0x00, 0x02, 0x00, 0x00, 0x00, 0x42, 0x09}, 300'000);  // len 9
    const auto got = take_bus(link);
    REQUIRE(got.size() == 2);
    CHECK(got[0].is_extended());
    CHECK(got[0].id == 0x42);
    CHECK(got[1].is_remote());
    CHECK(got[1].len == 3);
    CHECK(link.sequence().lost() == 2);
    LinkTotals totals;
    link.add_totals(totals);
    CHECK(totals.lost == 2);
    CHECK(link.stats().bad_packets == 1);
    CHECK(link.stats().frames_in_bad_packets == 2);
}

TEST_CASE("cannelloni UDP link: with no peer yet, frames are dropped and counted, not queued") {
    LogLimiter limiter;
    auto peer = std::make_shared<UdpPeer>();
    CannelloniUdpLink link("udp", CannelloniOptions{}, peer, limiter, 0);
    link.offer(frame(0x1, 0, 1), 0);
    link.tick(1'000'000);
    CHECK(link.output().empty());
    CHECK(link.stats().drop_no_peer == 1);
}

namespace {

int udp_socket_on_loopback(std::uint16_t& port) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    return fd;
}

void send_to(int fd, std::uint16_t port, const Bytes& b) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(sendto(fd, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) == static_cast<ssize_t>(b.size()));
}

}  // namespace

TEST_CASE("cannelloni UDP transport: the first sender becomes the peer; a fixed address refuses others") {
    std::uint16_t server_port = 0, client_port = 0, other_port = 0;
    const int server = udp_socket_on_loopback(server_port);
    const int client = udp_socket_on_loopback(client_port);
    const int other = udp_socket_on_loopback(other_port);
    auto peer = std::make_shared<UdpPeer>();
    auto t = make_udp_transport(server, peer);
    Bytes buf(2048);
    CHECK(t->read(buf).status == IoStatus::would_block);

    send_to(client, server_port, Bytes{0x02, 0x00, 0x00, 0x00, 0x00});
    IoResult r = t->read(buf);
    CHECK(r.status == IoStatus::ok);
    CHECK(r.bytes == 5);
    CHECK(peer->known);
    CHECK(peer->adopted_event);
    CHECK(ntohs(reinterpret_cast<sockaddr_in&>(peer->address).sin_port) == client_port);

    // Replies go to the peer.
    CHECK(t->write(Bytes{1, 2, 3}).bytes == 3);
    Bytes got(16);
    CHECK(recv(client, got.data(), got.size(), 0) == 3);

    // Same address, other port: cannelloni checks the address only, and the reply port follows.
    send_to(other, server_port, Bytes{0x02, 0x00, 0x01, 0x00, 0x00});
    CHECK(t->read(buf).status == IoStatus::ok);
    CHECK(ntohs(reinterpret_cast<sockaddr_in&>(peer->address).sin_port) == other_port);

    // A fixed address that is not 127.0.0.1: everything from here is foreign.
    auto fixed = std::make_shared<UdpPeer>();
    fixed->address_fixed = true;
    auto& a = reinterpret_cast<sockaddr_in&>(fixed->address);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7F000002);  // 127.0.0.2
    fixed->address_length = sizeof(sockaddr_in);
    auto t2 = make_udp_transport(server, fixed);
    send_to(client, server_port, Bytes{0x02, 0x00, 0x02, 0x00, 0x00});
    send_to(client, server_port, Bytes{0x02, 0x00, 0x03, 0x00, 0x00});
    CHECK(t2->read(buf).status == IoStatus::would_block);
    CHECK(fixed->foreign_packets == 2);
    CHECK_FALSE(fixed->known);
    close(server);
    close(client);
    close(other);
}

TEST_CASE("make_datagram_link: cannelloni-udp gets its link and transport; a bad --cannelloni-peer is named") {
    LogLimiter limiter;
    std::uint16_t port = 0;
    const int fd = udp_socket_on_loopback(port);
    LinkSetup setup;
    setup.dialect = Dialect::cannelloni_udp;
    setup.name = "udp";
    setup.limiter = &limiter;
    MadeDatagram made = make_datagram_link(setup, fd, DatagramPeer{false, "127.0.0.1:9", 0});
    REQUIRE(made.link != nullptr);
    REQUIRE(made.transport != nullptr);
    CHECK(made.link->agreed());
    made = make_datagram_link(setup, fd, DatagramPeer{false, "127.0.0.1:99999", 0});
    CHECK(made.link == nullptr);
    CHECK(made.error.find("99999") != std::string::npos);
    setup.dialect = Dialect::cannelloni;
    CHECK(make_datagram_link(setup, fd, DatagramPeer{}).link == nullptr);
    // cannelloni over TCP comes from make_link, like every connection.
    const MadeLink tcp = make_link(setup);
    REQUIRE(tcp.link != nullptr);
    CHECK_FALSE(tcp.link->agreed());
    close(fd);
}

TEST_CASE("cannelloni UDP link: packets the socket does not take are bounded; the overflow is counted, and its sequence number skipped") {
    LogLimiter limiter;
    auto peer = std::make_shared<UdpPeer>();
    peer->known = true;
    CannelloniUdpLink link("udp", CannelloniOptions{}, peer, limiter, 0);
    const Frame f = frame(0x7FF, 0, 8);  // 112 of them fill a packet; the 113th finishes it
    const std::size_t packets = CannelloniUdpLink::max_packets_waiting + 2;
    for (std::size_t i = 0; i < packets * 112; ++i) {
        link.offer(f, 0);
    }
    // 65 packets finished (the 66th is still being filled): 64 wait, one is dropped.
    CHECK(link.stats().drop_output_full == 112);
    std::vector<std::uint8_t> seqs;
    for (std::size_t i = 0; i < packets && !link.output().empty(); ++i) {
        seqs.push_back(take_output(link)[2]);
    }
    REQUIRE(seqs.size() == CannelloniUdpLink::max_packets_waiting);
    CHECK(seqs.front() == 0);
    CHECK(seqs.back() == CannelloniUdpLink::max_packets_waiting - 1);
    // The next packet's number shows the peer the one that was dropped.
    link.offer(f, 0);
    CHECK(take_output(link)[2] == CannelloniUdpLink::max_packets_waiting + 1);
    link.tick(1'000'000);
    CHECK(take_output(link)[2] == CannelloniUdpLink::max_packets_waiting + 2);
    CHECK(link.stats().frames_sent == (CannelloniUdpLink::max_packets_waiting + 1) * 112 + 1);
}

TEST_CASE("make_datagram_link: over IPv6 packets are 48 bytes smaller than the MTU, as cannelloni's") {
    const int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        MESSAGE("no IPv6 socket here; skipped");
        return;
    }
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        MESSAGE("cannot bind ::1 here; skipped");
        return;
    }
    LogLimiter limiter;
    LinkSetup setup;
    setup.dialect = Dialect::cannelloni_udp;
    setup.name = "udp6";
    setup.limiter = &limiter;
    MadeDatagram made = make_datagram_link(setup, fd, DatagramPeer{false, "[::1]:9", 0});
    REQUIRE(made.link != nullptr);
    for (int i = 0; i < 200; ++i) {
        made.link->offer(frame(0x7FF, 0, 8), 0);  // 13 bytes each
    }
    // (1,452 − 5) / 13 = 111 frames in the first packet (1,448 bytes), not 112.
    const auto out = made.link->output();
    CHECK(out.size() == 5 + 111 * 13);
    close(fd);
}

TEST_CASE("cannelloni UDP transport: a fixed address without a port learns the port from the peer's packets") {
    std::uint16_t server_port = 0, peer_port = 0, other_port = 0;
    const int server = udp_socket_on_loopback(server_port);
    const int peer_fd = udp_socket_on_loopback(peer_port);
    const int other = udp_socket_on_loopback(other_port);
    auto peer = std::make_shared<UdpPeer>();
    bool has_port = true;
    REQUIRE(resolve_udp_peer("127.0.0.1", peer->address, peer->address_length, has_port).ok);
    CHECK_FALSE(has_port);
    peer->address_fixed = true;
    auto t = make_udp_transport(server, peer);
    CHECK(t->write(Bytes{1}).bytes == 1);  // nowhere to send yet: taken and dropped (the link counts it)
    Bytes buf(2048);
    send_to(peer_fd, server_port, Bytes{0x02, 0x00, 0x00, 0x00, 0x00});
    CHECK(t->read(buf).status == IoStatus::ok);
    CHECK(peer->known);
    CHECK_FALSE(peer->adopted_event);  // the address was given, not adopted
    CHECK(ntohs(reinterpret_cast<sockaddr_in&>(peer->address).sin_port) == peer_port);
    CHECK(t->write(Bytes{7, 7}).bytes == 2);
    Bytes got(16);
    CHECK(recv(peer_fd, got.data(), got.size(), 0) == 2);
    // Same host, another port: still the peer (cannelloni checks the address only).
    send_to(other, server_port, Bytes{0x02, 0x00, 0x01, 0x00, 0x00});
    CHECK(t->read(buf).status == IoStatus::ok);
    CHECK(peer->foreign_packets == 0);
    close(server);
    close(peer_fd);
    close(other);
}
