// Speed of the header-only core (Google Benchmark). Run with
//   meson test -C build --benchmark core --verbose     or     build/tests/bench/bench_core
// items_per_second is frames (or filter matches) per second.
#include <benchmark/benchmark.h>

#include <tcpcan/decoder.hpp>
#include <tcpcan/encoder.hpp>
#include <tcpcan/filter.hpp>
#include <tcpcan/session.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <span>
#include <vector>

using namespace tcpcan;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "bench_core: %s\n", what);
    std::abort();
}

Frame make_frame(std::uint8_t len, bool fd, std::uint32_t index) {
    Frame f;
    f.id = 0x123 + (index & 0x3FF);
    f.len = len;
    f.flags = fd ? (frame_flag::fd | frame_flag::brs) : 0;
    for (std::uint8_t i = 0; i < len; ++i) {
        f.data[i] = static_cast<std::uint8_t>(index + i);
    }
    return f;
}

// About 1 MiB of version-2 'f' messages with sequence numbers (the default feature),
// ending on a message boundary so the decoder can run over it again and again.
struct Stream {
    std::vector<std::uint8_t> bytes;
    std::size_t frames = 0;
};

Stream make_stream(std::uint8_t len, bool fd) {
    Stream s;
    std::array<std::uint8_t, max_message_size> message{};
    while (s.bytes.size() < (1u << 20)) {
        const auto index = static_cast<std::uint32_t>(s.frames);
        const std::size_t n = encode_frame(message, make_frame(len, fd, index), true, index, false);
        if (n == 0) {
            fail("cannot encode a frame");
        }
        s.bytes.insert(s.bytes.end(), message.begin(), message.begin() + static_cast<std::ptrdiff_t>(n));
        ++s.frames;
    }
    return s;
}

// ---- Decoder -------------------------------------------------------------------------
// Args: data length, FD (0/1), chunk size in bytes (65536 or 1).
void BM_Decode(benchmark::State& state) {
    const auto len = static_cast<std::uint8_t>(state.range(0));
    const bool fd = state.range(1) != 0;
    const auto chunk = static_cast<std::size_t>(state.range(2));
    const Stream stream = make_stream(len, fd);
    Decoder decoder(DecoderMode::version2);
    Message message;
    std::uint64_t decoded = 0;
    for (auto _ : state) {
        const std::span<const std::uint8_t> all(stream.bytes);
        for (std::size_t at = 0; at < all.size(); at += chunk) {
            std::span<const std::uint8_t> piece = all.subspan(at, chunk < all.size() - at ? chunk : all.size() - at);
            while (!piece.empty()) {
                const DecodeResult r = decoder.decode(piece, message);
                if (r.status == DecodeStatus::error) {
                    fail("decoder refused the stream");
                }
                if (r.status == DecodeStatus::complete) {
                    ++decoded;
                    benchmark::DoNotOptimize(message.frame.data[0]);
                }
                piece = piece.subspan(r.consumed);
            }
        }
    }
    if (decoded != stream.frames * static_cast<std::uint64_t>(state.iterations())) {
        fail("decoder lost frames");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(decoded));
    state.SetBytesProcessed(static_cast<std::int64_t>(stream.bytes.size() * state.iterations()));
}
BENCHMARK(BM_Decode)
    ->ArgNames({"len", "fd", "chunk"})
    ->Args({8, 0, 65536})
    ->Args({64, 1, 65536})
    ->Args({8, 0, 1})
    ->Args({64, 1, 1});

