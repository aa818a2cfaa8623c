// The core on an emulated Cortex-M (qemu mps2 boards, semihosting): two sessions back to
// back through an in-memory link, frames across in both directions and compared, then the
// same through bridge_step over small CanPort/ByteStream implementations. No doctest: a
// failed CHECK prints where and exits 1; success exits 0. Built by run_cortex_m_qemu.py.
//
// The C library's allocation functions are wrapped (-Wl,--wrap=...): every scenario must
// leave the allocation counter where it found it, so the core is seen not to allocate on
// the target too (nm -u on the core's object is the static proof; see check_cortex_m.py).
#include <tcpcan.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string_view>

// newlib-nano's malloc() does not go through _malloc_r (and --wrap only redirects calls
// between objects), so both families are wrapped; operator new ends in malloc().
extern "C" {
std::uint32_t g_heap_calls = 0;
void* __real_malloc(std::size_t size);
void* __real_calloc(std::size_t n, std::size_t size);
void* __real_realloc(void* p, std::size_t size);
void __real_free(void* p);
void* __real__malloc_r(void* reent, std::size_t size);
void* __real__calloc_r(void* reent, std::size_t n, std::size_t size);
void* __real__realloc_r(void* reent, void* p, std::size_t size);
void __real__free_r(void* reent, void* p);
void* __wrap_malloc(std::size_t size) {
    ++g_heap_calls;
    return __real_malloc(size);
}
void* __wrap_calloc(std::size_t n, std::size_t size) {
    ++g_heap_calls;
    return __real_calloc(n, size);
}
void* __wrap_realloc(void* p, std::size_t size) {
    ++g_heap_calls;
    return __real_realloc(p, size);
}
void __wrap_free(void* p) {
    ++g_heap_calls;
    __real_free(p);
}
void* __wrap__malloc_r(void* reent, std::size_t size) {
    ++g_heap_calls;
    return __real__malloc_r(reent, size);
}
void* __wrap__calloc_r(void* reent, std::size_t n, std::size_t size) {
    ++g_heap_calls;
    return __real__calloc_r(reent, n, size);
}
void* __wrap__realloc_r(void* reent, void* p, std::size_t size) {
    ++g_heap_calls;
    return __real__realloc_r(reent, p, size);
}
void __wrap__free_r(void* reent, void* p) {
    ++g_heap_calls;
    __real__free_r(reent, p);
}
}

