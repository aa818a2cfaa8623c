// The policy file (good and bad lines) and its translation into the Router's TransmitPolicy.
#include <doctest/doctest.h>

#include "policy.hpp"

#include <deque>
#include <string>
#include <vector>

using namespace tcpcan;
using namespace tcpcan::linux_port;

namespace {

Frame standard(std::uint32_t id) {
    Frame frame{};
    frame.id = id;
    return frame;
}

Frame extended(std::uint32_t id) {
    Frame frame{};
    frame.id = id;
    frame.flags = frame_flag::extended;
    return frame;
}

Frame error_frame() {
    Frame frame{};
    frame.id = 0x004;
    frame.flags = frame_flag::error;
    return frame;
}

const char* const example = R"(# the example of policy.hpp
[pi-bench]
read-only

[desktop]
allow = 7DF, 7E0-7EF      # OBD only
rate = 100
burst = 20

[CN with spaces]   # a certificate's CN
allow = 1ABx
[*]
read-only   # everyone else
)";

}  // namespace

TEST_CASE("the documented example parses into one policy per section") {
    const PolicyFileResult parsed = parse_policy_text(example, "policy.conf");
    REQUIRE(parsed.ok);
    REQUIRE(parsed.policies.size() == 4);

    const ClientPolicy& pi = parsed.policies[0];
    CHECK(pi.identity == "pi-bench");
    CHECK(pi.read_only);
    CHECK_FALSE(pi.has_allow);
    CHECK(pi.max_frames_per_s == 0);

    const ClientPolicy& desktop = parsed.policies[1];
    CHECK(desktop.identity == "desktop");
    CHECK_FALSE(desktop.read_only);
    CHECK(desktop.has_allow);
    REQUIRE(desktop.allow.size() == 2);
    CHECK(desktop.allow.entries()[0] == FilterEntry::exact_id(0x7DF));
    CHECK(desktop.allow.entries()[1] == FilterEntry::id_range(0x7E0, 0x7EF));
    CHECK(desktop.max_frames_per_s == 100);
    CHECK(desktop.burst == 20);

    const ClientPolicy& spaced = parsed.policies[2];
    CHECK(spaced.identity == "CN with spaces");
    REQUIRE(spaced.allow.size() == 1);
    CHECK(spaced.allow.entries()[0] == FilterEntry::exact_id(0x1AB, true));

    CHECK(parsed.policies[3].identity == "*");
    CHECK(parsed.policies[3].read_only);
}

TEST_CASE("find_policy: own section, else [*], else none; no identity gets only [*]") {
    const PolicyFileResult parsed = parse_policy_text(example, "policy.conf");
    REQUIRE(parsed.ok);
    CHECK(find_policy(parsed.policies, "desktop") == &parsed.policies[1]);
    CHECK(find_policy(parsed.policies, "stranger") == &parsed.policies[3]);
    CHECK(find_policy(parsed.policies, "") == &parsed.policies[3]);

    const PolicyFileResult no_default = parse_policy_text("[desktop]\nread-only\n", "p");
    REQUIRE(no_default.ok);
    CHECK(find_policy(no_default.policies, "stranger") == nullptr);
    CHECK(find_policy(no_default.policies, "") == nullptr);
    CHECK(find_policy(no_default.policies, "desktop") == &no_default.policies[0]);
}

