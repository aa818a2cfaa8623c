// What the Router needs of one connection: frames in both directions and nothing
// about bytes, sockets, dialects or encryption. A tcpcan session is one kind of peer
// (session_peer.hpp); other dialects and transports are further implementations, so
// the Router's forwarding policy never changes when a new kind of peer appears.
#pragma once

#include <cstddef>
#include <cstdint>

#include "frame.hpp"

namespace tcpcan {

class Peer {
public:
    /// True once frames may flow both ways (e.g. version and features agreed). The
    /// Router neither offers frames to a peer that is not ready nor paces a source on it.
    [[nodiscard]] virtual bool ready() const = 0;

    /// A frame from the bus, or from another peer on the same bus. Never blocks: a frame
    /// the peer cannot take (no room, filtered by the peer's subscription …) is dropped
    /// and counted by the peer itself, by cause.
    virtual void offer(const Frame& frame, std::uint64_t now) = 0;

    /// True when `frames` more frames fit towards the peer without any being dropped.
    /// The Router paces a source that is not real time (stdin) on this.
    [[nodiscard]] virtual bool has_room(std::size_t frames) const = 0;

    /// The oldest frame this peer sent towards the bus, or nullptr. Frames too old to
    /// be put on the bus are dropped (and counted) by the peer before this returns.
    /// `wall_clock_us` (µs since the Unix epoch, 0 = unknown) lets a peer judge the age
    /// of frames that carry capture timestamps.
    [[nodiscard]] virtual const Frame* peek_for_bus(std::uint64_t now, std::uint64_t wall_clock_us) = 0;

    /// Removes the frame peek_for_bus returned (it was written, refused or dropped).
    virtual void pop_for_bus() = 0;

protected:
    // Not virtual: peers are never deleted through this interface (and no heap is needed).
    ~Peer() = default;
};

}  // namespace tcpcan
