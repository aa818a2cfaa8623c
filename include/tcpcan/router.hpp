// The Router: forwarding policy between buses and peers, sans-IO. It owns no file
// descriptor, clock or heap and allocates nothing per frame. It decides
//   - which bus frames go out (the forward filter) and to whom (every ready peer on
//     that bus: fan-out),
//   - which peer frames reach the bus (per-peer transmit policy: read-only, an allow
//     list, a rate limit), in round robin so no peer starves another, and echoes each
//     frame written to the bus to the other peers on it, as a shared bus would,
//   - how fast a source that is not real time (stdin, a file) is read: as fast as the
//     slowest peer that is still reading, never waiting for one that has stalled,
// and it counts what it forwards, filters and refuses.
//
// Order of calls for a port, per pass of its loop: from_bus() for each frame read
// (reading only while read_allowed()), then drain_to_bus() with a function that writes
// one frame to the bus. attach() a peer when its connection starts, detach() it before
// the peer object goes away.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "filter.hpp"
#include "frame.hpp"
#include "peer.hpp"
#include "rate_limit.hpp"

namespace tcpcan {

enum class BusWriteResult : std::uint8_t {
    written,  // on the bus
    busy,     // not now; the frame stays queued and the drain stops until the next pass
    down,     // the interface is down: dropped and counted
    refused,  // the bus cannot carry it (e.g. FD on a classic interface): dropped and counted
};

/// What one peer may put on the bus. Frames it refuses are counted by cause and reach
/// neither the bus nor other peers.
struct TransmitPolicy {
    bool read_only = false;
    const FilterSetBase* allow = nullptr;  // nullptr: any frame; else only matching frames (no error frames)
    std::uint32_t max_frames_per_s = 0;    // 0: no limit
    std::uint32_t burst = 0;               // frames at once; 0: one second's worth
};

struct RouterOptions {
    /// A source that is not real time is read only as fast as its ready peers take it,
    /// in batches of this many frames.
    std::size_t pace_batch = 64;
    /// A peer that had no room for a batch for this long is stalled: the paced source no
    /// longer waits for it, and the frames it cannot take are dropped (counted by the peer).
    std::uint64_t stall_after_us = 2'000'000;
};

/// Per bus, summed over every peer that was ever attached to it.
struct BusRouteCounters {
    std::uint64_t from_bus = 0;      // frames read from the bus
    std::uint64_t to_bus = 0;        // frames from peers written to the bus
    std::uint64_t filtered = 0;      // bus frames held back by the forward filter
    std::uint64_t unforwarded = 0;   // bus frames read while no peer was ready (not a drop)
    std::uint64_t bus_down = 0;      // peer frames dropped: the interface was down
    std::uint64_t bus_refused = 0;   // peer frames dropped: the bus cannot carry them
    std::uint64_t refused_read_only = 0;    // peer frames refused by policy: read-only peer
    std::uint64_t refused_not_allowed = 0;  // refused by policy: not in the peer's allow list
    std::uint64_t refused_rate = 0;         // refused by policy: over the peer's rate limit

    [[nodiscard]] constexpr std::uint64_t dropped() const {
        return bus_down + bus_refused + refused_read_only + refused_not_allowed + refused_rate;
    }
};

/// Per attached peer.
struct PeerRouteCounters {
    std::uint64_t to_bus = 0;
    std::uint64_t refused_read_only = 0;
    std::uint64_t refused_not_allowed = 0;
    std::uint64_t refused_rate = 0;
};

namespace detail {
struct SlotPolicy {
    TransmitPolicy policy{};
    TokenBucket rate{};
};
struct NoSlotPolicy {};
}  // namespace detail

/// PeerT: `Peer` (any kind of peer, through its virtual interface) or one concrete peer
/// type (no virtual calls: a gateway's one-peer case). WithPolicy: false compiles the
/// transmit policy out.
template <class PeerT = Peer, bool WithPolicy = true>
struct RouterSlot {
    PeerT* peer = nullptr;
    std::size_t bus = 0;
    [[no_unique_address]] std::conditional_t<WithPolicy, detail::SlotPolicy, detail::NoSlotPolicy> transmit{};
    bool short_of_room = false;       // had no room for a batch at the last look …
    std::uint64_t no_room_since = 0;  // … since this time
    PeerRouteCounters counters{};
};

struct RouterBus {
    const FilterSetBase* forward = nullptr;  // nullptr: forward every frame
    std::size_t next_first = 0;              // round robin: the slot served first next time
    BusRouteCounters counters{};
};

/// The Router over storage it does not own (ETL's ivector idea); Router<> holds it.
template <class PeerT = Peer, bool WithPolicy = true>
class BasicRouterBase {
public:
    using Slot = RouterSlot<PeerT, WithPolicy>;