TEST_CASE("every bad policy line is refused with the file, the line and the reason") {
    struct Case {
        const char* text;
        const char* expected;
    };
    const Case cases[] = {
        {"read-only\n", "p line 1: setting before any [identity] section"},
        {"[a\nread-only\n", "p line 1: section header without ']'"},
        {"[]\n", "p line 1: empty identity in '[]'"},
        {"[a] b\n", "p line 1: unexpected text after ']'"},
        {"[a]\n\n[b]\n[a]\n", "p line 4: section [a] appears twice (first on line 1)"},
        {"[a]\nreadonly\n", "p line 2: expected 'read-only' or 'SETTING = VALUE', got 'readonly'"},
        {"[a]\nread-only = yes\n", "p line 2: read-only takes no value"},
        {"[a]\nspeed = 5\n", "p line 2: unknown setting 'speed' (settings: read-only, allow, rate, burst)"},
        {"[a]\nrate = 0\n", "p line 2: rate: expected a whole number from 1 to 1000000, got '0'"},
        {"[a]\nrate = 1.5\n", "p line 2: rate: expected a whole number from 1 to 1000000, got '1.5'"},
        {"[a]\nrate = 1000001\n", "p line 2: rate: expected a whole number from 1 to 1000000, got '1000001'"},
        {"[a]\nrate =\n", "p line 2: rate: expected a whole number from 1 to 1000000, got ''"},
        {"[a]\nburst = 5\n", "p: section [a] sets burst without rate"},
        {"[x]\nrate = 1\n[a]\nburst = 5\n[b]\n", "p: section [a] sets burst without rate"},
        {"[a\x01" "b]\n", "p line 1: identity holds a character that is not printable ASCII"},
        {"[a]\nallow = 7DF,\n", "p line 2: allow: empty filter entry at column 13"},
        {"[a]\nallow = 7DG\n", "p line 2: allow: expected a hexadecimal digit at column 11"},
        {"[a]\nallow = 800\n", "p line 2: allow: standard identifier above 0x7FF"},
        {"[a]\nallow =   # nothing\n", "p line 2: allow: empty list (use read-only to refuse every frame)"},
        {"[a]\nallow = 1\nallow = 2\n", "p line 3: 'allow' appears twice in section [a]"},
    };
    for (const Case& c : cases) {
        const std::string text = c.text;
        CAPTURE(text);
        const PolicyFileResult parsed = parse_policy_text(c.text, "p");
        CHECK_FALSE(parsed.ok);
        CHECK(parsed.policies.empty());
        CHECK(parsed.error.rfind(c.expected, 0) == 0);
    }
}

TEST_CASE("an allow-list over the filter set's capacity is refused") {
    std::string text = "[a]\nallow = ";
    for (int i = 0; i < 65; ++i) {
        text += std::to_string(100 + i) + " ";
    }
    const PolicyFileResult parsed = parse_policy_text(text, "p");
    CHECK_FALSE(parsed.ok);
    CHECK(parsed.error.find("more filter entries than the filter set holds") != std::string::npos);
}

// A peer that only sends: the frames it offers the bus, in order.
class SendingPeer final : public Peer {
public:
    std::deque<Frame> for_bus;
    std::vector<Frame> received;
    bool ready() const override { return true; }
    void offer(const Frame& f, std::uint64_t) override { received.push_back(f); }
    bool has_room(std::size_t) const override { return true; }
    const Frame* peek_for_bus(std::uint64_t, std::uint64_t) override { return for_bus.empty() ? nullptr : &for_bus.front(); }
    void pop_for_bus() override { for_bus.pop_front(); }
};

// The ids of the frames `policy` lets through to the bus when the peer sends `frames` at
// `now_us`, through a Router (which enforces what transmit_policy() translates).
struct Passed {
    std::vector<std::uint32_t> ids;
    BusRouteCounters counters;
};
Passed through_router(const ClientPolicy* policy, std::vector<Frame> frames, std::uint64_t now_us = 1'000'000) {
    Router<2> router;
    SendingPeer peer;
    REQUIRE(router.attach(peer, 0, transmit_policy(policy)));
    peer.for_bus.assign(frames.begin(), frames.end());
    Passed passed;
    (void)router.drain_to_bus(
        0,
        [&passed](const Frame& f) {
            passed.ids.push_back(f.id);
            return BusWriteResult::written;
        },
        now_us);
    passed.counters = router.counters(0);
    return passed;
}

