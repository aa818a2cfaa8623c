// The dialect names, the --listen specification and the Link factory (dialect.hpp).
#include <doctest/doctest.h>

#include <string>

#include "dialect.hpp"
#include "stdio_port.hpp"
#include "tcpcan_link.hpp"

using namespace tcpcan;
using namespace tcpcan::linux_port;

TEST_CASE("dialect names: every dialect round-trips through its command-line name") {
    for (Dialect d : all_dialects) {
        const auto back = parse_dialect(dialect_name(d));
        REQUIRE(back.has_value());
        CHECK(*back == d);
    }
    CHECK(dialect_name(Dialect::cannelloni_udp) == "cannelloni-udp");
    CHECK_FALSE(parse_dialect("TCPCAN").has_value());  // exact names only
    CHECK_FALSE(parse_dialect("").has_value());
    CHECK_FALSE(parse_dialect("cannelloni_udp").has_value());
    CHECK(dialect_list() == "tcpcan, socketcand, cannelloni, cannelloni-udp or canip");
}

TEST_CASE("--listen: the accepted forms") {
    struct Case {
        const char* text;
        Dialect dialect;
        const char* address;
        std::uint16_t port;
        const char* bus;
    };
    const Case cases[] = {
        {"tcpcan@20010", Dialect::tcpcan, "", 20010, ""},
        {"socketcand@127.0.0.1:29536", Dialect::socketcand, "127.0.0.1", 29536, ""},
        {"canip@3334:can1", Dialect::canip, "", 3334, "can1"},
        {"canip@3334:-", Dialect::canip, "", 3334, "-"},
        {"cannelloni@localhost:20000", Dialect::cannelloni, "localhost", 20000, ""},
        {"cannelloni-udp@0.0.0.0:20000:vcan0", Dialect::cannelloni_udp, "0.0.0.0", 20000, "vcan0"},
        {"canip@[::1]:3333", Dialect::canip, "::1", 3333, ""},
        {"canip@[::1]:3333:can0", Dialect::canip, "::1", 3333, "can0"},
        {"tcpcan@1", Dialect::tcpcan, "", 1, ""},
        {"tcpcan@5000:fd:3,4", Dialect::tcpcan, "", 5000, "fd:3,4"},
        {"tcpcan@host:5000:fd:3,4", Dialect::tcpcan, "host", 5000, "fd:3,4"},
        {"tcpcan@65535", Dialect::tcpcan, "", 65535, ""},
    };
    for (const Case& c : cases) {
        const std::string text = c.text;
        CAPTURE(text);
        const ListenParse r = parse_listen_spec(c.text);
        REQUIRE_MESSAGE(r.ok, r.error);
        CHECK(r.spec.dialect == c.dialect);
        CHECK(r.spec.address == c.address);
        CHECK(r.spec.port == c.port);
        CHECK(r.spec.bus == c.bus);
        CHECK(r.spec.text == c.text);
        CHECK(r.error.empty());
    }
}

TEST_CASE("--listen: each mistake is named") {
    struct Case {
        const char* text;
        const char* says;
    };
    const Case cases[] = {
        {"20010", "no '@' after the dialect"},
        {"@20010", "no dialect before '@'"},
        {"tcp@20010", "unknown dialect 'tcp', expected tcpcan, socketcand"},
        {"tcpcan@", "no port after '@'"},
        {"tcpcan@0", "port 0 is out of range 1 to 65535"},
        {"tcpcan@65536", "port 65536 is out of range"},
        {"tcpcan@99999999999999999999", "is out of range 1 to 65535"},
        {"tcpcan@0x10", "port '0x10' is not a decimal number"},
        {"tcpcan@+5", "port '+5' is not a decimal number"},
        {"tcpcan@host:", "no port"},
        {"tcpcan@:20010", "empty address before ':'"},
        {"tcpcan@20010:", "empty bus name after ':'"},
        {"tcpcan@host:20010:", "empty bus name after ':'"},
        {"tcpcan@::1:20010", "empty address before ':' (an IPv6 address goes in brackets"},
        {"tcpcan@[::1", "'[' without ']'"},
        {"tcpcan@[]:1", "empty address in '[]'"},
        {"tcpcan@[::1]", "no ':PORT' after the IPv6 address"},
        {"tcpcan@[::1]20010", "no ':PORT' after the IPv6 address"},
        {"tcpcan@[::1]:1:", "empty bus name after ':'"},
        {"tcpcan@localhost:can0", "port 'can0' is not a decimal number"},
    };
    for (const Case& c : cases) {
        const std::string text = c.text;
        CAPTURE(text);
        const ListenParse r = parse_listen_spec(c.text);
        CHECK_FALSE(r.ok);
        CHECK_MESSAGE(r.error.find(c.says) != std::string::npos, r.error);
        CHECK(r.error.rfind("--listen '" + std::string(c.text) + "': ", 0) == 0);  // names the entry
    }
}

