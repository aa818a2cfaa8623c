// Fuzzes two Sessions back to back over an in-memory link (h11's ConnectionPair idea): the
// fuzzer decides who sends which frames, how many bytes move when (splits and stalls), the
// time, the bus, subscriptions and endings.
//
// Input: a 15-byte header, then operations until the input ends.
//   header: flags (bit 0/1: side 0/1 offers only version 1; bit 2/3: side 0/1 refuses
//           frames), features of side 0 and 1, then per side 4 bytes: negotiation timeout
//           (x 20 ms), heartbeat (x 2 ms), dead after (x 20 ms), max frame age (x 2 ms);
//           then the start time (u32 µs). Side 0 is the client.
//   operation byte b: side = b & 1, operation = (b >> 1) % 10:
//     0 send_frame: frame (as an 'f' payload, repaired), n; sent 1 + n%8 times
//     1 write: u16 bytes of the side's output onto its link     2 deliver: u16 bytes of the
//                                                                  side's link to the other
//     3 tick both: u16 step (x 100 µs)                            4 bus: n, up to 1 + n%16
//                                                                  frames; n & 0x80: u64 wall clock
//     5 poll events                                               6 close: reason, n, n%32 text bytes
//     7 transport_closed                                          8 set_local_subscription: n%65
//                                                                  entries (kind, a, b)
//     9 pump both ways in chunks of 1 + n bytes until quiet
//   At the end everything is pumped through (with tick() whenever next_deadline() has come,
//   as a port does) and both bus queues are emptied.
//
// Invariants: neither side ever sees a protocol error from the other; per direction, the
// frames that came out of the receiver's bus queue are, in order, the frames the sender
// queued (SendResult::queued) as they cross the wire, minus exactly the drops counted:
// the receiver's dropped_towards_bus() and receive-side filtering, the sender's frames
// unsent at transport close, and frames that reached the receiver after it had closed
// (which no counter can see; the harness counts them on the link). With no drops the two
// lists are equal. With sequence numbers, the receiver sees no duplicate or reordering and
// no more lost frames than the sender dropped after numbering. Two sessions left open agree
// on the highest common version and the intersection of their features, and each holds
// exactly the subscription the other last set.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include <tcpcan/session.hpp>
#include <tcpcan/subscription.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

constexpr std::size_t output_capacity = 2048;
constexpr std::size_t subscription_capacity = 64;
using PairSession = Session<output_capacity, 8, subscription_capacity, 8>;

struct Side {
    std::vector<Frame> queued;  // frames send_frame queued, in order
    std::vector<Frame> to_bus;  // frames taken from the bus queue, in order
    std::uint64_t sent_filtered = 0;
    bool transport_closed = false;
};

// Bytes on their way from one side to the other.
struct Link {
    std::vector<std::uint8_t> bytes;  // written, not yet delivered
    fuzz::MessageSplitter written;    // everything ever written, cut into messages
    std::vector<std::uint64_t> frame_ends;  // stream offsets where 'f'/'d' messages end
};

