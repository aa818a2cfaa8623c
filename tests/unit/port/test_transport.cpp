// Transports over a socketpair, in one process: plain bytes, TLS with pre-shared keys (both
// ends ours), and each PSK refusal with its named reason on both sides. Certificate mode and
// an independent peer (openssl s_client/s_server) are in tests/integration/test_tls.py.
#include <doctest/doctest.h>

#include "handshake_limit.hpp"
#include "temp_files.hpp"
#include "tls.hpp"
#include "transport.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <vector>

using namespace tcpcan::linux_port;

namespace {

const std::string key_a = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const std::string key_b = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

struct SocketPair {
    int server = -1;
    int client = -1;
    SocketPair() {
        signal(SIGPIPE, SIG_IGN);
        int fds[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        server = fds[0];
        client = fds[1];
    }
    ~SocketPair() {
        close_server();
        close_client();
    }
    void close_server() {
        if (server >= 0) {
            ::close(server);
            server = -1;
        }
    }
    void close_client() {
        if (client >= 0) {
            ::close(client);
            client = -1;
        }
    }
};

short poll_events(std::uint32_t wanted) {
    return static_cast<short>(((wanted & EPOLLIN) != 0 ? POLLIN : 0) | ((wanted & EPOLLOUT) != 0 ? POLLOUT : 0));
}

struct HandshakeOutcome {
    IoStatus server;
    IoStatus client;
};

// Drives both handshakes until neither is under way; at most 200 rounds.
HandshakeOutcome run_handshakes(Transport& server, Transport& client) {
    IoStatus s = IoStatus::would_block;
    IoStatus c = IoStatus::would_block;
    for (int round = 0; round < 200 && (s == IoStatus::would_block || c == IoStatus::would_block); ++round) {
        if (c == IoStatus::would_block) {
            c = client.handshake();
        }
        if (s == IoStatus::would_block) {
            s = server.handshake();
        }
        if (s == IoStatus::would_block && c == IoStatus::would_block) {
            std::array<pollfd, 2> fds{{{server.fd(), poll_events(server.wanted_events(false)), 0},
                                       {client.fd(), poll_events(client.wanted_events(false)), 0}}};
            (void)::poll(fds.data(), fds.size(), 1000);
        }
    }
    return {s, c};
}

// Moves `bytes` from one transport to the other through reads and writes; returns what arrived.
std::vector<std::uint8_t> transfer(Transport& from, Transport& to, const std::vector<std::uint8_t>& bytes) {
    std::vector<std::uint8_t> received;
    std::size_t sent = 0;
    std::array<std::uint8_t, 1000> buffer{};
    for (int round = 0; round < 10000 && received.size() < bytes.size(); ++round) {
        if (sent < bytes.size()) {
            const IoResult w = from.write(std::span(bytes).subspan(sent));
            REQUIRE(w.status != IoStatus::error);
            REQUIRE(w.status != IoStatus::closed);
            sent += w.bytes;
        }
        for (;;) {
            const IoResult r = to.read(buffer);
            REQUIRE(r.status != IoStatus::error);
            REQUIRE(r.status != IoStatus::closed);
            if (r.status != IoStatus::ok) {
                break;
            }
            received.insert(received.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(r.bytes));
        }
        if (received.size() < bytes.size()) {
            std::array<pollfd, 2> fds{{{from.fd(), poll_events(from.wanted_events(sent < bytes.size())), 0},
                                       {to.fd(), poll_events(to.wanted_events(false)), 0}}};
            (void)::poll(fds.data(), fds.size(), 1000);
        }
    }
    return received;
}

std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<std::uint8_t>((i * 7 + i / 256) & 0xFF);
    }
    return bytes;
}

std::unique_ptr<TlsContext> psk_context(TempDir& dir, TlsRole role, const std::string& name, const std::string& text) {
    TlsOptions options;
    options.role = role;
    options.psk_file = dir.write(name, text);
    TlsContextResult made = TlsContext::create(options);
    INFO(made.error);
    REQUIRE(made.context != nullptr);
    return std::move(made.context);
}

}  // namespace