TEST_CASE("dialects: default ports, transports and who chooses the bus") {
    CHECK(default_port(Dialect::tcpcan) == 20010);
    CHECK(default_port(Dialect::socketcand) == 29536);
    CHECK(default_port(Dialect::cannelloni) == 20000);
    CHECK(default_port(Dialect::canip) == 3333);
    CHECK(is_datagram(Dialect::cannelloni_udp));
    CHECK_FALSE(is_datagram(Dialect::cannelloni));
    CHECK(peer_chooses_bus(Dialect::socketcand));
    CHECK(peer_chooses_bus(Dialect::tcpcan));
    CHECK_FALSE(peer_chooses_bus(Dialect::canip));
}

TEST_CASE("make_link: a tcpcan link, tied to the bus it is given") {
    LogLimiter limiter(5, 1'000'000);
    BusDirectory buses{{"vcan0", "vcan1"}};
    FilterSet<4> subscription;
    LinkSetup setup;
    setup.dialect = Dialect::tcpcan;
    setup.name = "127.0.0.1:5000";
    setup.session.role = Role::server;
    setup.subscription = &subscription;
    setup.buses = &buses;
    setup.bus = 1;
    setup.limiter = &limiter;
    setup.now = 1000;
    MadeLink made = make_link(setup);
    REQUIRE(made.link != nullptr);
    CHECK(made.error.empty());
    CHECK(made.link->name() == "127.0.0.1:5000");
    CHECK(made.link->bus() == 1);
    CHECK_FALSE(made.link->agreed());  // nothing negotiated yet
    CHECK(dynamic_cast<TcpcanLink*>(made.link.get()) != nullptr);

    setup.bus.reset();  // not tied: the first bus until the peer asks for another
    setup.subscription = nullptr;
    made = make_link(setup);
    REQUIRE(made.link != nullptr);
    CHECK(made.link->bus() == 0);
}

TEST_CASE("make_link: a dialect this build lacks is refused with a reason, not a null link") {
    LogLimiter limiter(5, 1'000'000);
    for (Dialect d : all_dialects) {
        CAPTURE(dialect_name(d));
        std::string why;
        const bool built = dialect_built(d, Role::server, why);
        LinkSetup setup;
        setup.dialect = d;
        setup.name = "peer";
        setup.limiter = &limiter;
        const MadeLink made = make_link(setup);
        CHECK(built == (made.link != nullptr));
        if (!built) {
            CHECK(why.find(std::string(dialect_name(d))) != std::string::npos);
            CHECK(made.error == why);
        }
    }
    std::string why;
    CHECK(dialect_built(Dialect::tcpcan, Role::client, why));
}

TEST_CASE("--can fd:IN,OUT: two open descriptors, or a message naming what is wrong") {
    int in = -1, out = -1;
    std::string error;
    CHECK_FALSE(parse_fd_bus("vcan0", in, out, error));  // not this form at all: no message
    CHECK(error.empty());
    CHECK_FALSE(parse_fd_bus("-", in, out, error));
    CHECK(error.empty());
    REQUIRE(parse_fd_bus("fd:0,2", in, out, error));  // stdin and stderr are open in a test run
    CHECK(in == 0);
    CHECK(out == 2);
    for (const char* bad : {"fd:", "fd:3", "fd:3,", "fd:,4", "fd:a,4", "fd:3,4,5", "fd:-1,2", "fd:9999999,1"}) {
        CAPTURE(std::string(bad));
        error.clear();
        CHECK_FALSE(parse_fd_bus(bad, in, out, error));
        CHECK(error.find("expected fd:IN,OUT") != std::string::npos);
    }
    error.clear();
    CHECK_FALSE(parse_fd_bus("fd:0,987", in, out, error));
    CHECK(error == "--can fd:0,987: descriptor 987 is not open");
}