namespace {

using namespace tcpcan;

#if defined(TCPCAN_SMALL_RAM)
// microbit: 16 KiB of RAM hold two sessions, the test ports, newlib and the stack, so the
// sessions are the smallest full-profile ones the static_asserts allow (with 8 events).
using McuSession = Session<1542, 16, 28, 8>;
#define TCPCAN_SESSION_NAME "Session<1542,16,28,8>"
#else
// The configuration check_cortex_m.py measures.
using McuSession = Session<2048, 16, 32, 8>;
#define TCPCAN_SESSION_NAME "Session<2048,16,32,8>"
#endif

int g_checks = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        ++g_checks;                                                                    \
        if (!(cond)) {                                                                 \
            std::printf("FAIL %s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond);         \
            std::exit(1);                                                              \
        }                                                                              \
    } while (0)

// Static storage, constructed per scenario: the sessions never touch the heap or the stack
// for their buffers.
std::optional<McuSession> g_a;
std::optional<McuSession> g_b;

SessionOptions options(Role role, std::uint32_t max_version = highest_version) {
    SessionOptions o;
    o.role = role;
    o.max_version = max_version;
    o.features = feature::sequence | feature::timestamps;
    return o;
}

// Moves each side's output into the other, `chunk` bytes at a time, until nothing moves.
void pump(McuSession& a, McuSession& b, std::uint64_t now, std::size_t chunk) {
    for (int round = 0; round < 100000; ++round) {
        bool moved = false;
        McuSession* sides[2][2] = {{&a, &b}, {&b, &a}};
        for (auto& side : sides) {
            McuSession& from = *side[0];
            McuSession& to = *side[1];
            const std::span<const std::uint8_t> out = from.output();
            if (out.empty() || to.is_closed()) {
                continue;
            }
            const std::size_t n = out.size() < chunk ? out.size() : chunk;
            const ReceiveResult r = to.receive(out.first(n), now);
            CHECK(r.ok);
            from.consume_output(r.consumed);
            moved = moved || r.consumed > 0;
        }
        if (!moved) {
            return;
        }
    }
    CHECK(!"the link never went quiet");
}

bool has_event(McuSession& s, EventType type, Event* found = nullptr) {
    bool seen = false;
    Event e;
    while (s.poll_event(e)) {
        if (e.type == type && !seen) {
            seen = true;
            if (found != nullptr) {
                *found = e;
            }
        }
    }
    return seen;
}

Frame frame(std::uint32_t id, std::uint8_t flags, std::uint8_t len, std::uint8_t seed, std::uint64_t ts) {
    Frame f;
    f.id = id;
    f.flags = flags;
    f.len = len;
    for (std::uint8_t i = 0; i < len && !f.is_remote(); ++i) {
        f.data[i] = static_cast<std::uint8_t>(seed + 7 * i);
    }
    f.timestamp_us = ts;
    return f;
}

// One of each kind of frame the bridge carries.
constexpr std::size_t kinds = 7;
Frame sample(std::size_t i, std::uint64_t ts) {
    switch (i % kinds) {
    case 0: return frame(0x123, 0, 8, 1, ts);                                          // classic
    case 1: return frame(0x1ABC'DE0F, frame_flag::extended, 3, 2, ts);                 // extended
    case 2: return frame(0x7FF, frame_flag::remote, 4, 0, ts);                         // remote
    case 3: return frame(0x100, frame_flag::fd | frame_flag::brs, 64, 3, ts);          // FD, BRS
    case 4: return frame(0x1FFF'FFFF, frame_flag::extended | frame_flag::fd, 12, 4, ts);  // FD extended
    case 5: return frame(0x0000'0004, frame_flag::error, 8, 5, ts);                    // error frame
    default: return frame(0x000, 0, 0, 0, ts);                                         // empty
    }
}

void establish(Role a_role, std::uint32_t a_max, std::uint32_t b_max, std::size_t chunk) {
    g_a.emplace(options(a_role, a_max), 0);
    g_b.emplace(options(a_role == Role::client ? Role::server : Role::client, b_max), 0);
    pump(*g_a, *g_b, 1, chunk);
    CHECK(g_a->state() == SessionState::established);
    CHECK(g_b->state() == SessionState::established);
    CHECK(g_a->version() == (a_max < b_max ? a_max : b_max));
    CHECK(has_event(*g_a, EventType::version_agreed));
    CHECK(has_event(*g_b, EventType::version_agreed));
}

// Frames from `from` arrive on `to`'s bus unchanged and in order.
void frames_across(McuSession& from, McuSession& to, std::size_t count, std::size_t chunk, bool timestamps) {
    std::size_t received = 0;
    std::uint64_t now = 10;
    for (std::size_t sent = 0; sent < count;) {
        // A batch the output and the peer's bus queue both hold.
        for (std::size_t k = 0; k < 6 && sent < count; ++k, ++sent) {
            CHECK(from.send_frame(sample(sent, timestamps ? 1'700'000'000'000'000 + sent : 0), now) ==
                  SendResult::queued);
        }
        pump(from, to, ++now, chunk);
        while (const Frame* f = to.peek_bus_frame(now)) {
            CHECK(*f == sample(received, timestamps ? 1'700'000'000'000'000 + received : 0));
            to.pop_bus_frame();
            ++received;
        }
    }
    CHECK(received == count);
    CHECK(to.stats().frames_from_peer >= count);
    CHECK(to.stats().dropped_towards_bus() == 0);
    CHECK(from.stats().dropped_towards_peer() == 0);
    CHECK(to.stats().sequence.lost == 0);
}

void scenario_version2(std::size_t chunk) {
    establish(Role::client, 2, 2, chunk);
    CHECK(g_a->agreed_features() == (feature::sequence | feature::timestamps));
    frames_across(*g_a, *g_b, 3 * kinds, chunk, true);
    frames_across(*g_b, *g_a, 3 * kinds, chunk, true);
}

void scenario_version1() {
    establish(Role::client, 1, 2, 1000);
    CHECK(g_a->version() == 1 && g_b->version() == 1);
    frames_across(*g_a, *g_b, 2 * kinds, 1000, false);
    frames_across(*g_b, *g_a, 2 * kinds, 3, false);
}

void scenario_subscription_heartbeat_close() {
    establish(Role::client, 2, 2, 1000);
    // The server asks for two ids only; the client then drops everything else itself.
    FilterSet<4> wanted;
    CHECK(parse_filter_list("123, 1ABCDE0Fx", wanted).ok);
    CHECK(g_b->set_local_subscription(wanted));
    pump(*g_a, *g_b, 2, 1000);
    CHECK(has_event(*g_a, EventType::subscription_set));
    CHECK(g_a->peer_subscription().size() == 2);
    CHECK(g_a->send_frame(frame(0x124, 0, 1, 0, 0), 3) == SendResult::filtered);
    CHECK(g_a->send_frame(sample(1, 0), 3) == SendResult::queued);

    // Heartbeat: a ping goes out when due, the pong measures the round trip.
    SessionOptions o = options(Role::client);
    o.heartbeat_interval_us = 1000;
    o.dead_after_us = 5000;
    g_a.emplace(o, 0);
    g_b.emplace(options(Role::server), 0);
    pump(*g_a, *g_b, 0, 1000);
    (void)has_event(*g_a, EventType::rtt_measured);
    CHECK(g_a->next_deadline() == 1000);
    g_a->tick(1000);
    CHECK(g_a->stats().pings_sent == 1);
    pump(*g_a, *g_b, 1250, 1000);
    Event rtt;
    CHECK(has_event(*g_a, EventType::rtt_measured, &rtt));
    CHECK(rtt.value == 250);

    // Close with a reason and text; the peer sees both.
    g_a->close(CloseReason::shutdown, "bye from the MCU", 1300);
    pump(*g_a, *g_b, 1300, 1000);
    Event closed;
    CHECK(has_event(*g_b, EventType::closed, &closed));
    CHECK(closed.by_peer && closed.reason == CloseReason::shutdown);
    CHECK(g_b->close_text() == "bye from the MCU");
    CHECK(g_b->is_closed() && g_a->is_closed());
    CHECK(g_a->send_frame(sample(0, 0), 1400) == SendResult::closed);

    // A peer that breaks the protocol is closed with the reason and where it happened.
    g_b.emplace(options(Role::server), 0);
    const std::uint8_t garbage[] = {'v', 0, 4, 0, 0, 0, 2};  // length 0 for 'v'
    const ReceiveResult r = g_b->receive(garbage, 1);
    CHECK(!r.ok);
    Event error;
    CHECK(has_event(*g_b, EventType::protocol_error, &error));
    CHECK(error.error == ProtocolError::bad_version_length && error.offset == 1);
}

// ---- bridge_step over in-memory ports --------------------------------------------------

// Receives sample(0), sample(1), ... up to rx_count (made on demand, so no RAM holds them);
// keeps what is written in `tx` (storage outside, so a bus that only sends needs none).
class TestCan final : public CanPort {
public:
    bool read(Frame& f) override {
        if (rx_at == rx_count) {
            return false;
        }
        f = sample(rx_at++, 0);
        return true;
    }
    bool write(const Frame& f) override {
        if (tx_count == tx_capacity) {
            return false;
        }
        tx[tx_count++] = f;
        return true;
    }
    std::size_t rx_count = 0;
    std::size_t rx_at = 0;
    Frame* tx = nullptr;
    std::size_t tx_capacity = 0;
    std::size_t tx_count = 0;
};

// One direction of a TCP connection, with a small window so the bridge sees back-pressure.
struct Pipe {
    std::uint8_t bytes[300]{};
    std::size_t size = 0;
};

class PipeStream final : public ByteStream {
public:
    PipeStream(Pipe& in, Pipe& out) : in_(in), out_(out) {}
    StreamRead read(std::span<std::uint8_t> buffer) override {
        const std::size_t n = in_.size < buffer.size() ? in_.size : buffer.size();
        for (std::size_t i = 0; i < n; ++i) {
            buffer[i] = in_.bytes[i];
        }
        for (std::size_t i = n; i < in_.size; ++i) {
            in_.bytes[i - n] = in_.bytes[i];
        }
        in_.size -= n;
        return {n, false};
    }
    std::size_t write(std::span<const std::uint8_t> bytes) override {
        std::size_t n = 0;
        while (n < bytes.size() && out_.size < sizeof out_.bytes) {
            out_.bytes[out_.size++] = bytes[n++];
        }
        return n;
    }

private:
    Pipe& in_;
    Pipe& out_;
};

TestCan g_bus_a;
TestCan g_bus_b;
Frame g_bus_b_tx[24];
Pipe g_a_to_b;
Pipe g_b_to_a;

void scenario_bridge() {
    g_a.emplace(options(Role::client), 0);
    g_b.emplace(options(Role::server), 0);
    g_bus_a = TestCan{};
    g_bus_b = TestCan{};
    g_bus_b.tx = g_bus_b_tx;
    g_bus_b.tx_capacity = sizeof g_bus_b_tx / sizeof g_bus_b_tx[0];
    g_a_to_b = Pipe{};
    g_b_to_a = Pipe{};
    PipeStream stream_a(g_b_to_a, g_a_to_b);
    PipeStream stream_b(g_a_to_b, g_b_to_a);
    FilterSet<2> forward;  // side A forwards everything but standard id 0x7FF
    CHECK(parse_filter_list("7FF~7FF", forward).ok);
    const FilterSet<1> everything;

    // Negotiation first: frames read from the bus before agreement are dropped (and counted).
    std::uint64_t now = 1;
    for (; now < 20 && !(g_a->state() == SessionState::established && g_b->state() == SessionState::established);
         ++now) {
        (void)bridge_step(*g_a, g_bus_a, stream_a, forward, now, 3);
        (void)bridge_step(*g_b, g_bus_b, stream_b, everything, now, 3);
    }
    CHECK(g_a->state() == SessionState::established && g_b->state() == SessionState::established);

    constexpr std::size_t count = 21;
    std::size_t expected = 0;
    g_bus_a.rx_count = count;
    for (std::size_t i = 0; i < count; ++i) {
        expected += sample(i, 0).id == 0x7FF && !sample(i, 0).is_extended() && !sample(i, 0).is_error() ? 0 : 1;
    }
    std::size_t filtered = 0;
    for (const std::uint64_t end = now + 200; now < end; ++now) {
        filtered += bridge_step(*g_a, g_bus_a, stream_a, forward, now, 3).frames_filtered;
        (void)bridge_step(*g_b, g_bus_b, stream_b, everything, now, 3);
    }
    CHECK(filtered == count - expected);
    CHECK(g_bus_b.tx_count == expected);
    std::size_t at = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const Frame f = sample(i, 0);
        if (f.id == 0x7FF && !f.is_extended() && !f.is_error()) {
            continue;
        }
        CHECK(g_bus_b.tx[at++] == f);
    }
    CHECK(g_b->stats().dropped_towards_bus() == 0);
}

// ---- candump text and filters on the target -----------------------------------------------

void scenario_text() {
    constexpr std::string_view lines[] = {
        "(1700000000.123456) can0 123#11223344",
        "(0000000001.000001) vcan1 1ABCDE0F#R3",
        "(0000000002.500000) can0 100##5000102030405060708090A0B",
        "(1700000000.000000) can0 20000080#0000000000000000",
    };
    for (std::string_view line : lines) {
        const CandumpParseResult r = parse_candump_line(line);
        CHECK(r.kind == CandumpLineKind::frame);
        char out[max_candump_line]{};
        const std::size_t n = format_candump_line(r.frame, r.interface, out);
        CHECK(std::string_view(out, n) == line);
    }
    const CandumpParseResult bad = parse_candump_line("123#1122334455667788AA");
    CHECK(bad.kind == CandumpLineKind::error && bad.error == CandumpParseError::classic_too_long);
}

}  // namespace

int main() {
    std::printf("tcpcan core on %s: sizeof(" TCPCAN_SESSION_NAME ") = %u bytes\n", TCPCAN_TARGET_NAME,
                static_cast<unsigned>(sizeof(McuSession)));
    std::fflush(stdout);  // stdout's buffer is allocated now, not during a scenario

    struct Step {
        const char* name;
        void (*run)();
    };
    const Step steps[] = {
        {"version 2, whole writes", [] { scenario_version2(1000); }},
        {"version 2, one byte at a time", [] { scenario_version2(1); }},
        {"version 1 fallback", scenario_version1},
        {"subscription, heartbeat, close, protocol error", scenario_subscription_heartbeat_close},
        {"bridge_step over in-memory ports", scenario_bridge},
        {"candump text", scenario_text},
    };
    for (const Step& step : steps) {
        const std::uint32_t heap_before = g_heap_calls;
        step.run();
        CHECK(g_heap_calls == heap_before);  // the core allocated nothing
        std::printf("ok   %s\n", step.name);
    }
    std::printf("PASS: %d checks, no heap calls during the scenarios\n", g_checks);
    return 0;
}
