// The two things a gateway supplies — a CAN port and a byte stream — and the bridge
// step that moves frames between them through a Session. A microcontroller port
// implements these over its own CAN controller and TCP stack and calls bridge_step
// from its main loop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "filter.hpp"
#include "frame.hpp"
#include "router.hpp"
#include "session_peer.hpp"

namespace tcpcan {

class CanPort {
public:
    // Takes one received frame if there is one; never blocks.
    [[nodiscard]] virtual bool read(Frame& frame) = 0;
    // Queues a frame for the bus; false when the controller is busy (retry later).
    [[nodiscard]] virtual bool write(const Frame& frame) = 0;

protected:
    // Not virtual: ports are never deleted through this interface (and no heap is needed).
    ~CanPort() = default;
};

struct StreamRead {
    std::size_t size = 0;  // bytes placed into the buffer
    bool closed = false;   // the connection has ended
};

class ByteStream {
public:
    // Reads what is available now, up to buffer.size(); never blocks.
    [[nodiscard]] virtual StreamRead read(std::span<std::uint8_t> buffer) = 0;
    // Writes what fits now; returns the bytes taken (possibly 0).
    [[nodiscard]] virtual std::size_t write(std::span<const std::uint8_t> bytes) = 0;

protected:
    ~ByteStream() = default;
};

struct BridgeStepResult {
    std::size_t bytes_in = 0;
    std::size_t bytes_out = 0;
    std::size_t frames_from_bus = 0;  // read from the CAN port and offered to the session
    std::size_t frames_to_bus = 0;    // written to the CAN port
    std::size_t frames_filtered = 0;  // held back by the local forwarding filter
    bool stream_closed = false;
};

// One pass: bytes in, frames from the bus out, frames to the bus, bytes out, timers.
// `max_frames` bounds each direction so one busy side cannot starve the other.
// `forward` is this side's filter for bus frames (empty = everything).
template <class SessionT>
BridgeStepResult bridge_step(SessionT& session, CanPort& can, ByteStream& stream, const FilterSetBase& forward,
                             std::uint64_t now, std::size_t max_frames = 32) {
    BridgeStepResult result;
    // Not cleared: only the bytes the stream placed are read. Its size is the profile's.
    std::array<std::uint8_t, SessionT::ProfileType::bridge_read_bytes> buffer;
    // Read no more than the bus queue can take (8 bytes = smallest frame message), so
    // a slow bus pushes back on the stream instead of losing frames.
    const std::size_t room = session.bus_queue_free() * 8;
    const std::size_t want = room < buffer.size() ? room : buffer.size();
    const StreamRead in = want > 0 ? stream.read(std::span<std::uint8_t>(buffer.data(), want)) : StreamRead{};
    if (in.size > 0) {
        const auto r = session.receive(std::span<const std::uint8_t>(buffer.data(), in.size), now);
        result.bytes_in = r.consumed;
    }
    // The hub's Router with one peer: the same forward filter and drain to the bus as the
    // Linux bridge, so there is one forwarding logic (router.hpp), not two.
    SessionPeer<SessionT, StaticPeer> peer(session);
    Router<1, 1, SessionPeer<SessionT, StaticPeer>, false> router;
    router.set_forward_filter(0, &forward);
    (void)router.attach(peer);
    Frame frame;
    for (std::size_t i = 0; i < max_frames && can.read(frame); ++i) {
        router.from_bus(0, frame, now);
    }
    std::size_t to_write = max_frames;
    (void)router.drain_to_bus(
        0,
        [&](const Frame& f) {
            if (to_write == 0 || !can.write(f)) {
                return BusWriteResult::busy;  // stays queued for the next pass
            }
            --to_write;
            return BusWriteResult::written;
        },
        now);
    const BusRouteCounters& counted = router.counters(0);
    result.frames_from_bus = static_cast<std::size_t>(counted.from_bus);
    result.frames_filtered = static_cast<std::size_t>(counted.filtered);
    result.frames_to_bus = static_cast<std::size_t>(counted.to_bus);
    session.tick(now);
    const auto pending = session.output();
    if (!pending.empty()) {
        const std::size_t written = stream.write(pending);
        session.consume_output(written);
        result.bytes_out = written;
    }
    if (in.closed) {
        session.transport_closed(now);
        result.stream_closed = true;
    }
    return result;
}

}  // namespace tcpcan
