// CanipLink (canip_peer 4.1/4.0 as a Link) and DetectLink (tcpcan or canip from the first
// bytes), driven in memory with the time as an input.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include <tcpcan/dialect/canip.hpp>
#include <tcpcan/filter.hpp>

#include "canip_link.hpp"
#include "detect_link.hpp"
#include "log.hpp"

using namespace tcpcan;
using namespace tcpcan::linux_port;

namespace {

constexpr std::uint64_t ms = 1000;

std::vector<std::uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

std::string take_output(Link& link) {
    const auto out = link.output();
    std::string s(out.begin(), out.end());
    link.consume_output(out.size());
    return s;
}

// A classic frame on canip_peer's wire, written out by hand: flags, dlc, id LE, 8 data bytes.
std::vector<std::uint8_t> wire_frame(std::uint32_t id, bool extended, std::vector<std::uint8_t> data,
                                     std::vector<std::uint8_t> tail = {}) {
    std::vector<std::uint8_t> w{static_cast<std::uint8_t>(extended ? 1 : 0), static_cast<std::uint8_t>(data.size()),
                                static_cast<std::uint8_t>(id), static_cast<std::uint8_t>(id >> 8),
                                static_cast<std::uint8_t>(id >> 16), static_cast<std::uint8_t>(id >> 24)};
    data.resize(8, 0);
    w.insert(w.end(), data.begin(), data.end());
    w.insert(w.end(), tail.begin(), tail.end());
    return w;
}

std::vector<std::uint8_t> seq_tail(std::uint32_t seq) {
    return {static_cast<std::uint8_t>(seq >> 24), static_cast<std::uint8_t>(seq >> 16), static_cast<std::uint8_t>(seq >> 8),
            static_cast<std::uint8_t>(seq)};
}

std::vector<Frame> drain_bus(Link& link) {
    std::vector<Frame> frames;
    for (int i = 0; i < 10000; ++i) {
        const Frame* f = link.peek_for_bus(0, 0);
        if (f == nullptr) {
            break;
        }
        frames.push_back(*f);
        link.pop_for_bus();
    }
    return frames;
}

Frame classic(std::uint32_t id, std::uint8_t len, std::uint8_t flags = 0) {
    Frame f;
    f.id = id;
    f.len = len;
    f.flags = flags;
    for (std::uint8_t i = 0; i < len; ++i) {
        f.data[i] = static_cast<std::uint8_t>(0xA0 + i);
    }
    return f;
}

}  // namespace

TEST_CASE("canip link: hello both ways, features the intersection, frames both ways") {
    LogLimiter limiter;
    CanipOptions o;
    o.features = canip::feature::seq | canip::feature::ts;
    CanipLink link("peer", o, limiter, 0);
    CHECK(take_output(link) == "CANIP/4.1 FEAT=SEQ,TS\n");
    CHECK_FALSE(link.ready());

    auto in = bytes_of("CANIP/4.1 FEAT=SEQ\n");
    const auto f = wire_frame(0x123, false, {1, 2, 3}, seq_tail(0));
    in.insert(in.end(), f.begin(), f.end());
    for (std::uint8_t b : in) {  // one byte at a time
        link.receive(std::span<const std::uint8_t>(&b, 1), 1 * ms);
    }
    REQUIRE(link.ready());
    CHECK_FALSE(link.legacy());
    CHECK(link.features() == canip::feature::seq);
    const auto frames = drain_bus(link);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].id == 0x123);
    CHECK(frames[0].len == 3);
    CHECK(frames[0].data[2] == 3);

    Frame out = classic(0x18DAF110, 2, frame_flag::extended);
    link.offer(out, 2 * ms);
    link.offer(out, 2 * ms);
    const std::string sent = take_output(link);
    REQUIRE(sent.size() == 36);
    const std::vector<std::uint8_t> expect = wire_frame(0x18DAF110, true, {0xA0, 0xA1}, seq_tail(1));
    CHECK(std::vector<std::uint8_t>(sent.begin() + 18, sent.end()) == expect);  // numbered 0, then 1
}