SessionOptions read_side_options(fuzz::FuzzInput& in, SessionOptions options) {
    options.negotiation_timeout_us = in.u8() * std::uint64_t{20'000};
    options.heartbeat_interval_us = in.u8() * std::uint64_t{2'000};
    options.dead_after_us = in.u8() * std::uint64_t{20'000};
    options.max_frame_age_us = in.u8() * std::uint64_t{2'000};
    return options;
}

class Pair {
public:
    Pair(const SessionOptions& a, const SessionOptions& b, std::uint64_t now)
        : options_{a, b}, now_(now), sessions_{PairSession(a, now), PairSession(b, now)} {}

    void run(fuzz::FuzzInput& in) {
        while (!in.empty()) {
            const std::uint8_t b = in.u8();
            const int side = b & 1;
            switch ((b >> 1) % 10) {
            case 0: {
                const Frame frame = fuzz::make_valid(fuzz::read_frame(in));
                const int copies = 1 + in.u8() % 8;
                for (int i = 0; i < copies; ++i) {
                    send(side, frame);
                }
                break;
            }
            case 1: write(side, in.u16()); break;
            case 2: deliver(side, in.u16()); break;
            case 3:
                now_ += std::uint64_t{in.u16()} * 100;
                sessions_[0].tick(now_);
                sessions_[1].tick(now_);
                break;
            case 4: {
                const std::uint8_t n = in.u8();
                const std::uint64_t wall = (n & 0x80) != 0 ? in.u64() : 0;
                to_bus(side, 1 + n % 16, wall);
                break;
            }
            case 5: poll_events(side); break;
            case 6: {
                const auto reason = static_cast<CloseReason>(in.u8());
                const std::span<const std::uint8_t> text = in.bytes(in.u8() % 32);
                sessions_[side].close(reason, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()),
                                      now_);
                break;
            }
            case 7:
                sessions_[side].transport_closed(now_);
                sides_[side].transport_closed = true;
                break;
            case 8: subscribe(side, in); break;
            case 9: pump(1 + std::size_t{in.u8()}); break;
            }
        }
        finish();
    }

private:
    void send(int side, const Frame& frame) {
        const SendResult r = sessions_[side].send_frame(frame, now_);
        if (r == SendResult::queued) {
            sides_[side].queued.push_back(frame);
        } else if (r == SendResult::filtered) {
            ++sides_[side].sent_filtered;
        }
    }

    // The side's transport takes up to n bytes of its output onto the link.
    std::size_t write(int side, std::size_t n) {
        PairSession& s = sessions_[side];
        Link& link = links_[side];
        const std::span<const std::uint8_t> out = s.output();
        const std::size_t taken = n < out.size() ? n : out.size();
        for (std::size_t i = 0; i < taken; ++i) {
            link.bytes.push_back(out[i]);
            if (link.written.push(out[i])) {
                const std::uint8_t p = link.written.last().prefix;
                if (p == prefix::frame || p == prefix::data_v1) {
                    link.frame_ends.push_back(link.written.last().end);
                }
            }
        }
        s.consume_output(taken);
        return taken;
    }

    // Up to n bytes of the side's link reach the other side.
    std::size_t deliver(int side, std::size_t n) {
        Link& link = links_[side];
        PairSession& to = sessions_[1 - side];
        const std::size_t offered = n < link.bytes.size() ? n : link.bytes.size();
        const ReceiveResult r = to.receive(std::span<const std::uint8_t>(link.bytes.data(), offered), now_);
        FUZZ_CHECK(r.ok);  // two correct sessions never break the protocol
        FUZZ_CHECK(r.consumed <= offered);
        FUZZ_CHECK(to.is_closed() || r.consumed == offered);
        link.bytes.erase(link.bytes.begin(), link.bytes.begin() + static_cast<std::ptrdiff_t>(r.consumed));
        return r.consumed;
    }

    void to_bus(int side, std::size_t count, std::uint64_t wall_clock) {
        for (std::size_t i = 0; i < count; ++i) {
            const Frame* frame = sessions_[side].peek_bus_frame(now_, wall_clock);
            if (frame == nullptr) {
                return;
            }
            sides_[side].to_bus.push_back(*frame);
            sessions_[side].pop_bus_frame();
        }
    }

    void poll_events(int side) {
        Event e;
        while (sessions_[side].poll_event(e)) {
            FUZZ_CHECK(e.type != EventType::protocol_error);
            FUZZ_CHECK(e.type != EventType::sequence_duplicate && e.type != EventType::sequence_reordered);
        }
    }

    void subscribe(int side, fuzz::FuzzInput& in) {
        FilterSet<subscription_capacity> filters;
        const std::size_t n = in.u8() % (subscription_capacity + 1);
        for (std::size_t i = 0; i < n; ++i) {
            WireFilterEntry e = fuzz::read_wire_entry(in);
            (void)filters.add(filter_entry_from_wire(e));
        }
        FUZZ_CHECK(sessions_[side].set_local_subscription(filters));
        subscriptions_[side].assign(filters.entries().begin(), filters.entries().end());
    }

    // Moves bytes both ways, `chunk` at a time, until nothing moves.
    void pump(std::size_t chunk) {
        for (int round = 0;; ++round) {
            FUZZ_CHECK(round < 100'000);  // the link goes quiet without new input
            std::size_t moved = 0;
            for (int side = 0; side < 2; ++side) {
                moved += write(side, chunk);
                moved += deliver(side, chunk);
            }
            if (moved == 0) {
                return;
            }
        }
    }

    // Per direction: what left the receiver's bus queue is what the sender queued, minus
    // the counted drops.
    void check_direction(int from, int to) {
        const SessionStats& x = sessions_[from].stats();
        const SessionStats& y = sessions_[to].stats();
        const Side& sender = sides_[from];
        const Side& receiver = sides_[to];
        const Link& link = links_[from];
        FUZZ_CHECK(x.frames_queued == sender.queued.size());
        FUZZ_CHECK(sessions_[from].output().empty() && link.bytes.empty());
        // Frames whole on the link, plus those the sender's transport close cut off.
        FUZZ_CHECK(link.frame_ends.size() + x.drop_unsent_at_close == x.frames_queued);
        FUZZ_CHECK(sender.transport_closed || x.frames_written == x.frames_queued);

        // The receiver read up to bytes_in while open; frames ending later met a closed session.
        std::uint64_t handled = 0;
        for (const std::uint64_t end : link.frame_ends) {
            handled += end <= y.bytes_in ? 1 : 0;
        }
        const std::uint64_t lost_after_close = link.frame_ends.size() - handled;
        FUZZ_CHECK(y.frames_from_peer + y.drop_duplicate == handled);
        FUZZ_CHECK(y.drop_duplicate == 0);

        const std::uint64_t filtered_on_receipt = y.filtered_out - receiver.sent_filtered;
        FUZZ_CHECK(sessions_[to].bus_queue_size() == 0);
        FUZZ_CHECK(y.frames_to_bus == receiver.to_bus.size());
        FUZZ_CHECK(y.frames_from_peer == y.drop_refused + filtered_on_receipt + y.drop_bus_queue_full +
                                             y.frames_to_bus + y.drop_expired + y.drop_unsent_bus_queue);
        // Issue 5: out = in - counted drops (and, being a subsequence, equal when none).
        FUZZ_CHECK(sender.queued.size() == receiver.to_bus.size() + y.dropped_towards_bus() + filtered_on_receipt +
                                               x.drop_unsent_at_close + lost_after_close);

        // In order: every frame that came out matches the next queued frame it can be.
        const std::uint32_t version = sessions_[from].version();
        const std::uint32_t features = sessions_[from].agreed_features();
        std::size_t next = 0;
        for (const Frame& out : receiver.to_bus) {
            while (next < sender.queued.size() && !(fuzz::as_received(sender.queued[next], version, features) == out)) {
                ++next;
            }
            FUZZ_CHECK(next < sender.queued.size());
            ++next;
        }

        if ((sessions_[to].agreed_features() & feature::sequence) != 0) {
            FUZZ_CHECK(y.sequence.duplicates == 0 && y.sequence.reordered == 0);
            FUZZ_CHECK(y.sequence.lost <= x.drop_output_full);
        }
    }

    // As a port does: tick() whenever next_deadline() has come, then move the bytes, until
    // neither has anything left to do at this time.
    void settle() {
        for (int round = 0;; ++round) {
            FUZZ_CHECK(round < 1000);
            pump(4096);
            bool due = false;
            for (PairSession& s : sessions_) {
                if (s.next_deadline() <= now_) {
                    s.tick(now_);
                    due = true;
                }
            }
            if (!due) {
                return;
            }
        }
    }

    void finish() {
        settle();
        for (int side = 0; side < 2; ++side) {
            poll_events(side);
            to_bus(side, ~std::size_t{0}, 0);
        }
        check_direction(0, 1);
        check_direction(1, 0);

        const PairSession& a = sessions_[0];
        const PairSession& b = sessions_[1];
        if (a.version() != 0 && b.version() != 0) {
            FUZZ_CHECK(a.version() == b.version());
        }
        if (!a.is_closed() && !b.is_closed()) {
            // Pumped to the end with both open: agreed on the best common terms.
            const std::uint32_t best = options_[0].max_version < options_[1].max_version ? options_[0].max_version
                                                                                         : options_[1].max_version;
            FUZZ_CHECK(a.state() == SessionState::established && b.state() == SessionState::established);
            FUZZ_CHECK(a.version() == best && b.version() == best);
            // RESUME needs a replay buffer, which these sessions have not: never offered.
            const std::uint32_t offered = feature::known & ~(PairSession::supports_resume ? 0u : feature::resume);
            const std::uint32_t features = best == 2 ? options_[0].features & options_[1].features & offered : 0;
            FUZZ_CHECK(a.agreed_features() == features && b.agreed_features() == features);
            // Each side filters for the other exactly as asked (version 2 carries 's'; in
            // version 1 a subscription stays local).
            for (int side = 0; side < 2; ++side) {
                const auto held = sessions_[1 - side].peer_subscription().entries();
                if (best == 1) {
                    FUZZ_CHECK(held.empty());
                } else {
                    FUZZ_CHECK(std::equal(held.begin(), held.end(), subscriptions_[side].begin(),
                                          subscriptions_[side].end()));
                }
            }
        }
    }

    SessionOptions options_[2];
    std::uint64_t now_;
    PairSession sessions_[2];
    Side sides_[2];
    Link links_[2];  // links_[i] carries side i's output to the other side
    std::vector<FilterEntry> subscriptions_[2];  // each side's last local subscription
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::FuzzInput in(data, size);
    const std::uint8_t flags = in.u8();
    SessionOptions a;
    SessionOptions b;
    a.role = Role::client;
    b.role = Role::server;
    a.max_version = (flags & 1) != 0 ? 1 : 2;
    b.max_version = (flags & 2) != 0 ? 1 : 2;
    a.accept_frames = (flags & 4) == 0;
    b.accept_frames = (flags & 8) == 0;
    a.features = in.u8();
    b.features = in.u8();
    a = read_side_options(in, a);
    b = read_side_options(in, b);
    const std::uint64_t now = in.u32();
    std::make_unique<Pair>(a, b, now)->run(in);  // on the heap: two sessions are large
    return 0;
}