TEST_CASE("looks_like_tls_client_hello: a handshake record start, not any dialect's first byte") {
    const std::uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    CHECK(looks_like_tls_client_hello(hello));
    CHECK(looks_like_tls_client_hello(std::span(hello, 1)));
    CHECK(looks_like_tls_client_hello(std::span(hello, 2)));
    const std::uint8_t tls13_record[] = {0x16, 0x03, 0x04};
    CHECK(looks_like_tls_client_hello(tls13_record));
    const std::uint8_t version_proposal[] = {'v', 0x04, 0x00, 0x00, 0x00, 0x02};
    CHECK_FALSE(looks_like_tls_client_hello(version_proposal));
    const std::uint8_t cannelloni[] = {'C', 'A', 'N'};
    CHECK_FALSE(looks_like_tls_client_hello(cannelloni));
    const std::uint8_t socketcand[] = {'<', ' ', 'o'};
    CHECK_FALSE(looks_like_tls_client_hello(socketcand));
    const std::uint8_t wrong_major[] = {0x16, 0x02, 0x01};
    CHECK_FALSE(looks_like_tls_client_hello(wrong_major));
    const std::uint8_t wrong_minor[] = {0x16, 0x03, 0x05};
    CHECK_FALSE(looks_like_tls_client_hello(wrong_minor));
    CHECK_FALSE(looks_like_tls_client_hello({}));
}

TEST_CASE("plain transports move bytes both ways exactly, and report the end of the stream") {
    SocketPair pair;
    auto server = make_plain_transport(pair.server, {.refuse_tls_client_hello = true});
    auto client = make_plain_transport(pair.client);
    CHECK_FALSE(server->handshaking());
    CHECK(server->handshake() == IoStatus::ok);
    CHECK(server->identity().empty());
    CHECK(server->wanted_events(false) == EPOLLIN);
    CHECK(server->wanted_events(true) == (EPOLLIN | EPOLLOUT));
    const auto up = pattern(300'000);
    CHECK(transfer(*client, *server, up) == up);
    const auto down = pattern(5000);
    CHECK(transfer(*server, *client, down) == down);

    const IoResult nothing = client->write({});
    CHECK(nothing.status == IoStatus::ok);
    CHECK(nothing.bytes == 0);
    std::array<std::uint8_t, 16> buffer{};
    CHECK(client->read(buffer).status == IoStatus::would_block);
    pair.close_server();
    CHECK(client->read(buffer).status == IoStatus::closed);
}

TEST_CASE("a plaintext server's transport refuses a TLS ClientHello with a named reason") {
    TempDir dir;
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "pi:" + key_a + "\n");
    SocketPair pair;
    auto server = make_plain_transport(pair.server, {.refuse_tls_client_hello = true});
    auto client = make_tls_transport(*client_context, pair.client);
    CHECK(client->handshake() == IoStatus::would_block);  // the ClientHello is out

    std::array<std::uint8_t, 512> buffer{};
    const IoResult r = server->read(buffer);
    CHECK(r.status == IoStatus::error);
    CHECK(server->last_error().find("TLS ClientHello arrived on a plaintext port") != std::string::npos);

    pair.close_server();  // what the loop then does
    IoStatus c = IoStatus::would_block;
    for (int i = 0; i < 10 && c == IoStatus::would_block; ++i) {
        c = client->handshake();
    }
    CHECK(c == IoStatus::closed);
    CHECK(client->last_error().find("server closed the connection during the TLS handshake (a plaintext server closes on a TLS ClientHello") != std::string::npos);
}

TEST_CASE("a plain transport without the check passes a first byte of 0x16 through") {
    SocketPair pair;
    auto server = make_plain_transport(pair.server);
    auto client = make_plain_transport(pair.client);
    const std::vector<std::uint8_t> bytes = {0x16, 0x03, 0x01, 0x00};
    CHECK(transfer(*client, *server, bytes) == bytes);
}