TEST_CASE("canip link: what the wire cannot carry is dropped towards the peer and counted by cause") {
    LogLimiter limiter;
    CanipLink link("peer", CanipOptions{.start = CanipOptions::Start::legacy}, limiter, 0);
    REQUIRE(link.ready());
    CHECK(link.output().empty());  // a 4.0 peer gets no hello
    Frame fd = classic(0x100, 12, frame_flag::fd);
    Frame rtr = classic(0x100, 0, frame_flag::remote);
    Frame err = classic(0x4, 8, frame_flag::error);
    link.offer(fd, 0);
    link.offer(fd, 0);
    link.offer(rtr, 0);
    link.offer(err, 0);
    CHECK(link.output().empty());
    CHECK(link.stats().drop_fd == 2);
    CHECK(link.stats().drop_remote == 1);
    CHECK(link.stats().drop_error == 1);
    CHECK(link.drops() == 4);
    CHECK(link.describe_drops().find("CAN FD 2") != std::string::npos);
    link.offer(classic(0x7FF, 8), 0);
    CHECK(link.output().size() == 14);
    LinkTotals totals;
    link.add_totals(totals);
    CHECK(totals.dropped == 4);
    CHECK(totals.sent == 1);
}

TEST_CASE("canip link: SEQ gaps and duplicates are counted; duplicates do not reach the bus twice") {
    LogLimiter limiter;
    CanipLink link("peer", CanipOptions{}, limiter, 0);
    (void)take_output(link);
    std::vector<std::uint8_t> in = bytes_of("CANIP/4.1 FEAT=SEQ\n");
    for (std::uint32_t seq : {5u, 6u, 9u, 9u, 10u}) {  // canip_peer checks from the first number it sees
        const auto f = wire_frame(0x100 + seq, false, {}, seq_tail(seq));
        in.insert(in.end(), f.begin(), f.end());
    }
    link.receive(in, 0);
    REQUIRE(link.ready());
    const auto frames = drain_bus(link);
    CHECK(frames.size() == 4);
    CHECK(link.sequence().gaps == 1);
    CHECK(link.sequence().lost == 2);
    CHECK(link.sequence().duplicates == 1);
    CHECK(link.stats().drop_duplicate == 1);
}

TEST_CASE("canip link: a peer without a hello is 4.0, at its first frame or after 2 s") {
    LogLimiter limiter;
    SUBCASE("first frame") {
        CanipLink link("peer", CanipOptions{}, limiter, 0);
        link.receive(wire_frame(0x42, false, {9}), 1 * ms);
        REQUIRE(link.ready());
        CHECK(link.legacy());
        CHECK(link.features() == 0);
        CHECK(drain_bus(link).size() == 1);
    }
    SUBCASE("silence") {
        CanipLink link("peer", CanipOptions{}, limiter, 0);
        CHECK(link.next_deadline() == 2000 * ms);
        link.tick(1999 * ms);
        CHECK_FALSE(link.ready());
        link.tick(2000 * ms);
        CHECK(link.ready());
        CHECK(link.legacy());
    }
    SUBCASE("a hello begun and never ended is named") {
        CanipLink link("peer", CanipOptions{}, limiter, 0);
        link.receive(bytes_of("CANIP/4.1 FE"), 1 * ms);
        link.tick(2000 * ms);
        CHECK(link.closed());
        CHECK(link.error() == canip::Error::hello_unfinished);
    }
}

TEST_CASE("canip link: bad bytes close the link with a named reason") {
    LogLimiter limiter;
    SUBCASE("bad hello") {
        CanipLink link("peer", CanipOptions{}, limiter, 0);
        link.receive(bytes_of("CANIP/5.0\n"), 0);
        CHECK(link.closed());
        CHECK(link.error() == canip::Error::hello_unsupported_version);
    }
    SUBCASE("bad frame after the hello") {
        CanipLink link("peer", CanipOptions{}, limiter, 0);
        auto in = bytes_of("CANIP/4.1\n");
        auto f = wire_frame(0x100, false, {});
        f[1] = 12;  // dlc 12
        in.insert(in.end(), f.begin(), f.end());
        link.receive(in, 0);
        CHECK(link.closed());
        CHECK(link.error() == canip::Error::dlc_too_large);
        CHECK(link.read_budget() == 0);
    }
}