// ---- Encoder -------------------------------------------------------------------------
// Args: data length, FD (0/1). Frames go back to back into a 64 KiB buffer.
void BM_Encode(benchmark::State& state) {
    const auto len = static_cast<std::uint8_t>(state.range(0));
    const bool fd = state.range(1) != 0;
    const Frame frame = make_frame(len, fd, 7);
    std::vector<std::uint8_t> buffer(65536);
    const std::size_t message_size = frame_message_size(frame, true, false);
    const std::size_t per_buffer = buffer.size() / message_size;
    std::uint32_t sequence = 0;
    for (auto _ : state) {
        std::size_t at = 0;
        for (std::size_t i = 0; i < per_buffer; ++i) {
            at += encode_frame(std::span<std::uint8_t>(buffer).subspan(at), frame, true, sequence++, false);
        }
        benchmark::DoNotOptimize(buffer.data());
        benchmark::ClobberMemory();
        if (at != per_buffer * message_size) {
            fail("encoder wrote the wrong size");
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(per_buffer * state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(per_buffer * message_size * state.iterations()));
}
BENCHMARK(BM_Encode)->ArgNames({"len", "fd"})->Args({8, 0})->Args({64, 1});

// ---- A Session pair, back to back ----------------------------------------------------
// Client frames: send_frame (encode) -> output/consume_output -> server receive (decode,
// sequence check) -> peek/pop bus frame. The sizes are the Linux bridge's. The Resume
// variant is the same pair with feature::resume agreed, as two tcpcan peers run by default:
// the client keeps every frame in its replay buffer (8,192, TcpcanLink's) until the
// server's cumulative 'k' (every 32 frames handed over) comes back and releases it, so the
// difference between the two is what acknowledged delivery costs per frame in the core.
using BenchSession = Session<65536, 2048, 64, 64>;
using ResumeBenchSession = Session<65536, 2048, 64, 64, FullProfile, 8192>;

template <class S>
void move_bytes(S& from, S& to, std::uint64_t now) {
    const auto out = from.output();
    if (out.empty()) {
        return;
    }
    const ReceiveResult r = to.receive(out, now);
    if (!r.ok || r.consumed != out.size()) {
        fail("session refused bytes");
    }
    from.consume_output(out.size());
}

// Args: data length, FD (0/1), frames per batch handed over at once.
template <class S, bool Resume>
void session_pair(benchmark::State& state) {
    const auto len = static_cast<std::uint8_t>(state.range(0));
    const bool fd = state.range(1) != 0;
    const auto batch = static_cast<std::size_t>(state.range(2));
    SessionOptions client_options;
    client_options.role = Role::client;
    SessionOptions server_options;
    server_options.role = Role::server;
    if constexpr (Resume) {
        client_options.features |= feature::resume;
        server_options.features |= feature::resume;
    }
    std::uint64_t now = 1;
    auto client = std::make_unique<S>(client_options, now);
    auto server = std::make_unique<S>(server_options, now);
    if constexpr (Resume) {
        server->set_resume_options({.token = 0x0123456789ABCDEFull});
    }
    for (int i = 0; i < 8 && !(client->state() == SessionState::established &&
                                server->state() == SessionState::established); ++i) {
        move_bytes(*client, *server, now);
        move_bytes(*server, *client, now);
    }
    move_bytes(*client, *server, now);
    move_bytes(*server, *client, now);  // the resume exchange ('r', then 't')
    if (client->state() != SessionState::established || server->state() != SessionState::established ||
        client->version() != 2 || ((client->agreed_features() & feature::resume) != 0) != Resume) {
        fail("sessions did not agree on version 2 (with resume as asked)");
    }
    Frame frame = make_frame(len, fd, 0);
    std::uint64_t delivered = 0;
    std::uint64_t checksum = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < batch; ++i) {
            frame.data[0] = static_cast<std::uint8_t>(i);
            if (client->send_frame(frame, now) != SendResult::queued) {
                fail("client did not queue a frame");
            }
        }
        move_bytes(*client, *server, now);
        while (const Frame* f = server->peek_bus_frame(now)) {
            checksum += f->data[0];
            server->pop_bus_frame();
            ++delivered;
        }
        if constexpr (Resume) {
            server->tick(now);  // the acknowledgement goes out every 32 frames (or 20 ms)
            move_bytes(*server, *client, now);
        }
        ++now;
    }
    benchmark::DoNotOptimize(checksum);
    if (delivered != batch * static_cast<std::uint64_t>(state.iterations()) ||
        server->stats().sequence.lost != 0) {
        fail("session pair lost frames");
    }
    if constexpr (Resume) {
        if (client->replay_size() > 8192 - 64) {
            fail("acknowledgements did not release the replay buffer");
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(delivered));
}

void BM_SessionPair(benchmark::State& state) { session_pair<BenchSession, false>(state); }
void BM_SessionPairResume(benchmark::State& state) { session_pair<ResumeBenchSession, true>(state); }
BENCHMARK(BM_SessionPair)
    ->ArgNames({"len", "fd", "batch"})
    ->Args({8, 0, 1})
    ->Args({8, 0, 64})
    ->Args({64, 1, 64});
BENCHMARK(BM_SessionPairResume)
    ->ArgNames({"len", "fd", "batch"})
    ->Args({8, 0, 1})
    ->Args({8, 0, 64})
    ->Args({64, 1, 64});

// ---- FilterSet::matches with 32 entries ----------------------------------------------
// Arg 0: 32 allow entries (16 ranges, 16 id/mask) over standard ids; ids cycle through
// 0..0x7FF, so most frames scan the whole list. Arg 1: the same entries as deny entries.
void BM_FilterMatch32(benchmark::State& state) {
    const bool deny = state.range(0) != 0;
    FilterSet<32> set;
    for (std::uint32_t i = 0; i < 16; ++i) {
        FilterEntry range = FilterEntry::id_range(0x40 * i + 0x10, 0x40 * i + 0x13);
        FilterEntry mask = FilterEntry::id_mask(0x400 + 0x40 * i + 0x20, 0x7FC);
        range.inverted = deny;
        mask.inverted = deny;
        if (!set.add(range) || !set.add(mask)) {
            fail("filter set full");
        }
    }
    Frame f;
    std::uint64_t passed = 0;
    for (auto _ : state) {
        passed += set.matches(f) ? 1 : 0;
        benchmark::DoNotOptimize(passed);
        f.id = (f.id + 1) & max_standard_id;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["pass_ratio"] = static_cast<double>(passed) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_FilterMatch32)->ArgName("deny")->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