    BasicRouterBase(const BasicRouterBase&) = delete;
    BasicRouterBase& operator=(const BasicRouterBase&) = delete;

    /// Starts routing for `peer` on `bus`. False (and nothing changes) when every slot
    /// is taken, the bus does not exist or the peer is attached already.
    [[nodiscard]] constexpr bool attach(PeerT& peer, std::size_t bus = 0, const TransmitPolicy& policy = {}) {
        if (bus >= buses_.size() || used_ == slots_.size() || find(peer) != nullptr) {
            return false;
        }
        Slot& slot = slots_[used_++];
        slot = Slot{};
        slot.peer = &peer;
        slot.bus = bus;
        if constexpr (WithPolicy) {
            slot.transmit.policy = policy;
            slot.transmit.rate =
                TokenBucket(policy.max_frames_per_s, policy.burst != 0 ? policy.burst : policy.max_frames_per_s);
        } else {
            (void)policy;
        }
        return true;
    }

    /// Stops routing for `peer`; its counters stay in its bus's totals.
    constexpr void detach(const PeerT& peer) {
        if (Slot* slot = find(peer)) {
            // Slots stay dense, so every per-frame loop runs over attached peers only.
            *slot = slots_[--used_];
            slots_[used_] = Slot{};
        }
    }

    /// Frames read from `bus` pass this filter before reaching any peer (nullptr: all).
    /// The filter must outlive the Router or be replaced first.
    constexpr void set_forward_filter(std::size_t bus, const FilterSetBase* filter) { buses_[bus].forward = filter; }

    /// One frame read from `bus`: filtered, then offered to every ready peer on it.
    constexpr void from_bus(std::size_t bus, const Frame& frame, std::uint64_t now) {
        BusRouteCounters& c = buses_[bus].counters;
        ++c.from_bus;
        if (buses_[bus].forward != nullptr && !buses_[bus].forward->matches(frame)) {
            ++c.filtered;
            return;
        }
        if (offer_to_peers(bus, frame, nullptr, now) == 0) {
            ++c.unforwarded;
        }
    }

    /// Whether the port should read `bus` now. A real-time bus (`paced` false) is always
    /// read: frames a slow peer cannot take are its drops. A paced source is read when at
    /// least one ready peer has room for a batch and no ready peer that is still reading
    /// lacks it; peers without room for longer than stall_after_us are not waited for.
    [[nodiscard]] constexpr bool read_allowed(std::size_t bus, bool paced, std::uint64_t now) {
        if (!paced) {
            return true;
        }
        bool some_have_room = false;
        bool some_wait = false;
        for (Slot& slot : slots_.first(used_)) {
            if (slot.bus != bus || !slot.peer->ready()) {
                continue;
            }
            if (slot.peer->has_room(options_.pace_batch)) {
                slot.short_of_room = false;
                some_have_room = true;
                continue;
            }
            if (!slot.short_of_room) {
                slot.short_of_room = true;
                slot.no_room_since = now;
            }
            some_wait = some_wait || now - slot.no_room_since < options_.stall_after_us;
        }
        // With every ready peer stalled nobody could take a frame: waiting loses nothing.
        return some_have_room && !some_wait;
    }

    /// True when `peer` is ready, has had no room for a batch for stall_after_us, and
    /// therefore no longer paces its bus (as of the last read_allowed()).
    [[nodiscard]] constexpr bool stalled(const PeerT& peer, std::uint64_t now) const {
        const Slot* slot = find(peer);
        return slot != nullptr && slot->short_of_room && now - slot->no_room_since >= options_.stall_after_us;
    }

    /// Moves frames from the peers of `bus` to it, one frame per peer per round, until the
    /// bus is busy or no peer has a frame. `write` is `BusWriteResult(const Frame&)`.
    /// Returns false when the bus was busy (call again when it can take more).
    template <class WriteToBus>
    [[nodiscard]] constexpr bool drain_to_bus(std::size_t bus, WriteToBus&& write, std::uint64_t now,
                                              std::uint64_t wall_clock_us = 0) {
        RouterBus& b = buses_[bus];
        const std::size_t n = used_;
        if (n == 0) {
            return true;
        }
        const std::size_t first = b.next_first % n;
        b.next_first = (first + 1) % n;  // the next pass starts one peer later
        bool progress = true;
        while (progress) {
            progress = false;
            for (std::size_t k = 0; k < n; ++k) {
                const std::size_t i = (first + k) % n;
                Slot& slot = slots_[i];
                if (slot.bus != bus) {
                    continue;
                }
                const Frame* frame = slot.peer->peek_for_bus(now, wall_clock_us);
                if (frame == nullptr) {
                    continue;
                }
                progress = true;
                if (!transmit_allowed(slot, *frame, now, b.counters)) {
                    slot.peer->pop_for_bus();
                    continue;
                }
                const BusWriteResult r = write(*frame);
                if (r == BusWriteResult::busy) {
                    b.next_first = i;  // this peer goes first once the bus takes frames again
                    return false;
                }
                if (r == BusWriteResult::written) {
                    ++b.counters.to_bus;
                    ++slot.counters.to_bus;
                    // A CAN socket does not hear its own frames: the other peers hear it from us.
                    (void)offer_to_peers(bus, *frame, slot.peer, now);
                } else if (r == BusWriteResult::down) {
                    ++b.counters.bus_down;
                } else {
                    ++b.counters.bus_refused;
                }
                slot.peer->pop_for_bus();
            }
        }
        return true;
    }