TEST_CASE("no policy translates to the unrestricted TransmitPolicy") {
    const TransmitPolicy t = transmit_policy(nullptr);
    CHECK_FALSE(t.read_only);
    CHECK(t.allow == nullptr);
    CHECK(t.max_frames_per_s == 0);
    const Passed passed = through_router(nullptr, {standard(0x123), error_frame(), extended(0x1ABCDEF)});
    CHECK(passed.ids.size() == 3);
    CHECK(passed.counters.dropped() == 0);
}

TEST_CASE("a read-only policy refuses every frame, counted as read-only") {
    ClientPolicy policy;
    policy.read_only = true;
    policy.max_frames_per_s = 10;
    CHECK(transmit_policy(&policy).read_only);
    const Passed passed = through_router(&policy, {standard(0x7DF), standard(0x7DF), error_frame()});
    CHECK(passed.ids.empty());
    CHECK(passed.counters.refused_read_only == 3);
    CHECK(passed.counters.refused_rate == 0);
}

TEST_CASE("an allow-list points at the policy's own filter set and passes matching ids only") {
    ClientPolicy policy;
    REQUIRE(parse_filter_list("7DF,7E0-7EF,1ABx", policy.allow).ok);
    policy.has_allow = true;
    CHECK(transmit_policy(&policy).allow == &policy.allow);
    const Passed passed = through_router(&policy, {standard(0x7DF), standard(0x7E8), extended(0x1AB), standard(0x7F0),
                                                   extended(0x7DF), standard(0x1AB), error_frame()});
    CHECK(passed.ids == std::vector<std::uint32_t>{0x7DF, 0x7E8, 0x1AB});
    CHECK(passed.counters.refused_not_allowed == 4);
}

TEST_CASE("a policy without an allow-list has no filter, even with entries left in the set") {
    ClientPolicy policy;
    REQUIRE(parse_filter_list("100", policy.allow).ok);
    policy.has_allow = false;
    CHECK(transmit_policy(&policy).allow == nullptr);
}

TEST_CASE("rate and burst from the file reach the Router; burst defaults to the rate") {
    const PolicyFileResult parsed = parse_policy_text("[a]\nrate = 5\n[b]\nrate = 10\nburst = 3\n", "p");
    REQUIRE(parsed.ok);
    std::vector<Frame> twenty(20, standard(0x1));
    const Passed a = through_router(&parsed.policies[0], twenty);
    CHECK(a.ids.size() == 5);
    CHECK(a.counters.refused_rate == 15);
    const TransmitPolicy b = transmit_policy(&parsed.policies[1]);
    CHECK(b.max_frames_per_s == 10);
    CHECK(b.burst == 3);
    CHECK(through_router(&parsed.policies[1], twenty).ids.size() == 3);
}

TEST_CASE("loopback hosts, and the one warning for a server exposed without TLS") {
    for (const char* host : {"localhost", "127.0.0.1", "127.1.2.3", "::1"}) {
        CAPTURE(host);
        CHECK(is_loopback_host(host));
        CHECK(exposure_warning(host, 3333, false, false, false).empty());
    }
    for (const char* host : {"0.0.0.0", "::", "", "192.168.1.20", "pi.local", "128.0.0.1", "::ffff:127.0.0.1"}) {
        CAPTURE(host);
        CHECK_FALSE(is_loopback_host(host));
    }
    const std::string open = exposure_warning("0.0.0.0", 3333, false, false, false);
    CHECK(open.rfind("listening on 0.0.0.0 port 3333 without TLS: anyone who reaches this port reads every frame on "
                     "the bus and writes any frame to it", 0) == 0);
    CHECK(exposure_warning("", 3333, false, false, false).find("every address") != std::string::npos);
    CHECK(exposure_warning("0.0.0.0", 3333, false, false, true).find("--allow-transmit lets through") != std::string::npos);
    CHECK(exposure_warning("0.0.0.0", 3333, true, false, false).empty());
    CHECK(exposure_warning("0.0.0.0", 3333, false, true, false).empty());
}
