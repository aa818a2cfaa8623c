// The Linux hub's small policies, alone: which connection makes room (admission.hpp), the
// per-key log limit and the escaping of peer text (log.hpp), the interest cache of the
// EventLoop (loop.hpp).
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "admission.hpp"
#include "log.hpp"
#include "loop.hpp"

using namespace tcpcan::linux_port;

TEST_CASE("admission: the oldest pending connection makes room; agreed ones are never picked for it") {
    const std::vector<AdmissionCandidate> all = {
        {true, 10, 10}, {false, 50, 50}, {false, 20, 90}, {true, 5, 5}, {false, 30, 30},
    };
    const auto pick = oldest_pending(all);
    REQUIRE(pick.has_value());
    CHECK(*pick == 2);
    CHECK_FALSE(oldest_pending(std::vector<AdmissionCandidate>{{true, 1, 1}}).has_value());
}

TEST_CASE("admission: the longest silent agreed session makes room, if silent long enough") {
    const std::uint64_t second = 1'000'000;
    std::vector<AdmissionCandidate> all = {
        {true, 0, 9 * second},  // silent 1 s
        {true, 0, 7 * second},  // silent 3 s
        {true, 0, 6 * second},  // silent 4 s: the longest
        {false, 0, 0},          // pending: not a candidate here
    };
    const auto pick = idlest_agreed(all, 10 * second, 2 * second);
    REQUIRE(pick.has_value());
    CHECK(*pick == 2);
    // Nobody silent for 5 s: the newcomer is refused instead.
    CHECK_FALSE(idlest_agreed(all, 10 * second, 5 * second).has_value());
}

TEST_CASE("escape_text: printable ASCII stays, everything else is spelled out") {
    CHECK(escape_text("hello, world") == "hello, world");
    CHECK(escape_text("a\nb") == "a\\x0Ab");
    CHECK(escape_text(std::string("\x1b[31m\0z", 7)) == "\\x1B[31m\\x00z");
    CHECK(escape_text("back\\slash") == "back\\\\slash");
    CHECK(escape_text("\xff") == "\\xFF");
    CHECK(escape_text("abcdef", 3) == "abc...");
}

TEST_CASE("LogLimiter: a burst per key and window, then suppressed; keys are independent and bounded") {
    LogLimiter limiter(3, 1000, 4);
    int allowed = 0;
    for (int i = 0; i < 10; ++i) {
        allowed += limiter.allow("peer-a gap", 100) ? 1 : 0;
    }
    CHECK(allowed == 3);
    CHECK(limiter.allow("peer-b gap", 100));  // another peer has its own allowance
    CHECK(limiter.allow("peer-a duplicate", 100));  // and another kind
    CHECK_FALSE(limiter.allow("peer-a gap", 1099));
    CHECK(limiter.allow("peer-a gap", 1100));  // a new window
    // More keys than it keeps: it forgets the oldest instead of growing.
    for (int i = 0; i < 100; ++i) {
        CHECK(limiter.allow("flood " + std::to_string(i) + " x", 2000));
    }
    limiter.release("flood 99");
    limiter.flush(1'000'000);
}

TEST_CASE("EventLoop: interest is changed only when it changes, and 0 takes a descriptor out") {
    EventLoop loop;
    std::string error;
    REQUIRE(loop.open(error));
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);
    loop.set_interest(pair[0], EPOLLIN);
    loop.set_interest(pair[0], EPOLLIN);  // no change, no second ADD (which would fail)
    REQUIRE(::write(pair[1], "x", 1) == 1);
    auto events = loop.wait(0);
    REQUIRE(events.size() == 1);
    CHECK(events[0].data.fd == pair[0]);
    // Taken out: the readable descriptor and even a hang-up no longer wake the loop.
    loop.set_interest(pair[0], 0);
    ::close(pair[1]);
    CHECK(loop.wait(0).empty());
    loop.set_interest(pair[0], EPOLLIN);
    events = loop.wait(0);
    REQUIRE(events.size() == 1);
    CHECK((events[0].events & (EPOLLIN | EPOLLHUP)) != 0);
    loop.forget(pair[0]);
    ::close(pair[0]);
}
