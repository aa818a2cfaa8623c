// Fuzzes one resumable session against a hostile peer: the fuzzer writes the peer's bytes
// (acknowledgements of frames never sent, resume messages out of place, tokens, frames),
// cuts the connection and reconnects, while the session sends frames of its own.
//
// Input: byte 0 bit 0: the session is the server (else the client), then operations:
//   operation byte b, (b & 7):
//     0 the peer's next n bytes (n = next byte) reach the session    1 the session's bus gives 1 + n % 16 frames
//     2 time passes: n ms                                            3 the transport ends
//     4 the client reconnects (server: the port refuses the token)   5 the session's bus takes up to n frames
//     6 the transport takes up to 8n bytes of output                 7 the session closes (shutdown)
//
// Invariants: nothing crashes or reads out of bounds (sanitizers); a refused input closes
// the session (or, for a broken connection, suspends it); the replay buffer never holds more
// than its capacity nor more than the frames the session took; written frames never exceed
// encoded ones; once the session has ended for good its replay buffer is empty.
#include <cstddef>
#include <cstdint>

#include <tcpcan/session.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

constexpr std::size_t replay_frames = 32;
using PeerSession = Session<2048, 16, 64, 16, FullProfile, replay_frames>;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::FuzzInput in(data, size);
    const bool server = (in.u8() & 1) != 0;
    SessionOptions o;
    o.role = server ? Role::server : Role::client;
    o.features = feature::sequence | feature::resume;
    o.max_frame_age_us = 50'000;
    o.dead_after_us = 200'000;
    std::uint64_t now = 1'000'000;
    PeerSession s(o, now);
    s.set_resume_options({.token = server ? 0x1234u : 0u, .ack_every_frames = 4, .ack_delay_us = 2000});
    std::uint64_t taken = 0;  // frames the session took from its bus (queued or counted)
    for (int ops = 0; ops < 2000 && !in.empty(); ++ops) {
        const std::uint8_t b = in.u8();
        switch (b & 7) {
        case 0: {
            const auto bytes = in.bytes(in.u8());
            const ReceiveResult r = s.receive(bytes, now);
            FUZZ_CHECK(r.consumed <= bytes.size());
            if (!r.ok) {
                FUZZ_CHECK(s.is_closed() || s.is_suspended());
            }
            if (s.requested_resume_token() != 0) {
                s.refuse_resume(now);  // the port knows no such session
                FUZZ_CHECK(s.requested_resume_token() == 0);
            }
            break;
        }
        case 1: {
            const std::size_t n = 1 + in.u8() % 16;
            for (std::size_t i = 0; i < n; ++i) {
                Frame f;
                f.id = static_cast<std::uint32_t>(0x100 + i);
                f.len = 2;
                const SendResult r = s.send_frame(f, now);
                taken += (r == SendResult::queued || r == SendResult::output_full) ? 1 : 0;
            }
            break;
        }
        case 2: now += std::uint64_t{1000} * in.u8(); s.tick(now); break;
        case 3: s.transport_closed(now); break;
        case 4:
            if (!server) {
                s.reconnect(now);
            }
            break;
        case 5:
            for (std::size_t n = in.u8(); n > 0; --n) {
                if (s.peek_bus_frame(now) == nullptr) {
                    break;
                }
                s.pop_bus_frame();
            }
            break;
        case 6: {
            const std::size_t n = std::size_t{8} * in.u8();
            s.consume_output(n < s.output().size() ? n : s.output().size());
            break;
        }
        case 7: s.close(CloseReason::shutdown, "bye", now); break;
        }
        FUZZ_CHECK(s.replay_size() <= replay_frames);
        FUZZ_CHECK(s.replay_size() <= taken);
        FUZZ_CHECK(s.stats().frames_written <= s.stats().frames_queued);
        Event e;
        while (s.poll_event(e)) {
            if (e.type == EventType::protocol_error) {
                FUZZ_CHECK(e.error != ProtocolError::none);
            }
        }
    }
    // Ended for good: nothing it took is left unaccounted for.
    s.close(CloseReason::shutdown, "end", now);
    s.transport_closed(now);
    FUZZ_CHECK(s.is_closed());
    FUZZ_CHECK(s.replay_size() == 0);
    return 0;
}