TEST_CASE("TLS with a pre-shared key: both ends agree, name the identity and move bytes exactly") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk",
                                      "desktop:" + key_b + "\npi-bench:" + key_a + "\n");
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "pi-bench:" + key_a + "\n");
    CHECK(server_context->summary() == "TLS 1.3 with pre-shared keys (2 identities)");
    CHECK(server_context->uses_psk());
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    auto client = make_tls_transport(*client_context, pair.client);
    CHECK(server->handshaking());
    CHECK(client->handshaking());
    std::array<std::uint8_t, 8> early{};
    CHECK(server->read(early).status == IoStatus::would_block);  // nothing moves during the handshake

    const HandshakeOutcome outcome = run_handshakes(*server, *client);
    INFO(server->last_error(), " / ", client->last_error());
    REQUIRE(outcome.server == IoStatus::ok);
    REQUIRE(outcome.client == IoStatus::ok);
    CHECK_FALSE(server->handshaking());
    CHECK(server->identity() == "pi-bench");
    CHECK(client->identity() == "pi-bench");
    CHECK(server->wanted_events(false) == EPOLLIN);
    CHECK(server->wanted_events(true) == (EPOLLIN | EPOLLOUT));
    CHECK(client->write({}).status == IoStatus::ok);

    const auto up = pattern(200'000);  // many records, many partial writes
    CHECK(transfer(*client, *server, up) == up);
    const auto down = pattern(70'000);
    CHECK(transfer(*server, *client, down) == down);

    // A close_notify arrives as `closed`.
    client->shutdown();
    std::array<std::uint8_t, 64> buffer{};
    IoResult r{IoStatus::would_block, 0};
    for (int i = 0; i < 100 && r.status == IoStatus::would_block; ++i) {
        pollfd fd{server->fd(), POLLIN, 0};
        (void)::poll(&fd, 1, 1000);
        r = server->read(buffer);
    }
    CHECK(r.status == IoStatus::closed);
    CHECK(server->last_error().find("close_notify") != std::string::npos);
}

TEST_CASE("decrypted bytes left inside TLS are reported as buffered input") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi:" + key_a + "\n");
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "pi:" + key_a + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    auto client = make_tls_transport(*client_context, pair.client);
    const HandshakeOutcome outcome = run_handshakes(*server, *client);
    REQUIRE(outcome.server == IoStatus::ok);
    REQUIRE(outcome.client == IoStatus::ok);
    const auto bytes = pattern(1000);
    REQUIRE(client->write(bytes).bytes == bytes.size());
    std::array<std::uint8_t, 10> small{};
    IoResult r{IoStatus::would_block, 0};
    for (int i = 0; i < 100 && r.status == IoStatus::would_block; ++i) {
        pollfd fd{server->fd(), POLLIN, 0};
        (void)::poll(&fd, 1, 1000);
        r = server->read(small);
    }
    REQUIRE(r.status == IoStatus::ok);
    CHECK(r.bytes == small.size());
    CHECK(server->has_buffered_input());
    std::size_t total = r.bytes;
    while (server->has_buffered_input()) {
        const IoResult more = server->read(small);
        REQUIRE(more.status == IoStatus::ok);
        total += more.bytes;
    }
    CHECK(total == bytes.size());
    CHECK(server->read(small).status == IoStatus::would_block);
    CHECK_FALSE(server->has_buffered_input());
}

TEST_CASE("reading one byte at a time yields the same stream") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi:" + key_a + "\n");
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "pi:" + key_a + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    auto client = make_tls_transport(*client_context, pair.client);
    const HandshakeOutcome outcome = run_handshakes(*server, *client);
    REQUIRE(outcome.server == IoStatus::ok);
    REQUIRE(outcome.client == IoStatus::ok);
    const auto bytes = pattern(3000);
    for (std::size_t i = 0; i < bytes.size(); i += 300) {
        REQUIRE(client->write(std::span(bytes).subspan(i, 300)).bytes == 300);
    }
    std::vector<std::uint8_t> received;
    std::array<std::uint8_t, 1> one{};
    for (int round = 0; round < 10000 && received.size() < bytes.size(); ++round) {
        const IoResult r = server->read(one);
        REQUIRE(r.status != IoStatus::error);
        if (r.status == IoStatus::ok) {
            REQUIRE(r.bytes == 1);
            received.push_back(one[0]);
        } else {
            pollfd fd{server->fd(), POLLIN, 0};
            (void)::poll(&fd, 1, 1000);
        }
    }
    CHECK(received == bytes);
}