TEST_CASE("canip link: a full output drops and counts, and the dropped frame is a gap the peer sees") {
    LogLimiter limiter;
    CanipLink link("peer", CanipOptions{.start = CanipOptions::Start::legacy}, limiter, 0);
    const std::size_t fits = CanipLink::output_capacity / 14;
    for (std::size_t i = 0; i < fits + 3; ++i) {
        link.offer(classic(0x1, 1), 0);
    }
    CHECK(link.stats().drop_output_full == 3);
    CHECK_FALSE(link.has_room(1));
    link.consume_output(14 * 10);
    CHECK(link.has_room(1));
}

TEST_CASE("detect link, server: tcpcan, canip 4.1, canip 4.0, silence and garbage") {
    LogLimiter limiter;
    FilterSet<4> none;
    DetectOptions o;
    o.tcpcan.role = Role::server;
    auto make = [&] { return std::make_unique<DetectLink>("client", o, none, limiter, 0); };

    SUBCASE("a tcpcan proposal is answered in tcpcan") {
        auto link = make();
        CHECK(link->output().empty());  // the server never speaks first
        CHECK(link->read_budget() == first_bytes_needed);
        const std::vector<std::uint8_t> proposal{'v', 4, 0, 0, 0, 2};
        link->receive(proposal, 1 * ms);
        REQUIRE(link->tcpcan() != nullptr);
        const std::string reply = take_output(*link);
        CHECK(reply.substr(0, 6) == std::string("v\x04\x00\x00\x00\x02", 6));
    }
    SUBCASE("a canip hello, split byte by byte, is answered with ours") {
        auto link = make();
        const auto hello = bytes_of("CANIP/4.1 FEAT=SEQ,TS\n");
        for (std::uint8_t b : hello) {
            REQUIRE(link->read_budget() > 0);
            link->receive(std::span<const std::uint8_t>(&b, 1), 1 * ms);
        }
        REQUIRE(link->canip() != nullptr);
        CHECK(link->detected() == FirstBytes::canip_hello);
        CHECK(take_output(*link) == "CANIP/4.1 FEAT=SEQ\n");
        CHECK(link->ready());
        CHECK(link->canip()->features() == canip::feature::seq);
    }
    SUBCASE("a 4.0 frame makes a 4.0 link that sends no hello") {
        auto link = make();
        const auto f = wire_frame(0x321, false, {7, 7});
        link->receive(std::span<const std::uint8_t>(f).first(4), 1 * ms);
        link->receive(std::span<const std::uint8_t>(f).subspan(4), 1 * ms);
        REQUIRE(link->canip() != nullptr);
        CHECK(link->canip()->legacy());
        CHECK(link->output().empty());
        CHECK(drain_bus(*link).size() == 1);
    }
    SUBCASE("a silent client is tcpcan's to time out, as before") {
        o.tcpcan.negotiation_timeout_us = 1000 * ms;
        auto link = make();
        CHECK(link->next_deadline() == 1000 * ms);
        link->tick(5000 * ms);
        CHECK(link->canip() == nullptr);
        CHECK(link->closed());
    }
    SUBCASE("anything else goes to tcpcan, which names what is wrong, as before") {
        auto link = make();
        link->receive(bytes_of("GET / HTTP/1.1\r\n"), 1 * ms);
        CHECK(link->canip() == nullptr);
        CHECK(link->detected() == FirstBytes::unknown);
        CHECK(link->closed());
        CHECK(link->read_budget() == 0);
    }
    SUBCASE("'C' that does not go on as 'CANIP/' is tcpcan's too") {
        auto link = make();
        link->receive(bytes_of("CANI"), 1 * ms);
        CHECK_FALSE(link->closed());
        CHECK(link->read_budget() == 2);
        link->receive(bytes_of("X/4.1\n"), 1 * ms);
        CHECK(link->canip() == nullptr);
        CHECK(link->closed());
    }
}

