// SocketcandLink (port/linux/socketcand_link.hpp) driven by hand, as the bridge drives it:
// bytes in, output out, time as a number.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>

#include "log.hpp"
#include "socketcand_link.hpp"

using namespace tcpcan;
using namespace tcpcan::linux_port;

namespace {

constexpr std::uint64_t ms = 1000;

struct Fixture {
    BusDirectory buses{{"vcan0", "-"}};
    LogLimiter limiter;
    SocketcandOptions options;
    SocketcandLink link{"127.0.0.1:5000", buses, options, limiter, 1'000'000};
    std::uint64_t now = 1'000'000;

    void send(std::string_view text) {
        link.receive({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, now);
    }
    void send_bytewise(std::string_view text) {
        for (char c : text) {
            send(std::string_view(&c, 1));
        }
    }
    // What the transport takes now (all of what output() offers).
    std::string take() {
        const auto out = link.output();
        std::string s(reinterpret_cast<const char*>(out.data()), out.size());
        link.consume_output(out.size());
        return s;
    }
    void advance(std::uint64_t us) {
        now += us;
        link.tick(now);
    }
    // The handshake python-can makes, each reply read alone.
    void open_raw(std::string_view bus = "vcan0") {
        CHECK(take() == "< hi >");
        send("< open " + std::string(bus) + " >");
        CHECK(take() == "< ok >");
        advance(options.ok_hold_us);
        send("< rawmode >");
        CHECK(take() == "< ok >");
        advance(options.ok_hold_us);
    }
};

Frame frame(std::uint32_t id, std::initializer_list<std::uint8_t> data, std::uint8_t flags = 0,
            std::uint64_t ts = 1'700'000'000'000'000) {
    Frame f;
    f.id = id;
    f.flags = flags;
    f.timestamp_us = ts;
    for (std::uint8_t b : data) {
        f.data[f.len++] = b;
    }
    return f;
}

}  // namespace

TEST_CASE("socketcand link: hi, open, rawmode, then frames both ways") {
    Fixture f;
    CHECK_FALSE(f.link.agreed());
    f.open_raw();
    CHECK(f.link.agreed());
    CHECK(f.link.bus() == 0);
    CHECK(f.link.mode() == SocketcandLink::Mode::raw);
    f.link.offer(frame(0x123, {0x11, 0x22}), f.now);
    f.link.offer(frame(0x1ABCDEF, {}, frame_flag::extended), f.now);
    CHECK(f.take() == "< frame 123 1700000000.000000 1122 >< frame 01ABCDEF 1700000000.000000  >");
    f.send("< send 7FF 2 de ad >< send 12345 0  >");
    const Frame* a = f.link.peek_for_bus(f.now, 0);
    REQUIRE(a != nullptr);
    CHECK(*a == frame(0x7FF, {0xDE, 0xAD}, 0, 0));
    f.link.pop_for_bus();
    const Frame* b = f.link.peek_for_bus(f.now, 0);
    REQUIRE(b != nullptr);
    CHECK(*b == frame(0x12345, {}, frame_flag::extended, 0));
    f.link.pop_for_bus();
    CHECK(f.link.peek_for_bus(f.now, 0) == nullptr);
    CHECK(f.link.counters().frames_to_client == 2);
    CHECK(f.link.counters().frames_from_client == 2);
}

TEST_CASE("socketcand link: the second bus by name; commands split byte by byte") {
    Fixture f;
    CHECK(f.take() == "< hi >");
    f.send_bytewise("< open - >");
    CHECK(f.take() == "< ok >");
    CHECK(f.link.bus() == 1);
    f.advance(f.options.ok_hold_us);
    f.send_bytewise("  <rawmode>\n");
    CHECK(f.take() == "< ok >");
    f.advance(f.options.ok_hold_us);
    f.send_bytewise("< send 80000123 2 ffffff80 1 >");
    const Frame* a = f.link.peek_for_bus(f.now, 0);
    REQUIRE(a != nullptr);
    CHECK(*a == frame(0x123, {0x80, 0x01}, frame_flag::extended, 0));
}

TEST_CASE("socketcand link: < ok > goes out alone; what follows waits until its pause is over") {
    Fixture f;
    CHECK(f.take() == "< hi >");
    f.send("< open vcan0 >");
    f.advance(f.options.ok_hold_us);  // the ok was not handed over yet: its pause has not begun
    f.send("< rawmode >");
    f.link.offer(frame(0x1, {0x01}), f.now);
    // Only the first ok is offered; the second and the frame wait.
    CHECK(f.take() == "< ok >");
    CHECK(f.link.output().empty());
    CHECK(f.link.next_deadline() == f.now + f.options.ok_hold_us);
    f.advance(f.options.ok_hold_us - 1);
    CHECK(f.link.output().empty());
    f.advance(1);
    CHECK(f.take() == "< ok >");  // the second ok, alone too
    CHECK(f.link.output().empty());
    f.advance(f.options.ok_hold_us);
    CHECK(f.take() == "< frame 001 1700000000.000000 01 >");
}

TEST_CASE("socketcand link: an unknown bus is refused and the connection closes") {
    Fixture f;
    CHECK(f.take() == "< hi >");
    f.send("< open can7 >");
    CHECK(f.link.closed());
    CHECK(f.take() == "< error could not open bus >");
    CHECK_FALSE(f.link.agreed());
    CHECK(f.link.read_budget() == 0);
}

TEST_CASE("socketcand link: unknown and unsupported commands are answered and the connection goes on") {
    Fixture f;
    CHECK(f.take() == "< hi >");
    f.send("< rawmode >");
    CHECK(f.take() == "< error open a bus first >");
    f.send("< echo >");
    CHECK(f.take() == "< echo >");
    f.send("< open vcan0 >");
    CHECK(f.take() == "< ok >");
    f.advance(f.options.ok_hold_us);
    f.send("< subscribe 0 0 123 >< bcmmode >< isotpmode >< sendrtr 123 0 >< dance >");
    CHECK(f.take() ==
          "< error bcm mode is not supported by this server, use rawmode >"
          "< error bcm mode is not supported by this server, use rawmode >"
          "< error isotp mode is not supported by this server >< error remote frames are not supported >"
          "< error unknown command >");
    f.send("< send 123 9 1 2 3 4 5 6 7 8 9 >< send 12G 0 >< send 123 2 11 >");
    CHECK(f.take() ==
          "< error more than 8 data bytes (CAN FD needs the fdmode command first) >< error identifier is not hex >"
          "< error length does not match the number of data bytes >");
    CHECK_FALSE(f.link.closed());
    CHECK(f.link.counters().refused_sends == 4);
    CHECK(f.link.peek_for_bus(f.now, 0) == nullptr);
    f.send("< send 123 1 aa >");  // BCM mode takes a single send, as socketcand does
    CHECK(f.link.peek_for_bus(f.now, 0) != nullptr);
}

TEST_CASE("socketcand link: bytes outside a message and overlong messages close with a reason") {
    {
        Fixture f;
        CHECK(f.take() == "< hi >");
        f.send("hello");
        CHECK(f.link.closed());
        CHECK(f.take() == "< error text outside the angle brackets of a message >");
    }
    {
        Fixture f;
        f.open_raw();
        f.send("<");
        for (int i = 0; i < 9 && !f.link.closed(); ++i) {
            f.send(std::string(1000, 'x'));
        }
        CHECK(f.link.closed());
    }
}

TEST_CASE("socketcand link: remote frames and unasked CAN FD are dropped and counted; fdmode carries FD") {
    Fixture f;
    f.open_raw();
    f.link.offer(frame(0x123, {}, frame_flag::remote), f.now);
    Frame fd = frame(0x123, {}, frame_flag::fd);
    fd.len = 12;
    f.link.offer(fd, f.now);
    CHECK(f.link.output().empty());
    CHECK(f.link.counters().drop_remote == 1);
    CHECK(f.link.counters().drop_fd == 1);
    CHECK(f.link.drops() == 2);
    CHECK(f.link.describe_drops().find("remote 1") != std::string::npos);
    f.send("< fdmode >");
    CHECK(f.take() == "< ok >");
    f.advance(f.options.ok_hold_us);
    f.link.offer(fd, f.now);
    CHECK(f.take() == "< frame 123 1700000000.000000 000000000000000000000000 >");
    f.send("< send 123 C 1 2 3 4 5 6 7 8 9 a b c >");
    const Frame* to_bus = f.link.peek_for_bus(f.now, 0);
    REQUIRE(to_bus != nullptr);
    CHECK(to_bus->is_fd());
    CHECK(to_bus->len == 12);
    // Error frames: socketcand's < error CLASS TS >.
    Frame err = frame(0x004, {0, 0, 0, 0, 0, 0, 0, 0}, frame_flag::error);
    f.link.offer(err, f.now);
    CHECK(f.take() == "< error 004 1700000000.000000 >");
}

TEST_CASE("socketcand link: frames before rawmode are not sent; a slow client loses frames, not replies") {
    Fixture f;
    CHECK(f.take() == "< hi >");
    f.send("< open vcan0 >");
    CHECK(f.take() == "< ok >");
    f.advance(f.options.ok_hold_us);
    f.link.offer(frame(0x1, {1}), f.now);
    CHECK(f.link.output().empty());
    CHECK(f.link.counters().not_in_raw_mode == 1);
    CHECK(f.link.drops() == 0);
    f.send("< rawmode >");
    CHECK(f.take() == "< ok >");
    f.advance(f.options.ok_hold_us);
    // The client reads nothing: frames fill the output up to the reply reserve, then drop.
    for (int i = 0; i < 4000; ++i) {
        f.link.offer(frame(0x1, {1, 2, 3, 4, 5, 6, 7, 8}), f.now);
    }
    CHECK(f.link.counters().drop_output_full > 0);
    CHECK_FALSE(f.link.has_room(1));
    CHECK(f.link.read_budget() > 0);
    f.send("< echo >");
    const std::string out = f.take();
    CHECK(out.size() > SocketcandLink::output_capacity - SocketcandLink::reply_reserve - 64);
    CHECK(out.substr(out.size() - 8) == "< echo >");
    CHECK(f.link.has_room(1));
}

TEST_CASE("socketcand link: control mode sends < stat > at the asked interval") {
    Fixture f;
    CHECK(f.take() == "< hi >");
    f.send("< open vcan0 >");
    CHECK(f.take() == "< ok >");
    f.advance(f.options.ok_hold_us);
    f.send("< statistics 100 >");
    CHECK(f.take() == "< error statistics needs controlmode >");
    f.send("< send 123 2 1 2 >");
    f.link.pop_for_bus();
    f.link.offer(frame(0x5, {1, 2, 3}), f.now);
    f.send("< controlmode >");
    CHECK(f.take() == "< ok >");
    f.advance(f.options.ok_hold_us);
    f.send("< statistics 100 >");
    CHECK(f.link.next_deadline() == f.now + 100 * ms);
    f.advance(99 * ms);
    CHECK(f.link.output().empty());
    f.advance(1 * ms);
    CHECK(f.take() == "< stat 3 1 2 1 >");
    f.advance(100 * ms);
    CHECK(f.take() == "< stat 3 1 2 1 >");
    f.send("< statistics 0 >");
    f.advance(1000 * ms);
    CHECK(f.link.output().empty());
    f.send("< statistics 1 >");  // at least 10 ms apart
    CHECK(f.link.next_deadline() == f.now + 10 * ms);
}

TEST_CASE("socketcand link: a client that never reads its replies is closed, memory stays bounded") {
    Fixture f;
    CHECK(f.take() == "< hi >");
    std::size_t pos = 0;
    std::size_t rounds = 0;
    while (!f.link.closed() && rounds < 10000) {
        const std::size_t budget = f.link.read_budget();
        if (budget == 0) {
            break;  // TCP pushes back: the bridge stops reading
        }
        std::string chunk;
        for (std::size_t i = 0; i < budget; ++i) {
            chunk += "<x>"[(pos + i) % 3];
        }
        pos += budget;
        f.send(chunk);
        ++rounds;
    }
    CHECK(f.link.read_budget() == 0);
    CHECK(f.link.output().size() <= SocketcandLink::output_capacity);
    CHECK_FALSE(f.link.closed());  // the budget held it back before any reply was lost
}

TEST_CASE("socketcand link: a client that opens no bus in time is closed with a reason") {
    Fixture f;
    CHECK(f.take() == "< hi >");
    CHECK(f.link.next_deadline() == f.now + f.options.open_timeout_us);
    f.send("< echo >");
    CHECK(f.take() == "< echo >");
    f.advance(f.options.open_timeout_us - 1);
    CHECK_FALSE(f.link.closed());
    f.advance(1);
    CHECK(f.link.closed());
    CHECK(f.take() == "< error no bus opened in time >");

    Fixture opened;
    opened.open_raw();
    opened.advance(10 * opened.options.open_timeout_us);
    CHECK_FALSE(opened.link.closed());
}

TEST_CASE("socketcand link: a bus by its interface name, when only one bus has it; a tied listener's bus only") {
    LogLimiter limiter;
    BusDirectory buses{{"vcan0", "-", "fd:3,4"}, {"vcan0", "tcpcan", "tcpcan"}};
    auto open = [&](std::string_view name, std::optional<std::size_t> tied) {
        SocketcandLink link("peer", buses, SocketcandOptions{}, limiter, 0, tied);
        const std::string text = "< open " + std::string(name) + " >";
        link.receive({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, 0);
        return link.agreed() ? static_cast<int>(link.bus()) : -1;
    };
    CHECK(open("vcan0", std::nullopt) == 0);
    CHECK(open("fd:3,4", std::nullopt) == 2);
    CHECK(open("tcpcan", std::nullopt) == -1);  // two buses have it: ambiguous
    buses.interfaces[2] = "other";
    CHECK(open("tcpcan", std::nullopt) == 1);
    CHECK(open("-", 1) == 1);
    CHECK(open("vcan0", 1) == -1);
    CHECK(open("can9", std::nullopt) == -1);
}