TEST_CASE("records read ahead of one read() are reported, so a loop that reads once per wake-up loses nothing") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi:" + key_a + "\n");
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "pi:" + key_a + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    auto client = make_tls_transport(*client_context, pair.client);
    const HandshakeOutcome outcome = run_handshakes(*server, *client);
    REQUIRE(outcome.server == IoStatus::ok);
    REQUIRE(outcome.client == IoStatus::ok);
    const auto bytes = pattern(18 * 100);
    for (std::size_t i = 0; i < bytes.size(); i += 18) {  // one record per 18-byte message
        REQUIRE(client->write(std::span(bytes).subspan(i, 18)).bytes == 18);
    }
    std::array<std::uint8_t, 65536> buffer{};
    const IoResult first = server->read(buffer);  // the loop's one read per wake-up
    REQUIRE(first.status == IoStatus::ok);
    std::vector<std::uint8_t> received(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(first.bytes));
    pollfd fd{server->fd(), POLLIN, 0};
    CHECK(::poll(&fd, 1, 0) == 0);  // the socket is drained: epoll would not wake the loop...
    int reads = 0;
    while (server->has_buffered_input() && reads++ < 1000) {  // ...so the transport says so
        const IoResult more = server->read(buffer);
        if (more.status != IoStatus::ok) {
            break;
        }
        received.insert(received.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(more.bytes));
    }
    CHECK(received == bytes);
    CHECK_FALSE(server->has_buffered_input());
}

TEST_CASE("bytes that came in with the end of the handshake are reported as buffered input") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi:" + key_a + "\n");
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "pi:" + key_a + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    auto client = make_tls_transport(*client_context, pair.client);
    const std::vector<std::uint8_t> proposal = {'v', 0x04, 0x00, 0x00, 0x00, 0x02};
    // The client finishes first (TLS 1.3) and sends at once, before the server has read its
    // Finished: both then arrive in one recv() of the server.
    IoStatus c = IoStatus::would_block;
    IoStatus s = IoStatus::would_block;
    for (int round = 0; round < 50 && c == IoStatus::would_block; ++round) {
        c = client->handshake();
        if (c == IoStatus::would_block) {
            s = server->handshake();
        }
    }
    REQUIRE(c == IoStatus::ok);
    REQUIRE(s == IoStatus::would_block);
    REQUIRE(client->write(proposal).bytes == proposal.size());
    REQUIRE(server->handshake() == IoStatus::ok);
    pollfd fd{server->fd(), POLLIN, 0};
    CHECK(::poll(&fd, 1, 0) == 0);  // nothing left for epoll to report...
    CHECK(server->has_buffered_input());  // ...but the proposal is inside the transport
    std::array<std::uint8_t, 64> buffer{};
    const IoResult r = server->read(buffer);
    REQUIRE(r.status == IoStatus::ok);
    CHECK(std::vector<std::uint8_t>(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(r.bytes)) == proposal);
}

TEST_CASE("a wrong pre-shared key is refused, named on both sides") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi-bench:" + key_a + "\n");
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "pi-bench:" + key_b + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    auto client = make_tls_transport(*client_context, pair.client);
    const HandshakeOutcome outcome = run_handshakes(*server, *client);
    CHECK(outcome.server == IoStatus::error);
    CHECK(outcome.client == IoStatus::error);
    CHECK(server->last_error() == "wrong pre-shared key for identity 'pi-bench' (the binder does not verify)");
    CHECK(client->last_error().find("wrong pre-shared key for identity 'pi-bench'?") != std::string::npos);
    CHECK(server->identity().empty());
    std::array<std::uint8_t, 8> buffer{};
    CHECK(server->read(buffer).status == IoStatus::error);  // errors stick
    CHECK(server->handshake() == IoStatus::error);
}

TEST_CASE("an unknown PSK identity is refused, named on the server") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi-bench:" + key_a + "\n");
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "intruder:" + key_a + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    auto client = make_tls_transport(*client_context, pair.client);
    const HandshakeOutcome outcome = run_handshakes(*server, *client);
    CHECK(outcome.server == IoStatus::error);
    CHECK(outcome.client == IoStatus::error);
    CHECK(server->last_error() == "unknown PSK identity 'intruder'");
    CHECK(client->last_error().find("the server refused the handshake") != std::string::npos);
}

TEST_CASE("a plaintext client on a TLS port is refused before OpenSSL reads a byte") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi-bench:" + key_a + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    auto client = make_plain_transport(pair.client);
    CHECK(server->handshake() == IoStatus::would_block);  // nothing yet
    CHECK(server->wanted_events(false) == EPOLLIN);
    const std::vector<std::uint8_t> proposal = {'v', 0x04, 0x00, 0x00, 0x00, 0x02};
    REQUIRE(client->write(proposal).bytes == proposal.size());
    CHECK(server->handshake() == IoStatus::error);
    CHECK(server->last_error() ==
          "a plaintext client on a TLS port: its first byte is 0x76 ('v', a tcpcan version proposal), not a TLS "
          "handshake record");
}