TEST_CASE("detect link, client: a canip greeting, no greeting, and a late greeting") {
    LogLimiter limiter;
    FilterSet<4> none;
    DetectOptions o;
    o.tcpcan.role = Role::client;
    o.tcpcan.max_version = 2;
    auto make = [&] { return std::make_unique<DetectLink>("server", o, none, limiter, 0); };

    SUBCASE("a greeting at once: canip 4.1") {
        auto link = make();
        CHECK(link->output().empty());  // nothing proposed while waiting
        link->receive(bytes_of("CANIP/4.1 FEAT=SEQ\n"), 5 * ms);
        REQUIRE(link->canip() != nullptr);
        CHECK(take_output(*link) == "CANIP/4.1 FEAT=SEQ\n");
        CHECK(link->ready());
        CHECK(link->canip()->features() == canip::feature::seq);
    }
    SUBCASE("no greeting within the wait: a tcpcan proposal") {
        auto link = make();
        CHECK(link->next_deadline() == o.greeting_wait_us);
        link->tick(o.greeting_wait_us - 1);
        CHECK(link->output().empty());
        link->tick(o.greeting_wait_us);
        REQUIRE(link->tcpcan() != nullptr);
        CHECK(take_output(*link).substr(0, 6) == std::string("v\x04\x00\x00\x00\x02", 6));
        link->receive(std::vector<std::uint8_t>{'v', 4, 0, 0, 0, 2}, 300 * ms);
        CHECK(link->tcpcan()->version() == 2);
    }
    SUBCASE("a greeting after our proposal: a newline ends the server's line, then 4.0 framing") {
        auto link = make();
        link->tick(o.greeting_wait_us);
        (void)take_output(*link);
        auto in = bytes_of("CANIP/4.1 FEAT=SEQ\n");
        const auto f = wire_frame(0x55, false, {1});
        in.insert(in.end(), f.begin(), f.end());
        link->receive(in, 400 * ms);
        REQUIRE(link->canip() != nullptr);
        CHECK(link->tcpcan() == nullptr);
        CHECK(take_output(*link) == "\n");
        CHECK(link->ready());
        CHECK(link->canip()->features() == 0);
        CHECK(drain_bus(*link).size() == 1);
        link->offer(classic(0x66, 2), 401 * ms);
        CHECK(link->output().size() == 14);
    }
    SUBCASE("a canip 4.0 server sending frames at once") {
        auto link = make();
        link->receive(wire_frame(0x1ABCDEF, true, {1, 2}), 5 * ms);
        REQUIRE(link->canip() != nullptr);
        CHECK(link->canip()->legacy());
        CHECK(link->output().empty());
        const auto frames = drain_bus(*link);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].is_extended());
        CHECK(frames[0].id == 0x1ABCDEF);
    }
    SUBCASE("a server that speaks first with anything else is refused") {
        auto link = make();
        link->receive(std::vector<std::uint8_t>{'v', 4, 0, 0, 0, 2}, 5 * ms);
        CHECK(link->closed());
        CHECK(link->output().empty());
    }
    SUBCASE("a greeting begun and not recognisable in time is refused") {
        auto link = make();
        link->receive(bytes_of("CAN"), 5 * ms);
        CHECK(link->next_deadline() == o.decide_within_us);
        link->tick(o.greeting_wait_us);
        CHECK_FALSE(link->closed());
        CHECK(link->output().empty());
        link->tick(o.decide_within_us);
        CHECK(link->closed());
    }
}

TEST_CASE("canip link: --max-age judges a received TS against the wall clock") {
    LogLimiter limiter;
    CanipOptions o;
    o.features = canip::feature::ts;
    o.max_frame_age_us = 1000 * ms;
    CanipLink link("peer", o, limiter, 0);
    (void)take_output(link);
    auto in = bytes_of("CANIP/4.1 FEAT=TS\n");
    const std::vector<std::uint8_t> old_ts{0, 0, 0, 0, 0x3B, 0x9A, 0xCA, 0x00};    // 1,000 s
    const std::vector<std::uint8_t> fresh_ts{0, 0, 0, 0, 0x3B, 0xA8, 0xD3, 0xC0};  // 1,000.92 s
    for (const auto& ts : {old_ts, fresh_ts}) {
        const auto f = wire_frame(0x10, false, {1}, ts);
        in.insert(in.end(), f.begin(), f.end());
    }
    link.receive(in, 0);
    REQUIRE(link.features() == canip::feature::ts);
    const Frame* f = link.peek_for_bus(0, 1'001'500'000);  // 1,001.5 s: the first is 1.5 s old
    REQUIRE(f != nullptr);
    CHECK(f->timestamp_us == 1'000'920'000);
    CHECK(link.stats().drop_expired == 1);
}