    [[nodiscard]] constexpr const BusRouteCounters& counters(std::size_t bus) const { return buses_[bus].counters; }
    /// nullptr when `peer` is not attached.
    [[nodiscard]] constexpr const PeerRouteCounters* counters(const PeerT& peer) const {
        const Slot* slot = find(peer);
        return slot != nullptr ? &slot->counters : nullptr;
    }
    /// Ready peers on `bus`.
    [[nodiscard]] constexpr std::size_t ready_peers(std::size_t bus) const {
        std::size_t n = 0;
        for (const Slot& slot : slots_.first(used_)) {
            n += (slot.bus == bus && slot.peer->ready()) ? 1 : 0;
        }
        return n;
    }

protected:
    constexpr BasicRouterBase(std::span<Slot> slots, std::span<RouterBus> buses, const RouterOptions& options)
        : slots_(slots), buses_(buses), options_(options) {}
    ~BasicRouterBase() = default;

private:
    [[nodiscard]] constexpr Slot* find(const PeerT& peer) {
        for (Slot& slot : slots_.first(used_)) {
            if (slot.peer == &peer) {
                return &slot;
            }
        }
        return nullptr;
    }
    [[nodiscard]] constexpr const Slot* find(const PeerT& peer) const {
        for (const Slot& slot : slots_.first(used_)) {
            if (slot.peer == &peer) {
                return &slot;
            }
        }
        return nullptr;
    }

    // Returns how many peers were offered the frame.
    constexpr std::size_t offer_to_peers(std::size_t bus, const Frame& frame, const PeerT* except, std::uint64_t now) {
        std::size_t offered = 0;
        for (Slot& slot : slots_.first(used_)) {
            if (slot.peer != except && slot.bus == bus && slot.peer->ready()) {
                slot.peer->offer(frame, now);
                ++offered;
            }
        }
        return offered;
    }

    [[nodiscard]] static constexpr bool transmit_allowed(Slot& slot, const Frame& frame, std::uint64_t now,
                                                         BusRouteCounters& bus) {
        if constexpr (!WithPolicy) {
            (void)slot, (void)frame, (void)now, (void)bus;
            return true;
        } else {
            if (slot.transmit.policy.read_only) {
                ++slot.counters.refused_read_only;
                ++bus.refused_read_only;
                return false;
            }
            // An allow list names identifiers; an error frame has none, so it is refused.
            const FilterSetBase* allow = slot.transmit.policy.allow;
            if (allow != nullptr && (frame.is_error() || !allow->matches(frame))) {
                ++slot.counters.refused_not_allowed;
                ++bus.refused_not_allowed;
                return false;
            }
            if (!slot.transmit.rate.try_take(now)) {
                ++slot.counters.refused_rate;
                ++bus.refused_rate;
                return false;
            }
            return true;
        }
    }

    std::span<Slot> slots_;
    std::size_t used_ = 0;  // slots_[0, used_) hold the attached peers
    std::span<RouterBus> buses_;
    RouterOptions options_;
};

namespace detail {
// A base class, so the arrays exist before RouterBase takes spans of them.
template <class Slot, std::size_t MaxPeers, std::size_t Buses>
struct RouterStorage {
    std::array<Slot, MaxPeers> slots{};
    std::array<RouterBus, Buses> buses{};
};
}  // namespace detail

using RouterBase = BasicRouterBase<>;

/// A Router for up to MaxPeers peers spread over Buses buses, storage inside the object.
template <std::size_t MaxPeers, std::size_t Buses = 1, class PeerT = Peer, bool WithPolicy = true>
class Router : private detail::RouterStorage<RouterSlot<PeerT, WithPolicy>, MaxPeers, Buses>,
               public BasicRouterBase<PeerT, WithPolicy> {
    static_assert(MaxPeers > 0 && Buses > 0, "a router needs at least one peer slot and one bus");
    using Base = BasicRouterBase<PeerT, WithPolicy>;

public:
    explicit constexpr Router(const RouterOptions& options = {})
        : Base(std::span<typename Base::Slot>(this->slots), std::span<RouterBus>(this->buses), options) {}
};

}  // namespace tcpcan