TEST_CASE("a TLS client facing a server that speaks first in plaintext names it") {
    TempDir dir;
    auto client_context = psk_context(dir, TlsRole::client, "client.psk", "pi:" + key_a + "\n");
    SocketPair pair;
    auto client = make_tls_transport(*client_context, pair.client);
    CHECK(client->handshake() == IoStatus::would_block);
    const std::string greeting = "< hi >";
    REQUIRE(::write(pair.server, greeting.data(), greeting.size()) == static_cast<ssize_t>(greeting.size()));
    CHECK(client->handshake() == IoStatus::error);
    CHECK(client->last_error().find("the server does not speak TLS") != std::string::npos);
    CHECK(client->last_error().find("0x3C ('<', a socketcand message)") != std::string::npos);
}

TEST_CASE("a client that closes before its ClientHello is reported as closed") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi:" + key_a + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    pair.close_client();
    CHECK(server->handshake() == IoStatus::closed);
    CHECK(server->last_error() == "the client closed the connection before its TLS ClientHello");
}

TEST_CASE("a handshake that stalls halfway stays would_block: the loop's deadline ends it") {
    TempDir dir;
    auto server_context = psk_context(dir, TlsRole::server, "server.psk", "pi:" + key_a + "\n");
    SocketPair pair;
    auto server = make_tls_transport(*server_context, pair.server);
    const std::uint8_t partial_record[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
    REQUIRE(::write(pair.client, partial_record, sizeof partial_record) == sizeof partial_record);
    for (int i = 0; i < 5; ++i) {
        CHECK(server->handshake() == IoStatus::would_block);
        CHECK(server->handshaking());
    }
    HandshakeLimit limit(2, 5'000'000);
    REQUIRE(limit.try_begin());
    const std::uint64_t started = 1'000'000;
    CHECK_FALSE(limit.expired(started, started + 4'999'999));
    CHECK(limit.expired(started, started + 5'000'000));
    CHECK(limit.deadline(started) == 6'000'000);
}

TEST_CASE("HandshakeLimit bounds pending handshakes and counts refusals") {
    HandshakeLimit limit(3, 1'000);
    CHECK(limit.try_begin());
    CHECK(limit.try_begin());
    CHECK(limit.try_begin());
    CHECK(limit.pending() == 3);
    CHECK_FALSE(limit.try_begin());
    CHECK_FALSE(limit.try_begin());
    CHECK(limit.refused() == 2);
    limit.end();
    CHECK(limit.pending() == 2);
    CHECK(limit.try_begin());
    for (int i = 0; i < 10; ++i) {
        limit.end();  // more ends than begins do not wrap around
    }
    CHECK(limit.pending() == 0);
    CHECK(limit.try_begin());
}

TEST_CASE("TlsContext::create refuses bad option sets and bad files, naming them") {
    TempDir dir;
    TlsOptions none;
    CHECK(TlsContext::create(none).error == "TLS needs --tls-psk-file, or --tls-cert, --tls-key and --tls-ca");

    TlsOptions both;
    both.psk_file = "a.psk";
    both.cert_file = "c.pem";
    CHECK(TlsContext::create(both).error.find("exclude each other") != std::string::npos);

    TlsOptions partial;
    partial.cert_file = "c.pem";
    CHECK(TlsContext::create(partial).error == "certificate mode needs --tls-cert, --tls-key and --tls-ca; missing: --tls-key, --tls-ca");

    TlsOptions open_key;
    open_key.psk_file = dir.write("open.psk", "pi:" + key_a + "\n", 0644);
    const TlsContextResult refused = TlsContext::create(open_key);
    CHECK(refused.context == nullptr);
    CHECK(refused.error.find("readable or writable by group or others (mode 0644)") != std::string::npos);

    TlsOptions open_private_key;
    open_private_key.cert_file = dir.write("c.pem", "x");
    open_private_key.key_file = dir.write("k.pem", "x", 0640);
    open_private_key.ca_file = dir.write("ca.pem", "x");
    CHECK(TlsContext::create(open_private_key).error.find("k.pem holds secret keys but is readable") != std::string::npos);

    TlsOptions garbage;
    garbage.cert_file = dir.write("c2.pem", "not a certificate");
    garbage.key_file = dir.write("k2.pem", "not a key");
    garbage.ca_file = dir.write("ca2.pem", "x");
    CHECK(TlsContext::create(garbage).error.find("cannot load the certificate") != std::string::npos);
}
