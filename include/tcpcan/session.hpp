// One sans-IO tcpcan session: negotiation, features, frames, heartbeat, filters and
// close, over bytes and frames the port moves, with time given as `now` (µs of any
// monotonic clock). It holds no socket, clock or heap; queues are bounded and every
// frame it drops is counted by cause.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "decoder.hpp"
#include "detail/ring_queue.hpp"
#include "encoder.hpp"
#include "errors.hpp"
#include "filter.hpp"
#include "frame.hpp"
#include "message.hpp"
#include "negotiation.hpp"
#include "profile.hpp"
#include "sequence.hpp"
#include "subscription.hpp"

namespace tcpcan {

struct SessionOptions {
    Role role = Role::client;
    std::uint32_t max_version = highest_version;  // highest proposed or accepted; 1 = plain tcpcan
    std::uint32_t features = feature::sequence;   // offered in 'h'; the intersection applies
    std::uint64_t negotiation_timeout_us = 5'000'000;  // until established; 0 = none
    std::uint64_t heartbeat_interval_us = 0;           // ping period; 0 = send none
    std::uint64_t dead_after_us = 0;                   // silence that declares the peer dead; 0 = never
    std::uint64_t max_frame_age_us = 0;                // older frames are not put on the bus; 0 = no limit
    std::uint32_t min_version = 1;                     // lowest version agreed to; a lower one ends negotiation
    bool accept_frames = true;                          // false: frames from the peer are refused and counted
};

// Resume (feature::resume): only a Session with ReplayFrames > 0 takes these
// (Session::set_resume_options, before agreement) and offers the feature.
struct ResumeOptions {
    // Server: the token a new session gives the client (random, never 0). Without one the
    // server does not offer resume.
    std::uint64_t token = 0;
    std::uint32_t ack_every_frames = 32;  // acknowledge at least every this many frames ...
    std::uint64_t ack_delay_us = 20'000;  // ... or this long after the last acknowledgement,
    // but then not within this long of the last frame received: sent in the same pass, a
    // 'k' holds up the frame on its way to the bus where one CPU runs both (issue 14: p99
    // at 1,000 frames/s +19 %). The count rule does not wait: holding it too cost the
    // server +20 % CPU per frame at 10,000 frames/s (bench_bridge).
    std::uint64_t ack_hold_us = 100;
};

// suspended: the transport ended but the session is kept for a resume (feature::resume):
// frames for the peer wait in the replay buffer; reconnect() (client) or adopt() (server)
// carries on with a new transport.
enum class SessionState : std::uint8_t { negotiating, awaiting_features, established, closed, suspended };

// Where a session is in the resume exchange (PROTOCOL.md 4.6).
enum class ResumePhase : std::uint8_t {
    off,                // resume not agreed (or the session ended)
    awaiting_request,   // server: waits for the client's 'r'
    awaiting_answer,    // client: sent 'r', waits for 'a' or 't'
    request_pending,    // server: got 'r' with a token; the port answers with adopt() or refuse_resume()
    running,            // frames flow, acknowledged
    suspended,          // the transport ended; kept for a resume
};

enum class EventType : std::uint8_t {
    version_agreed,      // value = version
    features_agreed,     // value = agreed feature bits
    subscription_set,    // value = entries now applied to frames sent to the peer
    sequence_gap,        // value = expected sequence, value2 = frames missing
    sequence_duplicate,  // value = sequence number
    sequence_reordered,  // value = sequence number
    rtt_measured,        // value = round-trip time in µs
    peer_dead,           // value = µs of silence
    protocol_error,      // error + offset: what the peer got wrong and where
    closed,              // reason; by_peer says who closed; text via close_text()
    bus_requested,       // server: the client named a bus (requested_bus()); answer with accept_bus() or close()
    bus_chosen,          // the bus is settled (client: the server accepted it; server: accept_bus() was called)
    suspended,           // the transport ended; the session is kept for a resume. value = frames unacknowledged
    resume_requested,    // server: the client presented a token (requested_resume_token()); answer it
    resumed,             // value = frames to send again, value2 = frames the peer had not acknowledged
    resume_refused,      // server: the token was unknown; a new session started
    resume_failed,       // client: the server did not know the session; value = frames undeliverable
};

struct Event {
    EventType type{};
    std::uint32_t value = 0;
    std::uint32_t value2 = 0;
    ProtocolError error = ProtocolError::none;
    std::uint64_t offset = 0;
    CloseReason reason = CloseReason::normal;
    bool by_peer = false;
};

enum class SendResult : std::uint8_t {
    queued,
    filtered,           // the peer's subscription excludes it (not a drop)
    not_established,    // dropped: no agreed session yet (as tcpcan does)
    output_full,        // dropped: the peer is not reading fast enough
    invalid,            // dropped: the frame cannot be carried
    closed,             // dropped: the session has ended
};

/// Counters of one session; Counter is the profile's (32 bits on a gateway).
template <class Counter>
struct BasicSessionStats {
    Counter frames_from_peer = 0;  // valid frames received
    Counter frames_to_bus = 0;     // frames handed to the port for the bus
    Counter frames_queued = 0;     // frames encoded for the peer
    Counter frames_written = 0;    // of those, fully handed to the transport
    Counter filtered_out = 0;      // excluded by a subscription (both directions)
    Counter drop_not_established = 0;
    Counter drop_output_full = 0;
    Counter drop_invalid = 0;
    Counter drop_after_close = 0;
    Counter drop_unsent_at_close = 0;  // encoded but never written when the transport ended
    Counter drop_bus_queue_full = 0;
    Counter drop_expired = 0;
    Counter drop_duplicate = 0;
    Counter drop_refused = 0;           // peer frames refused (accept_frames = false)
    Counter drop_unsent_bus_queue = 0;  // still queued for the bus when the session was discarded
    Counter drop_not_classic = 0;       // CAN FD frames from the peer for a classic-only bus (profile)
    Counter messages_skipped = 0;       // unknown optional messages
    Counter events_lost = 0;
    Counter bytes_in = 0;
    Counter bytes_out = 0;
    Counter pings_sent = 0;
    Counter pongs_received = 0;
    Counter pings_skipped = 0;  // heartbeat due while the output was full
    Counter pongs_skipped = 0;  // pings left unanswered while the output was full
    Counter rtt_last_us = 0;
    Counter rtt_min_us = 0;
    Counter rtt_max_us = 0;
    Counter acks_sent = 0;            // 'k' messages (feature::resume)
    Counter frames_replayed = 0;      // frames encoded again after a resume
    Counter resumed = 0;              // resumes completed
    Counter undeliverable = 0;        // unacknowledged frames given up: resume failed, window over, ended
    Counter drop_replay_full = 0;     // numbered but not kept: replay buffer full (the peer sees a gap)
    Counter drop_replay_expired = 0;  // older than max_frame_age when their turn to be sent came
    SequenceCounters sequence{};

    [[nodiscard]] constexpr std::uint64_t dropped_towards_peer() const {
        return std::uint64_t{drop_not_established} + drop_output_full + drop_invalid + drop_after_close + drop_unsent_at_close +
               drop_replay_full + drop_replay_expired + undeliverable;
    }
    [[nodiscard]] constexpr std::uint64_t dropped_towards_bus() const {
        return std::uint64_t{drop_bus_queue_full} + drop_expired + drop_duplicate + drop_refused + drop_unsent_bus_queue +
               drop_not_classic;
    }
};

using SessionStats = BasicSessionStats<std::uint64_t>;

struct ReceiveResult {
    std::size_t consumed = 0;
    bool ok = true;  // false: the peer broke the protocol; see the protocol_error event
};

namespace detail {
// A classic frame as a classic-only bus queue holds it (no FD data, no timestamp).
struct ClassicFrame {
    std::uint32_t id = 0;
    std::uint8_t len = 0;
    std::uint8_t flags = 0;
    std::array<std::uint8_t, max_classic_length> data{};
};
// Where a bus request stands: client wanted -> sent -> chosen; server requested -> chosen.
enum class BusRequest : std::uint8_t { none, wanted, sent, requested, chosen };
// Stands in for the local subscription when the profile has none: passes everything.
struct NoLocalSubscription {
    [[nodiscard]] static constexpr bool matches(const Frame&) { return true; }
    [[nodiscard]] static constexpr bool empty() { return true; }
};
// Stands in for resume state in a session without a replay buffer: costs no byte.
struct NoResume {};
// Next sequence numbers compare modulo 2^32: `a` is before `b` when b - a is below 2^31.
[[nodiscard]] constexpr bool sequence_before(std::uint32_t a, std::uint32_t b) {
    return a != b && static_cast<std::uint32_t>(b - a) < 0x8000'0000u;
}
}  // namespace detail

/// The largest 'f' message a classic frame makes: header, flags, id, len, sequence,
/// timestamp, 8 data bytes.
inline constexpr std::size_t max_classic_frame_message_size = header_size + 6 + 4 + 8 + max_classic_length;

/// One session. Capacities: OutputBytes of encoded messages waiting for the transport,
/// BusFrames waiting for the bus, SubscriptionEntries of the peer's filter, Events, and
/// ReplayFrames: frames kept until the peer acknowledges them (0 = no resume feature, no cost).
/// Profile (profile.hpp) picks what the session carries; FullProfile is everything.
/// The static_asserts below give the smallest capacities a profile allows: output room
/// for 4 control messages plus 2 frames (FullProfile: 6 x 257 = 1542 bytes; GatewayProfile:
/// 4 x 6 + 2 x 28 = 80 bytes), and the 28 subscription entries PROTOCOL.md requires.
template <std::size_t OutputBytes = 16384, std::size_t BusFrames = 256, std::size_t SubscriptionEntries = 64,
          std::size_t Events = 32, SessionProfile Profile = FullProfile, std::size_t ReplayFrames = 0>
class Session {
    static constexpr bool resumable = ReplayFrames > 0;
    // The largest message this side sends for a frame, and as a control message (with
    // neither subscription nor close texts: 'v', 'h', 'p', 'q' of 6 bytes, 'c' of 3).
    static constexpr std::size_t largest_frame_message =
        Profile::fd_frames || Profile::version_1 ? max_message_size : max_classic_frame_message_size;
    static constexpr std::size_t largest_control_message =
        Profile::local_subscription || Profile::close_texts ? max_message_size : header_size + 4;
    // Frames may fill the output only up to this reserve, so control messages
    // (version, features, pong, subscription, close) always find room.
    static constexpr std::size_t control_reserve = 4 * largest_control_message;
    static_assert(OutputBytes >= control_reserve + 2 * largest_frame_message,
                  "output too small for frames and control messages");
    static_assert(SubscriptionEntries >= wire_filter::max_entries, "PROTOCOL.md requires room for 28 entries");

public:
    using Stats = BasicSessionStats<typename Profile::Counter>;
    using ProfileType = Profile;
    /// A replay buffer (ReplayFrames > 0) is what lets a session offer feature::resume.
    static constexpr bool supports_resume = resumable;

    constexpr Session(const SessionOptions& options, std::uint64_t now)
        : options_(options), negotiator_(options.role, negotiation_config(options)) {
        if (!resumable || (options_.features & feature::sequence) == 0) {
            // Nothing to replay from, or no sequence numbers for acknowledgements to count.
            options_.features &= ~feature::resume;
        }
        started_us_ = now;
        last_rx_us_ = now;
        const NegotiationStep step = negotiator_.start();
        if (step.send) {
            append_message(encode_version(output_space(), step.send_version));
        }
    }

    /// Takes over the whole state of `other`, a session with capacities no larger than
    /// this one's: a port can hold a connection in a small session while it negotiates
    /// (so connections that never agree cost little) and move it into a full-size one
    /// once it is established. Nothing is lost: pending output, queued frames, events,
    /// subscriptions, counters and timers all carry over.
    template <std::size_t O, std::size_t B, std::size_t S, std::size_t E, std::size_t R>
        requires(O <= OutputBytes && B <= BusFrames && S <= SubscriptionEntries && E <= Events && R <= ReplayFrames &&
                 (R > 0) == resumable)
    constexpr explicit Session(const Session<O, B, S, E, Profile, R>& other)
        : options_(other.options_),
          negotiator_(other.negotiator_),
          decoder_(other.decoder_),
          message_(other.message_),
          state_(other.state_),
          version_(other.version_),
          agreed_features_(other.agreed_features_),
          next_sequence_(other.next_sequence_),
          sequence_(other.sequence_),
          started_us_(other.started_us_),
          last_rx_us_(other.last_rx_us_),
          last_ping_us_(other.last_ping_us_),
          ping_token_(other.ping_token_),
          ping_outstanding_(other.ping_outstanding_),
          retry_with_version_1_(other.retry_with_version_1_),
          subscription_pending_(other.subscription_pending_),
          closed_by_peer_message_(other.closed_by_peer_message_),
          bus_name_(other.bus_name_),
          bus_name_size_(other.bus_name_size_),
          bus_request_(other.bus_request_),
          current_is_frame_(other.current_is_frame_),
          unwritten_in_message_(other.unwritten_in_message_),
          stats_(other.stats_) {
        for (std::size_t i = other.output_head_; i < other.output_tail_; ++i) {
            output_[output_tail_++] = other.output_[i];
        }
        auto frames = other.bus_queue_;
        for (; !frames.empty(); frames.pop()) {
            QueuedFrame q{frames.front().frame, frames.front().arrived_us};
            if constexpr (resumable) {
                q.sequence = frames.front().sequence;
            }
            (void)bus_queue_.push(q);  // fits: BusFrames >= B
        }
        if constexpr (resumable) {
            resume_.copy_from(other.resume_);
        }
        auto events = other.events_;
        for (; !events.empty(); events.pop()) {
            (void)events_.push(events.front());
        }
        for (const FilterEntry& e : other.peer_subscription_.entries()) {
            (void)peer_subscription_.add(e);
        }
        if constexpr (Profile::local_subscription) {
            for (const FilterEntry& e : other.local_subscription_.entries()) {
                (void)local_subscription_.add(e);
            }
        }
    }

    // ---- Bytes from the peer -------------------------------------------------------
    [[nodiscard]] constexpr ReceiveResult receive(std::span<const std::uint8_t> bytes, std::uint64_t now) {
        ReceiveResult result;
        if (state_ == SessionState::closed) {
            result.consumed = bytes.size();  // nothing more is read from a closed session
            return result;
        }
        if (!bytes.empty()) {
            last_rx_us_ = now;
        }
        while (result.consumed < bytes.size() && state_ != SessionState::closed && state_ != SessionState::suspended &&
               !resume_request_pending()) {
            const DecodeResult r = decoder_.decode(bytes.subspan(result.consumed), message_);
            result.consumed += r.consumed;
            if (r.status == DecodeStatus::need_more) {
                break;
            }
            if (r.status == DecodeStatus::error) {
                protocol_failure(decoder_.error(), decoder_.error_offset(), now);
                result.ok = false;
                break;
            }
            if (!handle(message_, now)) {
                result.ok = false;
                break;
            }
        }
        stats_.bytes_in += result.consumed;
        if constexpr (resumable) {
            resume_.now_hint = now;
        }
        return result;
    }

    // ---- Frames from the local bus ----------------------------------------------------
    [[nodiscard]] constexpr SendResult send_frame(const Frame& frame, std::uint64_t now) {
        (void)now;
        if (state_ == SessionState::closed) {
            ++stats_.drop_after_close;
            return SendResult::closed;
        }
        if (check_frame(frame) != FrameProblem::none || (!Profile::fd_frames && frame.is_fd())) {
            ++stats_.drop_invalid;
            return SendResult::invalid;
        }
        if (!peer_subscription_.matches(frame)) {
            ++stats_.filtered_out;
            return SendResult::filtered;
        }
        if constexpr (resumable) {
            if (resume_.phase != ResumePhase::off) {
                return keep_for_replay(frame, now);
            }
        }
        if (state_ != SessionState::established) {
            ++stats_.drop_not_established;
            return SendResult::not_established;
        }
        // Numbered on entry, so a frame dropped below leaves a gap the peer can see.
        const std::uint32_t sequence = next_sequence_++;
        std::size_t size = 0;
        const std::span<std::uint8_t> space = frame_space();
        if (Profile::version_1 && version_ == 1) {
            if constexpr (Profile::version_1) {
                size = encode_data_v1(space, frame);
            }
        } else {
            size = encode_frame(space, frame, (agreed_features_ & feature::sequence) != 0, sequence,
                                (agreed_features_ & feature::timestamps) != 0);
        }
        if (size == 0) {
            ++stats_.drop_output_full;
            return SendResult::output_full;
        }
        append_message(size);
        ++stats_.frames_queued;
        return SendResult::queued;
    }

    // ---- Bytes for the peer ----------------------------------------------------------
    [[nodiscard]] constexpr std::span<const std::uint8_t> output() const {
        return {output_.data() + output_head_, output_tail_ - output_head_};
    }

    // The transport took `n` bytes from the front of output().
    constexpr void consume_output(std::size_t n) {
        n = n < output_tail_ - output_head_ ? n : output_tail_ - output_head_;
        stats_.bytes_out += n;
        // Walk message boundaries so written frames are counted exactly.
        while (n > 0) {
            if (unwritten_in_message_ == 0) {
                const std::uint8_t p = output_[output_head_];
                unwritten_in_message_ = header_size + output_[output_head_ + 1];
                current_is_frame_ = p == prefix::frame || p == prefix::data_v1;
            }
            const std::size_t step = n < unwritten_in_message_ ? n : unwritten_in_message_;
            output_head_ += step;
            unwritten_in_message_ -= step;
            n -= step;
            if (unwritten_in_message_ == 0 && current_is_frame_) {
                ++stats_.frames_written;
            }
        }
        if (output_head_ == output_tail_) {
            output_head_ = output_tail_ = 0;
        }
        if constexpr (resumable) {
            send_from_replay(resume_.now_hint);  // the room just made goes to frames waiting in order
        }
    }

    // ---- Frames for the bus ----------------------------------------------------------
    // The oldest frame for the bus, after dropping those older than max_frame_age.
    // (Profiles with classic frames only queue a smaller type: use the overload below.)
    [[nodiscard]] constexpr const Frame* peek_bus_frame(std::uint64_t now, std::uint64_t wall_clock_us = 0)
        requires(Profile::fd_frames)
    {
        const QueuedFrame* q = this->oldest_fresh(now, wall_clock_us);
        return q != nullptr ? &q->frame : nullptr;
    }
    /// The same for every profile: copies the oldest frame for the bus into `out`; false
    /// when there is none. pop_bus_frame() once it went onto the bus.
    [[nodiscard]] constexpr bool peek_bus_frame(std::uint64_t now, Frame& out, std::uint64_t wall_clock_us = 0) {
        const QueuedFrame* q = this->oldest_fresh(now, wall_clock_us);
        if (q == nullptr) {
            return false;
        }
        if constexpr (Profile::fd_frames) {
            out = q->frame;
        } else {
            out.id = q->frame.id;
            out.len = q->frame.len;
            out.flags = q->frame.flags;
            out.timestamp_us = 0;
            for (std::size_t i = 0; i < max_classic_length; ++i) {
                out.data[i] = q->frame.data[i];
            }
        }
        return true;
    }
    // The frame from peek_bus_frame went onto the bus.
    constexpr void pop_bus_frame() {
        if (!bus_queue_.empty()) {
            bus_queue_.pop();
            ++stats_.frames_to_bus;
        }
    }
    [[nodiscard]] constexpr std::size_t bus_queue_size() const { return bus_queue_.size(); }
    // Room for frames from the peer. A port that reads at most 8 bytes (the smallest
    // frame message) per free slot never overflows the queue: TCP pushes back instead.
    [[nodiscard]] constexpr std::size_t bus_queue_free() const { return BusFrames - bus_queue_.size(); }
    // Bytes of output still free for frames (control messages have their own reserve).
    [[nodiscard]] constexpr std::size_t output_room() const {
        const std::size_t pending = output_tail_ - output_head_;
        return OutputBytes - pending > control_reserve ? OutputBytes - pending - control_reserve : 0;
    }
    /// True when `frames` more frames of at most `message_bytes` each would be taken without a
    /// drop: into the output, or (feature::resume) into the replay buffer.
    [[nodiscard]] constexpr bool has_room_for(std::size_t frames, std::size_t message_bytes) const {
        if constexpr (resumable) {
            if (resume_.phase != ResumePhase::off) {
                return ReplayFrames - resume_.replay.size() >= frames;
            }
        }
        return output_room() >= frames * message_bytes;
    }

    // ---- Time ------------------------------------------------------------------------
    constexpr void tick(std::uint64_t now) {
        if (state_ == SessionState::closed || state_ == SessionState::suspended) {
            return;  // suspended: no transport; timers start again with the next one
        }
        if ((state_ != SessionState::established || resume_exchange_pending() || bus_pending()) && options_.negotiation_timeout_us != 0 &&
            now - started_us_ >= options_.negotiation_timeout_us) {
            if constexpr (Profile::close_texts) {
                close(CloseReason::negotiation_timeout, "no agreement in time", now);
            } else {
                close(CloseReason::negotiation_timeout, {}, now);
            }
            return;
        }
        if (version_ < 2) {
            return;  // version 1 has no heartbeat; silence is normal there
        }
        if constexpr (resumable) {
            resume_.now_hint = now;
            send_from_replay(now);
            send_ack(now);
        }
        if constexpr (Profile::local_subscription) {
            if (subscription_pending_ && state_ == SessionState::established) {
                send_subscription();  // the output has drained since it was deferred
            }
        }
        if (options_.dead_after_us != 0 && now - last_rx_us_ >= options_.dead_after_us) {
            push_event({EventType::peer_dead, static_cast<std::uint32_t>(saturate32(now - last_rx_us_))});
            if constexpr (Profile::close_texts) {
                close(CloseReason::peer_dead, "peer silent too long", now);
            } else {
                close(CloseReason::peer_dead, {}, now);
            }
            return;
        }
        if (options_.heartbeat_interval_us != 0 && state_ == SessionState::established &&
            now - last_ping_us_ >= options_.heartbeat_interval_us) {
            // The period advances even when the output is full (the ping is skipped), so
            // next_deadline() never stays in the past and a port never spins on it.
            last_ping_us_ = now;
            if (const std::size_t size = encode_ping(heartbeat_space(), ping_token_ + 1); size != 0) {
                append_message(size);
                ++ping_token_;
                ping_outstanding_ = true;
                ++stats_.pings_sent;
            } else {
                ++stats_.pings_skipped;
            }
        }
    }

    // When tick() next has work to do (µs, same clock as now); UINT64_MAX = never.
    [[nodiscard]] constexpr std::uint64_t next_deadline() const {
        std::uint64_t deadline = ~std::uint64_t{0};
        auto earliest = [&deadline](std::uint64_t t) { deadline = t < deadline ? t : deadline; };
        if (state_ == SessionState::closed || state_ == SessionState::suspended) {
            return deadline;
        }
        if constexpr (resumable) {
            if (resume_.phase == ResumePhase::running && state_ == SessionState::established) {
                const std::uint32_t ack = ack_point();
                if (ack != resume_.ack_sent) {
                    if (static_cast<std::uint32_t>(ack - resume_.ack_sent) >= resume_.options.ack_every_frames) {
                        return 0;
                    }
                    const std::uint64_t due = resume_.ack_sent_us + resume_.options.ack_delay_us;
                    const std::uint64_t held = resume_.last_frame_us + resume_.options.ack_hold_us;
                    earliest(due > held ? due : held);
                }
            }
        }
        if ((state_ != SessionState::established || resume_exchange_pending() || bus_pending()) && options_.negotiation_timeout_us != 0) {
            earliest(started_us_ + options_.negotiation_timeout_us);
        }
        if constexpr (Profile::local_subscription) {
            if (subscription_pending_ && subscription_fits()) {
                return 0;  // due now: the output has room for the deferred subscription
            }
        }
        if (version_ >= 2) {
            if (options_.dead_after_us != 0) {
                earliest(last_rx_us_ + options_.dead_after_us);
            }
            if (options_.heartbeat_interval_us != 0 && state_ == SessionState::established) {
                earliest(last_ping_us_ + options_.heartbeat_interval_us);
            }
        }
        return deadline;
    }

    // ---- Ending ----------------------------------------------------------------------
    /// Ends the session; in version 2 the peer is told why. The port then writes out
    /// output() and closes the transport. Without Profile::close_texts the text is not sent.
    constexpr void close(CloseReason reason, std::string_view text, std::uint64_t now) {
        if (state_ == SessionState::closed) {
            return;
        }
        if (state_ == SessionState::suspended) {
            end_suspended(false);  // ended for good while waiting for a resume
            return;
        }
        if constexpr (resumable) {
            // The peer learns exactly what reached this side's bus before it hears why we
            // close, so it counts nothing delivered as undeliverable.
            send_ack(now, true);
        } else {
            (void)now;
        }
        if (version_ >= 2) {
            append_message(encode_close(output_space(), reason, Profile::close_texts ? text : std::string_view{}));
        }
        finish(reason, false);
    }

    // The transport ended (EOF or error). Frames still unwritten are counted as dropped.
    constexpr void transport_closed(std::uint64_t now) {
        if (state_ != SessionState::closed && state_ != SessionState::suspended) {
            retry_with_version_1_ = negotiator_.should_retry_with_version_1();
            finish(CloseReason::normal, true, true);
        }
        if constexpr (resumable) {
            if (state_ == SessionState::suspended) {
                // Nothing written is lost: unacknowledged frames are sent again after a resume.
                stats_.frames_queued = stats_.frames_written;
                resume_.sent = 0;
                output_head_ = output_tail_ = 0;
                unwritten_in_message_ = 0;
                return;
            }
            // Ended for good: frames kept but never encoded are as unsent as encoded ones.
            for (std::size_t i = resume_.sent; i < resume_.replay.size(); ++i) {
                stats_.drop_unsent_at_close += resume_.replay.at(i).expired ? 0 : 1;
            }
            resume_.replay.clear();
            resume_.sent = 0;
            resume_.phase = ResumePhase::off;
        }
        stats_.drop_unsent_at_close += stats_.frames_queued - stats_.frames_written;
        stats_.frames_written = stats_.frames_queued;
        output_head_ = output_tail_ = 0;
        unwritten_in_message_ = 0;
        (void)now;
    }

    // The port is done with this session: frames still waiting for the bus are dropped.
    constexpr void discard_bus_queue() {
        stats_.drop_unsent_bus_queue += bus_queue_.size();
        bus_queue_.clear();
    }

    // After transport_closed: the peer hung up on a proposal above 1 before agreeing,
    // as the original tcpcan server does. Reconnect with max_version = 1.
    [[nodiscard]] constexpr bool retry_with_version_1() const { return retry_with_version_1_; }

    // ---- Resume (feature::resume, ReplayFrames > 0) -----------------------------------
    /// Before agreement. A server offers resume (if its options do) only with a token to give.
    constexpr void set_resume_options(const ResumeOptions& resume)
        requires(resumable)
    {
        resume_.options = resume;
    }
    [[nodiscard]] constexpr ResumePhase resume_phase() const {
        if constexpr (resumable) {
            return resume_.phase;
        } else {
            return ResumePhase::off;
        }
    }
    /// The session's token: given by the server, 0 until then.
    [[nodiscard]] constexpr std::uint64_t resume_token() const {
        if constexpr (resumable) {
            return resume_.token;
        } else {
            return 0;
        }
    }
    /// Server: the token of an 'r' the port has to answer (adopt() or refuse_resume()); 0 if none.
    /// receive() reads nothing past that 'r' until then.
    [[nodiscard]] constexpr std::uint64_t requested_resume_token() const {
        if constexpr (resumable) {
            return resume_.phase == ResumePhase::request_pending ? resume_.requested_token : 0;
        } else {
            return 0;
        }
    }
    /// Frames kept for the peer until it acknowledges them (sent or still to send).
    [[nodiscard]] constexpr std::size_t replay_size() const {
        if constexpr (resumable) {
            return resume_.replay.size();
        } else {
            return 0;
        }
    }
    /// True while frames for the peer are kept across the loss of the transport.
    [[nodiscard]] constexpr bool is_resumable() const { return resume_phase() != ResumePhase::off; }
    [[nodiscard]] constexpr bool is_suspended() const { return state_ == SessionState::suspended; }

    /// Server: no session has the token of the pending 'r'. This session starts afresh
    /// and gives the client its own token (the client counts what it could not deliver).
    constexpr void refuse_resume(std::uint64_t now)
        requires(resumable)
    {
        if (resume_.phase != ResumePhase::request_pending) {
            return;
        }
        push_event({EventType::resume_refused});
        start_new_resumable(now);
    }

    /// Server: this suspended session has the token `fresh` was asked for. It takes over
    /// `fresh`'s connection (negotiation, features, decoder, pending output, subscription),
    /// answers 'a' and sends again what the client has not acknowledged. `fresh` is left
    /// closed. False (nothing changed) when this session is not suspended with that token.
    [[nodiscard]] constexpr bool adopt(Session& fresh, std::uint64_t now)
        requires(resumable)
    {
        if (state_ != SessionState::suspended || fresh.resume_.phase != ResumePhase::request_pending ||
            fresh.resume_.requested_token != resume_.token || options_.role != Role::server) {
            return false;
        }
        negotiator_ = fresh.negotiator_;
        decoder_ = fresh.decoder_;
        state_ = fresh.state_;
        version_ = fresh.version_;
        agreed_features_ = fresh.agreed_features_;
        started_us_ = fresh.started_us_;
        last_rx_us_ = fresh.last_rx_us_;
        last_ping_us_ = fresh.last_ping_us_;
        ping_token_ = fresh.ping_token_;
        ping_outstanding_ = fresh.ping_outstanding_;
        closed_by_peer_message_ = false;
        output_head_ = output_tail_ = 0;
        unwritten_in_message_ = fresh.unwritten_in_message_;
        current_is_frame_ = fresh.current_is_frame_;
        for (std::size_t i = fresh.output_head_; i < fresh.output_tail_; ++i) {
            output_[output_tail_++] = fresh.output_[i];
        }
        peer_subscription_.clear();
        for (const FilterEntry& e : fresh.peer_subscription_.entries()) {
            (void)peer_subscription_.add(e);
        }
        stats_.bytes_in += fresh.stats_.bytes_in;
        stats_.bytes_out += fresh.stats_.bytes_out;
        stats_.pings_sent += fresh.stats_.pings_sent;
        stats_.pongs_received += fresh.stats_.pongs_received;
        fresh.resume_.phase = ResumePhase::off;
        fresh.state_ = SessionState::closed;
        fresh.output_head_ = fresh.output_tail_ = 0;
        if (!on_peer_ack(fresh.resume_.requested_ack, now)) {
            return true;  // the client acknowledged frames never sent: closed with a protocol error
        }
        resume_.phase = ResumePhase::running;
        append_message(encode_resume_accepted(output_space(), ack_point()));
        mark_ack_sent(now);
        resumed(now);
        return true;
    }

    /// Client: a new transport for a suspended session; negotiation starts again and,
    /// once agreed, the session asks the server to resume it.
    constexpr void reconnect(std::uint64_t now)
        requires(resumable)
    {
        if (state_ != SessionState::suspended) {
            return;
        }
        negotiator_ = VersionNegotiator(options_.role, negotiation_config(options_));
        decoder_.reset();
        state_ = SessionState::negotiating;
        version_ = 0;
        agreed_features_ = 0;
        started_us_ = last_rx_us_ = last_ping_us_ = now;
        ping_outstanding_ = false;
        retry_with_version_1_ = false;
        closed_by_peer_message_ = false;
        subscription_pending_ = false;
        output_head_ = output_tail_ = 0;
        unwritten_in_message_ = 0;
        peer_subscription_.clear();
        const NegotiationStep step = negotiator_.start();
        if (step.send) {
            append_message(encode_version(output_space(), step.send_version));
        }
    }

    /// A suspended session is given up (the resume window ended, or the port stops): what
    /// the peer had not acknowledged is counted as undeliverable. Returns that count.
    constexpr std::uint64_t abandon(std::uint64_t /*now*/) {
        if (state_ != SessionState::suspended) {
            return 0;
        }
        return end_suspended(true);
    }

    // ---- Subscriptions --------------------------------------------------------------
    // Asks the peer to send only frames matching `filters` (sent once version 2 is
    // agreed; with version 1 it is applied to received frames only).
    // All or nothing: false (and no change) when `filters` has more entries than fit.
    /// Only with Profile::local_subscription.
    template <std::size_t N>
    [[nodiscard]] constexpr bool set_local_subscription(const FilterSet<N>& filters)
        requires(Profile::local_subscription)
    {
        if (filters.size() > local_subscription_.capacity()) {
            return false;
        }
        local_subscription_.clear();
        for (const FilterEntry& e : filters.entries()) {
            if (!local_subscription_.add(e)) {
                return false;
            }
        }
        if (state_ == SessionState::established && version_ >= 2) {
            send_subscription();
        }
        return true;
    }

    // ---- The bus request ('b', feature::bus) --------------------------------------------
    /// Client, before agreement: join the server's bus `name` (feature::bus is offered with
    /// it). Once the features are agreed the request goes out; a server that does not offer
    /// feature::bus (or speaks version 1) ends the session with CloseReason::unsupported.
    /// False (and nothing changes) for a name that is not 1 to 64 printable ASCII
    /// characters without spaces, for a server, or after negotiation started to agree.
    [[nodiscard]] constexpr bool request_bus(std::string_view name) {
        if constexpr (!Profile::bus_request) {
            return false;
        } else {
            if (options_.role != Role::client || state_ != SessionState::negotiating || !store_bus_name(name)) {
                return false;
            }
            options_.features |= feature::bus;
            bus_request_ = BusRequest::wanted;
            return true;
        }
    }
    /// Server: the bus named by the client's 'b' (after a bus_requested event), until
    /// answered; empty otherwise.
    [[nodiscard]] constexpr std::string_view requested_bus() const {
        return bus_request_ == BusRequest::requested || bus_request_ == BusRequest::chosen
                   ? std::string_view(bus_name_.data(), bus_name_size_)
                   : std::string_view{};
    }
    /// Server: the requested bus exists; the answer ('b' with the same name) goes out and
    /// the session may be routed. To refuse, close(CloseReason::unsupported, "unknown bus ...").
    constexpr void accept_bus() {
        if constexpr (Profile::bus_request) {
            if (bus_request_ != BusRequest::requested || state_ == SessionState::closed) {
                return;
            }
            append_message(encode_bus(output_space(), std::string_view(bus_name_.data(), bus_name_size_)));
            bus_request_ = BusRequest::chosen;
            push_event({EventType::bus_chosen});
        }
    }
    /// True while feature::bus is agreed and the bus is not settled yet: the port does not
    /// route the session's frames until it is (the negotiation timeout still runs).
    [[nodiscard]] constexpr bool bus_pending() const {
        return Profile::bus_request && state_ == SessionState::established && (agreed_features_ & feature::bus) != 0 &&
               bus_request_ != BusRequest::chosen;
    }

    // ---- Observing --------------------------------------------------------------------
    [[nodiscard]] constexpr bool poll_event(Event& event) {
        if (events_.empty()) {
            return false;
        }
        event = events_.front();
        events_.pop();
        return true;
    }
    [[nodiscard]] constexpr SessionState state() const { return state_; }
    [[nodiscard]] constexpr std::uint32_t version() const { return version_; }
    [[nodiscard]] constexpr std::uint32_t agreed_features() const { return agreed_features_; }
    [[nodiscard]] constexpr const Stats& stats() const { return stats_; }
    [[nodiscard]] constexpr const FilterSet<SubscriptionEntries>& peer_subscription() const { return peer_subscription_; }
    /// The text of the peer's 'c' message (empty unless the peer closed with one). It is
    /// read from the decoder's buffer, which a closed session no longer touches.
    [[nodiscard]] std::string_view close_text() const {
        if (!closed_by_peer_message_) {
            return {};
        }
        const std::span<const std::uint8_t> payload = decoder_.payload();
        return {reinterpret_cast<const char*>(payload.data() + 1), payload.size() - 1};
    }
    [[nodiscard]] constexpr bool is_closed() const { return state_ == SessionState::closed; }

private:
    template <std::size_t, std::size_t, std::size_t, std::size_t, SessionProfile, std::size_t>
    friend class Session;

    using Counter = typename Profile::Counter;
    using BusRequest = detail::BusRequest;
    // The session keeps no payload copy: 's' and 'c' payloads are read from the decoder.
    using SessionMessage = BasicMessage<0>;

    // Arrival times are kept in the counter's width: with 32 bits, ages up to 71 minutes
    // are told apart (modular difference), which a gateway's short queue never reaches.
    using StoredFrame = std::conditional_t<Profile::fd_frames, Frame, detail::ClassicFrame>;
    struct QueuedFrame {
        StoredFrame frame;
        Counter arrived_us;
        // The frame's sequence number, for acknowledging what reached the bus (resume only).
        [[no_unique_address]] std::conditional_t<resumable, std::uint32_t, detail::NoResume> sequence{};
    };

    // A frame for the peer, kept until acknowledged.
    struct ReplayEntry {
        StoredFrame frame;
        std::uint32_t sequence;
        Counter queued_us;
        bool sent;     // encoded at least once (a later encoding is a replay)
        bool expired;  // too old when its turn came: skipped and counted, never sent
    };
    struct ResumeState {
        detail::RingQueue<ReplayEntry, (ReplayFrames > 0 ? ReplayFrames : 1)> replay{};
        std::size_t sent = 0;  // entries [0, sent) are encoded on the current transport
        std::uint64_t token = 0;
        std::uint64_t requested_token = 0;  // server: from the client's 'r'
        std::uint32_t requested_ack = 0;    // server: the next sequence the client expects
        std::uint32_t peer_ack = 0;         // the peer expects this sequence next
        std::uint32_t ack_sent = 0;         // what this side last acknowledged
        std::uint64_t ack_sent_us = 0;
        std::uint64_t last_frame_us = 0;  // when the peer's last frame came (ack_hold_us)
        std::uint64_t now_hint = 0;  // the last `now` seen, for consume_output()
        ResumeOptions options{};
        ResumePhase phase = ResumePhase::off;

        template <class Other>
        constexpr void copy_from(const Other& other) {
            replay.clear();
            for (std::size_t i = 0; i < other.replay.size(); ++i) {
                const auto& e = other.replay.at(i);
                (void)replay.push(ReplayEntry{e.frame, e.sequence, e.queued_us, e.sent, e.expired});
            }
            sent = other.sent;
            token = other.token;
            requested_token = other.requested_token;
            requested_ack = other.requested_ack;
            peer_ack = other.peer_ack;
            ack_sent = other.ack_sent;
            ack_sent_us = other.ack_sent_us;
            last_frame_us = other.last_frame_us;
            now_hint = other.now_hint;
            options = other.options;
            phase = other.phase;
        }
    };

    [[nodiscard]] static constexpr NegotiationConfig negotiation_config(const SessionOptions& options) {
        // Without version 1 the lowest version is 2, and so is the highest at least.
        return NegotiationConfig{Profile::version_1 && options.min_version <= 1 ? 1u
                                                                                : (options.min_version > 2u ? options.min_version : 2u),
                                 Profile::version_1 || options.max_version >= 2 ? options.max_version : 2u, 8};
    }

    [[nodiscard]] static constexpr Frame to_frame(const StoredFrame& stored) {
        if constexpr (Profile::fd_frames) {
            return stored;
        } else {
            Frame out{};
            out.id = stored.id;
            out.len = stored.len;
            out.flags = stored.flags;
            for (std::size_t i = 0; i < max_classic_length; ++i) {
                out.data[i] = stored.data[i];
            }
            return out;
        }
    }
    [[nodiscard]] static constexpr StoredFrame to_stored(const Frame& frame) {
        if constexpr (Profile::fd_frames) {
            return frame;
        } else {
            StoredFrame out{};
            out.id = frame.id;
            out.len = frame.len;
            out.flags = frame.flags;
            for (std::size_t i = 0; i < max_classic_length; ++i) {
                out.data[i] = frame.data[i];
            }
            return out;
        }
    }

    [[nodiscard]] constexpr bool resume_request_pending() const {
        return requested_resume_token() != 0;
    }
    // The resume exchange is part of agreeing: it has the negotiation timeout too.
    [[nodiscard]] constexpr bool resume_exchange_pending() const {
        const ResumePhase phase = resume_phase();
        return phase == ResumePhase::awaiting_request || phase == ResumePhase::awaiting_answer;
    }

    // Everything before this sequence number has been handled: put on the bus, or dropped
    // and counted here. Frames still waiting for the bus are not acknowledged.
    [[nodiscard]] constexpr std::uint32_t ack_point() const {
        if constexpr (resumable) {
            return bus_queue_.empty() ? sequence_.expected() : bus_queue_.front().sequence;
        } else {
            return sequence_.expected();
        }
    }

    constexpr void mark_ack_sent(std::uint64_t now) {
        if constexpr (resumable) {
            resume_.ack_sent = ack_point();
            resume_.ack_sent_us = now;
        }
    }

    // 'k' every ack_every_frames handled frames, or ack_delay_us after the last one, never
    // per frame: at full speed one small message covers many frames.
    constexpr void send_ack(std::uint64_t now, bool now_or_never = false) {
        if constexpr (resumable) {
            if (resume_.phase != ResumePhase::running || state_ != SessionState::established) {
                return;
            }
            const std::uint32_t ack = ack_point();
            if (ack == resume_.ack_sent) {
                return;
            }
            if (!now_or_never && static_cast<std::uint32_t>(ack - resume_.ack_sent) < resume_.options.ack_every_frames &&
                (now - resume_.ack_sent_us < resume_.options.ack_delay_us ||
                 now - resume_.last_frame_us < resume_.options.ack_hold_us)) {
                return;
            }
            if (const std::size_t size = encode_ack(heartbeat_space(), ack); size != 0) {
                append_message(size);
                resume_.ack_sent = ack;
                resume_.ack_sent_us = now;
                ++stats_.acks_sent;
            }
        } else {
            (void)now;
        }
    }

    [[nodiscard]] constexpr SendResult keep_for_replay(const Frame& frame, std::uint64_t now) {
        if constexpr (resumable) {
            const std::uint32_t sequence = next_sequence_++;  // a frame not kept leaves a gap the peer sees
            // Filled in place: a temporary copied in costs a store-forwarding stall per frame.
            ReplayEntry* kept = resume_.replay.push_slot();
            if (kept == nullptr) {
                ++stats_.drop_replay_full;
                return SendResult::output_full;
            }
            kept->frame = to_stored(frame);
            kept->sequence = sequence;
            kept->queued_us = static_cast<Counter>(now);
            kept->sent = false;
            kept->expired = false;
            if (resume_.sent + 1 == resume_.replay.size() && resume_.phase == ResumePhase::running &&
                state_ == SessionState::established) {
                // Nothing waits before it (the usual case): encoded from `frame` directly.
                const std::size_t size = encode_frame(frame_space(), frame, true, sequence,
                                                      (agreed_features_ & feature::timestamps) != 0);
                if (size != 0) {
                    append_message(size);
                    ++stats_.frames_queued;
                    resume_.replay.at(resume_.sent).sent = true;
                    ++resume_.sent;
                }
                return SendResult::queued;
            }
            send_from_replay(now);
            return SendResult::queued;
        } else {
            (void)frame;
            (void)now;
            return SendResult::invalid;
        }
    }

    // Encodes kept frames, in order, as far as the output has room (only while running).
    constexpr void send_from_replay(std::uint64_t now) {
        if constexpr (resumable) {
            if (resume_.phase != ResumePhase::running || state_ != SessionState::established) {
                return;
            }
            const bool with_ts = (agreed_features_ & feature::timestamps) != 0;
            while (resume_.sent < resume_.replay.size()) {
                ReplayEntry& e = resume_.replay.at(resume_.sent);
                // Only frames never sent expire here: one sent before may be on the peer's
                // bus already (unacknowledged), so it goes again and the peer decides.
                if (!e.expired && !e.sent && options_.max_frame_age_us != 0 &&
                    static_cast<Counter>(static_cast<Counter>(now) - e.queued_us) > options_.max_frame_age_us) {
                    e.expired = true;
                    ++stats_.drop_replay_expired;
                }
                if (e.expired) {
                    ++resume_.sent;
                    continue;
                }
                const std::size_t size = encode_frame(frame_space(), to_frame(e.frame), true, e.sequence, with_ts);
                if (size == 0) {
                    return;  // the output is full; consume_output() carries on
                }
                append_message(size);
                ++stats_.frames_queued;
                stats_.frames_replayed += e.sent ? 1 : 0;
                e.sent = true;
                ++resume_.sent;
            }
            trim_expired_front();
        } else {
            (void)now;
        }
    }

    // Expired frames at the front (everything before them acknowledged) are never needed
    // again: the peer's acknowledgement only passes them with a later frame, so they go now.
    constexpr void trim_expired_front() {
        if constexpr (resumable) {
            while (!resume_.replay.empty() && resume_.replay.front().expired && resume_.sent > 0) {
                resume_.replay.pop();
                --resume_.sent;
            }
        }
    }

    // The peer expects `next` next: everything before it is handled there and leaves the
    // replay buffer. False (and a protocol error) for frames never numbered.
    constexpr bool on_peer_ack(std::uint32_t next, std::uint64_t now) {
        if constexpr (resumable) {
            if (detail::sequence_before(next, resume_.peer_ack)) {
                return true;  // behind an earlier acknowledgement: nothing new (PROTOCOL.md: ignored)
            }
            if (static_cast<std::uint32_t>(next - resume_.peer_ack) > static_cast<std::uint32_t>(next_sequence_ - resume_.peer_ack)) {
                protocol_failure(ProtocolError::bad_ack, decoder_.last_message_offset(), now);
                return false;
            }
            resume_.peer_ack = next;
            while (!resume_.replay.empty() && detail::sequence_before(resume_.replay.front().sequence, next)) {
                resume_.replay.pop();
                resume_.sent = resume_.sent > 0 ? resume_.sent - 1 : 0;
            }
            trim_expired_front();
            return true;
        } else {
            (void)next;
            (void)now;
            return true;
        }
    }

    // Frames flow again on a new transport: from the first the peer has not acknowledged.
    constexpr void resumed(std::uint64_t now) {
        if constexpr (resumable) {
            resume_.sent = 0;
            std::uint32_t again = 0;
            for (std::size_t i = 0; i < resume_.replay.size(); ++i) {
                again += resume_.replay.at(i).sent && !resume_.replay.at(i).expired ? 1 : 0;
            }
            ++stats_.resumed;
            push_event({EventType::resumed, again, static_cast<std::uint32_t>(resume_.replay.size())});
            send_from_replay(now);
        } else {
            (void)now;
        }
    }

    // Server: a new session (no token, or an unknown one): give the client this one's token.
    constexpr void start_new_resumable(std::uint64_t now) {
        if constexpr (resumable) {
            resume_.token = resume_.options.token;
            resume_.phase = ResumePhase::running;
            append_message(encode_session_token(output_space(), resume_.token));
            mark_ack_sent(now);
            send_from_replay(now);
        } else {
            (void)now;
        }
    }

    // Client: the server did not know the session. Frames it may or may not have put on
    // its bus are given up (counted); frames never sent start the new session, renumbered.
    constexpr void resume_failed(std::uint64_t now) {
        if constexpr (resumable) {
            std::uint32_t lost = 0;
            while (!resume_.replay.empty() && (resume_.replay.front().sent || resume_.replay.front().expired)) {
                lost += resume_.replay.front().expired ? 0 : 1;
                resume_.replay.pop();
            }
            next_sequence_ = 0;
            for (std::size_t i = 0; i < resume_.replay.size(); ++i) {
                resume_.replay.at(i).sequence = next_sequence_++;
            }
            resume_.sent = 0;
            resume_.peer_ack = 0;
            sequence_.reset(0);
            stats_.sequence = sequence_.counters();
            // Frames of the old session still waiting for the bus are acknowledged as 0 (nothing).
            for (std::size_t i = 0; i < bus_queue_.size(); ++i) {
                bus_queue_.at(i).sequence = 0;
            }
            stats_.undeliverable += lost;
            push_event({EventType::resume_failed, lost});
        } else {
            (void)now;
        }
    }

    // A suspended session ends for good: what the peer had not acknowledged is given up.
    constexpr std::uint64_t end_suspended(bool push_closed) {
        std::uint64_t lost = 0;
        if constexpr (resumable) {
            for (std::size_t i = 0; i < resume_.replay.size(); ++i) {
                lost += resume_.replay.at(i).expired ? 0 : 1;
            }
            resume_.replay.clear();
            resume_.sent = 0;
            resume_.phase = ResumePhase::off;
            stats_.undeliverable += static_cast<Counter>(lost);
        }
        state_ = SessionState::closed;
        if (push_closed) {
            Event e{EventType::closed};
            e.reason = CloseReason::normal;
            push_event(e);
        }
        return lost;
    }

    // Whether an ending of this kind keeps the session for a resume: the transport broke,
    // the peer fell silent, or (client) the server is restarting. Anything else is final.
    [[nodiscard]] constexpr bool keeps_for_resume(CloseReason reason, bool by_peer, bool transport_ended) const {
        if constexpr (resumable) {
            const bool has_session = resume_.token != 0 && (resume_.phase == ResumePhase::running ||
                                                            resume_.phase == ResumePhase::awaiting_answer ||
                                                            resume_.phase == ResumePhase::suspended);
            if (!has_session) {
                return false;
            }
            // A peer that does not answer a reconnection in time (e.g. a stopped server whose
            // kernel still accepts) is like one that fell silent.
            return transport_ended || reason == CloseReason::peer_dead || reason == CloseReason::negotiation_timeout ||
                   (by_peer && reason == CloseReason::shutdown && options_.role == Role::client);
        } else {
            (void)reason;
            (void)by_peer;
            (void)transport_ended;
            return false;
        }
    }

    [[nodiscard]] constexpr bool too_old(const QueuedFrame& q, std::uint64_t now, std::uint64_t wall_clock_us) const {
        const std::uint64_t limit = options_.max_frame_age_us;
        if (limit == 0) {
            return false;
        }
        if (static_cast<Counter>(static_cast<Counter>(now) - q.arrived_us) > limit) {
            return true;
        }
        if constexpr (Profile::fd_frames) {
            // With the sender's timestamp (and clocks in sync) a frame that waited at the
            // sender, e.g. while the link was down, is caught too.
            const std::uint64_t ts = q.frame.timestamp_us;
            return wall_clock_us != 0 && ts != 0 && wall_clock_us > ts && wall_clock_us - ts > limit;
        } else {
            (void)wall_clock_us;  // classic queues keep no sender timestamp
            return false;
        }
    }

    [[nodiscard]] constexpr const QueuedFrame* oldest_fresh(std::uint64_t now, std::uint64_t wall_clock_us) {
        while (!bus_queue_.empty()) {
            const QueuedFrame& q = bus_queue_.front();
            if (!too_old(q, now, wall_clock_us)) {
                return &q;
            }
            bus_queue_.pop();
            ++stats_.drop_expired;
        }
        return nullptr;
    }

    [[nodiscard]] static constexpr std::uint64_t saturate32(std::uint64_t v) { return v > 0xFFFF'FFFFu ? 0xFFFF'FFFFu : v; }

    [[nodiscard]] constexpr std::span<std::uint8_t> output_space() {
        // Slide pending bytes to the front when the tail is short of a frame plus the
        // control reserve, so partial writes never make room look smaller than it is.
        if (OutputBytes - output_tail_ < control_reserve + largest_frame_message) {
            compact_output();
        }
        return {output_.data() + output_tail_, OutputBytes - output_tail_};
    }
    constexpr void compact_output() {
        const std::size_t pending = output_tail_ - output_head_;
        for (std::size_t i = 0; i < pending && output_head_ > 0; ++i) {
            output_[i] = output_[output_head_ + i];
        }
        output_head_ = 0;
        output_tail_ = pending;
    }
    // Heartbeat messages always leave room for one close message.
    [[nodiscard]] constexpr std::span<std::uint8_t> heartbeat_space() {
        const std::span<std::uint8_t> space = output_space();
        return space.size() > largest_control_message ? space.first(space.size() - largest_control_message)
                                                      : space.first(0);
    }
    [[nodiscard]] constexpr std::span<std::uint8_t> frame_space() {
        const std::span<std::uint8_t> space = output_space();
        return space.size() > control_reserve ? space.first(space.size() - control_reserve) : space.first(0);
    }
    constexpr void append_message(std::size_t size) { output_tail_ += size; }

    constexpr void push_event(const Event& event) {
        // How a session ended is never lost to a flood of lesser events: the oldest makes room.
        if (events_.full() && (event.type == EventType::closed || event.type == EventType::protocol_error)) {
            events_.pop();
            ++stats_.events_lost;
        }
        if (!events_.push(event)) {
            ++stats_.events_lost;
        }
    }

    constexpr void finish(CloseReason reason, bool by_peer, bool transport_ended = false) {
        if constexpr (resumable) {
            if (keeps_for_resume(reason, by_peer, transport_ended)) {
                state_ = SessionState::suspended;
                resume_.phase = ResumePhase::suspended;
                push_event({EventType::suspended, static_cast<std::uint32_t>(resume_.replay.size())});
                return;
            }
        }
        state_ = SessionState::closed;
        Event e{EventType::closed};
        e.reason = reason;
        e.by_peer = by_peer;
        push_event(e);
    }

    constexpr void protocol_failure(ProtocolError error, std::uint64_t offset, std::uint64_t now) {
        Event e{EventType::protocol_error};
        e.error = error;
        e.offset = offset;
        push_event(e);
        if constexpr (Profile::close_texts) {
            close(CloseReason::protocol_error, describe(error), now);
        } else {
            close(CloseReason::protocol_error, {}, now);
        }
    }

    // Handles one decoded message; false when it ended the session.
    constexpr bool handle(const SessionMessage& m, std::uint64_t now) {
        if (m.type == MessageType::frame && state_ == SessionState::awaiting_features) {
            protocol_failure(ProtocolError::frame_before_features, decoder_.last_message_offset(), now);
            return false;
        }
        switch (m.type) {
        case MessageType::version: return on_version(m, now);
        case MessageType::data_v1:
        case MessageType::frame: return on_frame(m, now);
        case MessageType::close:
            closed_by_peer_message_ = true;
            finish(static_cast<CloseReason>(decoder_.payload()[0]), true);
            return true;
        default: break;
        }
        if (state_ == SessionState::awaiting_features && m.type != MessageType::features) {
            protocol_failure(ProtocolError::message_before_features, decoder_.last_message_offset(), now);
            return false;
        }
        switch (m.type) {
        case MessageType::skipped: ++stats_.messages_skipped; return true;
        case MessageType::features: {
            if (state_ != SessionState::awaiting_features) {
                protocol_failure(ProtocolError::features_repeated, decoder_.last_message_offset(), now);
                return false;
            }
            agreed_features_ = options_.features & m.value & feature::known;
            establish();
            return true;
        }
        case MessageType::ping:
            // A peer that pings faster than it reads gets no answer rather than
            // crowding out a close message.
            if (const std::size_t size = encode_pong(heartbeat_space(), m.value); size != 0) {
                append_message(size);
            } else {
                ++stats_.pongs_skipped;
            }
            return true;
        case MessageType::pong:
            if (ping_outstanding_ && m.value == ping_token_) {
                ping_outstanding_ = false;
                const auto rtt = static_cast<Counter>(now - last_ping_us_);
                ++stats_.pongs_received;
                stats_.rtt_last_us = rtt;
                stats_.rtt_min_us = (stats_.rtt_min_us == 0 || rtt < stats_.rtt_min_us) ? rtt : stats_.rtt_min_us;
                stats_.rtt_max_us = rtt > stats_.rtt_max_us ? rtt : stats_.rtt_max_us;
                push_event({EventType::rtt_measured, static_cast<std::uint32_t>(saturate32(rtt))});
            }
            return true;
        case MessageType::subscribe: return on_subscribe(now);
        case MessageType::bus: return on_bus(now);
        case MessageType::ack:
        case MessageType::resume_request:
        case MessageType::resume_accepted:
        case MessageType::session_token: return on_resume_message(m, now);
        default: return true;
        }
    }

    constexpr bool on_resume_message(const SessionMessage& m, std::uint64_t now) {
        if ((agreed_features_ & feature::resume) == 0) {
            protocol_failure(ProtocolError::resume_not_agreed, decoder_.last_message_offset(), now);
            return false;
        }
        if constexpr (resumable) {
            const bool server = options_.role == Role::server;
            switch (m.type) {
            case MessageType::ack:
                if (resume_.phase != ResumePhase::running) {
                    break;
                }
                return on_peer_ack(m.value, now);
            case MessageType::resume_request: {
                if (!server || resume_.phase != ResumePhase::awaiting_request) {
                    break;
                }
                const std::uint64_t token = detail::load_be64(decoder_.payload().data());
                if (token == 0) {
                    start_new_resumable(now);
                } else {
                    resume_.requested_token = token;
                    resume_.requested_ack = m.value;
                    resume_.phase = ResumePhase::request_pending;
                    push_event({EventType::resume_requested});
                }
                return true;
            }
            case MessageType::resume_accepted:
                if (server || resume_.phase != ResumePhase::awaiting_answer || resume_.token == 0) {
                    break;
                }
                if (!on_peer_ack(m.value, now)) {
                    return false;
                }
                resume_.phase = ResumePhase::running;
                resumed(now);
                return true;
            case MessageType::session_token:
                if (server || resume_.phase != ResumePhase::awaiting_answer) {
                    break;
                }
                if (resume_.token != 0) {
                    resume_failed(now);
                }
                resume_.token = detail::load_be64(decoder_.payload().data());
                resume_.phase = ResumePhase::running;
                mark_ack_sent(now);
                send_from_replay(now);
                return true;
            default: break;
            }
        }
        protocol_failure(ProtocolError::unexpected_resume_message, decoder_.last_message_offset(), now);
        return false;
    }

    constexpr bool on_version(const SessionMessage& m, std::uint64_t now) {
        const NegotiationStep step = negotiator_.on_peer_version(m.value);
        if (step.send) {
            append_message(encode_version(output_space(), step.send_version));
        }
        switch (negotiator_.state()) {
        case NegotiationState::agreed: {
            version_ = negotiator_.agreed_version();
            push_event({EventType::version_agreed, version_});
            if (Profile::version_1 && version_ == 1) {
                decoder_.set_mode(DecoderMode::version1);
                establish();
            } else {
                decoder_.set_mode(DecoderMode::version2);
                state_ = SessionState::awaiting_features;
                if constexpr (resumable) {
                    if (options_.role == Role::server && resume_.options.token == 0) {
                        options_.features &= ~feature::resume;  // no token to give
                    }
                }
                append_message(encode_features(output_space(), options_.features));
            }
            return true;
        }
        case NegotiationState::failed:
            protocol_failure(step.error, decoder_.last_message_offset(), now);
            return false;
        default: return true;
        }
    }

    constexpr void establish() {
        state_ = SessionState::established;
        push_event({EventType::features_agreed, agreed_features_});
        last_ping_us_ = last_rx_us_;
        if constexpr (Profile::bus_request) {
            if (bus_request_ == BusRequest::wanted) {
                if ((agreed_features_ & feature::bus) == 0) {
                    close(CloseReason::unsupported, "a bus request, which the server does not offer", last_rx_us_);
                    return;
                }
                // The bus first: a resumed session on the server belongs to the bus it was on.
                append_message(encode_bus(output_space(), std::string_view(bus_name_.data(), bus_name_size_)));
                bus_request_ = BusRequest::sent;
            }
        }
        if constexpr (resumable) {
            if ((agreed_features_ & feature::resume) != 0) {
                if (options_.role == Role::server) {
                    resume_.phase = ResumePhase::awaiting_request;
                } else {
                    // First after 'h', before a subscription: a resumed server takes the rest.
                    resume_.phase = ResumePhase::awaiting_answer;
                    append_message(encode_resume_request(output_space(), resume_.token, ack_point()));
                    resume_.ack_sent = ack_point();
                }
            } else if (resume_.phase != ResumePhase::off) {
                // Reconnected to a server that no longer offers resume: nothing can be replayed.
                resume_failed(last_rx_us_);
                resume_.phase = ResumePhase::off;
                resume_.token = 0;
                for (std::size_t i = 0; i < resume_.replay.size(); ++i) {
                    ++stats_.drop_not_established;  // never sent: no session could take them
                }
                resume_.replay.clear();
                next_sequence_ = 0;
            }
        }
        if constexpr (Profile::local_subscription) {
            if (version_ >= 2 && !local_subscription_.empty()) {
                send_subscription();
            }
        }
    }

    constexpr bool on_frame(const SessionMessage& m, std::uint64_t now) {
        if (version_ >= 2) {
            const bool want_seq = (agreed_features_ & feature::sequence) != 0;
            const bool want_ts = (agreed_features_ & feature::timestamps) != 0;
            if (m.has_sequence != want_seq || m.has_timestamp != want_ts) {
                protocol_failure(ProtocolError::frame_fields_mismatch, decoder_.last_message_offset(), now);
                return false;
            }
            if (want_seq) {
                const SequenceResult r = sequence_.on_frame(m.sequence);
                stats_.sequence = sequence_.counters();
                if (r.verdict == SequenceVerdict::gap) {
                    push_event({EventType::sequence_gap, m.sequence - r.missing, r.missing});
                } else if (r.verdict == SequenceVerdict::duplicate) {
                    push_event({EventType::sequence_duplicate, m.sequence});
                    ++stats_.drop_duplicate;
                    return true;
                } else if (r.verdict == SequenceVerdict::reordered) {
                    push_event({EventType::sequence_reordered, m.sequence});
                }
            }
        }
        ++stats_.frames_from_peer;
        if constexpr (resumable) {
            resume_.last_frame_us = now;
        }
        if (!options_.accept_frames) {
            ++stats_.drop_refused;
            return true;
        }
        if (!local_subscription_.matches(m.frame)) {
            ++stats_.filtered_out;
            return true;
        }
        if constexpr (Profile::fd_frames) {
            // Filled in place: a temporary of this size copied in costs a store-forwarding
            // stall per frame.
            QueuedFrame* queued = bus_queue_.push_slot();
            if (queued == nullptr) {
                ++stats_.drop_bus_queue_full;
                return true;
            }
            queued->arrived_us = static_cast<Counter>(now);
            if constexpr (resumable) {
                queued->sequence = m.sequence;  // acknowledged once it has left the queue (ack_point())
            }
            queued->frame = m.frame;
        } else {
            if (m.frame.is_fd()) {
                ++stats_.drop_not_classic;  // valid on the wire, but this bus cannot carry it
                return true;
            }
            QueuedFrame queued{};
            queued.arrived_us = static_cast<Counter>(now);
            if constexpr (resumable) {
                queued.sequence = m.sequence;
            }
            queued.frame.id = m.frame.id;
            queued.frame.len = m.frame.len;
            queued.frame.flags = m.frame.flags;
            for (std::size_t i = 0; i < max_classic_length; ++i) {
                queued.frame.data[i] = m.frame.data[i];
            }
            if (!bus_queue_.push(queued)) {
                ++stats_.drop_bus_queue_full;
            }
        }
        return true;
    }

    // 'b': the server takes one request; the client takes one answer naming what it asked.
    constexpr bool on_bus(std::uint64_t now) {
        if constexpr (Profile::bus_request) {
            const std::span<const std::uint8_t> payload = decoder_.payload();
            const std::string_view name(reinterpret_cast<const char*>(payload.data()), payload.size());
            const bool agreed = (agreed_features_ & feature::bus) != 0;
            if (agreed && options_.role == Role::server && bus_request_ == BusRequest::none) {
                (void)store_bus_name(name);  // the decoder checked it
                bus_request_ = BusRequest::requested;
                push_event({EventType::bus_requested});
                return true;
            }
            if (agreed && options_.role == Role::client && bus_request_ == BusRequest::sent &&
                name == std::string_view(bus_name_.data(), bus_name_size_)) {
                bus_request_ = BusRequest::chosen;
                push_event({EventType::bus_chosen});
                return true;
            }
        }
        protocol_failure(ProtocolError::unexpected_bus_message, decoder_.last_message_offset(), now);
        return false;
    }

    [[nodiscard]] constexpr bool store_bus_name(std::string_view name) {
        if (name.empty() || name.size() > max_bus_name) {
            return false;
        }
        for (const char c : name) {
            if (!is_bus_name_char(static_cast<std::uint8_t>(c))) {
                return false;
            }
        }
        for (std::size_t i = 0; i < name.size(); ++i) {
            bus_name_[i] = name[i];
        }
        bus_name_size_ = static_cast<std::uint8_t>(name.size());
        return true;
    }

    constexpr bool on_subscribe(std::uint64_t now) {
        const std::span<const std::uint8_t> payload = decoder_.payload();
        if (static_cast<SubscribeOp>(payload[0]) == SubscribeOp::replace) {
            peer_subscription_.clear();
        }
        for (std::size_t at = 1; at < payload.size(); at += wire_filter::entry_size) {
            const FilterEntry entry = filter_entry_from_wire(
                {payload[at], detail::load_be32(&payload[at + 1]), detail::load_be32(&payload[at + 5])});
            if (!peer_subscription_.add(entry)) {
                peer_subscription_.clear();
                protocol_failure(ProtocolError::subscription_too_large, decoder_.last_message_offset(), now);
                return false;
            }
        }
        push_event({EventType::subscription_set, static_cast<std::uint32_t>(peer_subscription_.size())});
        return true;
    }

    // The whole subscription goes out at once or not yet: a lost 'replace' before a sent
    // 'append' would leave the peer with the wrong filter. It waits for room, keeping room
    // for a close message as well.
    [[nodiscard]] constexpr bool subscription_fits() const {
        const std::size_t entries_count = local_subscription_.size();
        const std::size_t messages =
            entries_count == 0 ? 1 : (entries_count + wire_filter::max_entries - 1) / wire_filter::max_entries;
        const std::size_t needed = messages * (header_size + 1) + entries_count * wire_filter::entry_size;
        // Free space once pending bytes slide to the front, as output_space() does.
        return OutputBytes - (output_tail_ - output_head_) >= needed + max_message_size;
    }

    constexpr void send_subscription() {
        if (!subscription_fits()) {
            subscription_pending_ = true;
            return;
        }
        subscription_pending_ = false;
        compact_output();  // all the free room in one piece, as subscription_fits() counted it
        std::array<WireFilterEntry, wire_filter::max_entries> chunk{};
        std::size_t count = 0;
        SubscribeOp op = SubscribeOp::replace;
        const auto entries = local_subscription_.entries();
        for (std::size_t i = 0; i <= entries.size(); ++i) {
            if (count == chunk.size() || (i == entries.size() && (count > 0 || op == SubscribeOp::replace))) {
                append_message(encode_subscribe(output_space(), op, std::span<const WireFilterEntry>(chunk.data(), count)));
                op = SubscribeOp::append;
                count = 0;
            }
            if (i < entries.size()) {
                chunk[count++] = filter_entry_to_wire(entries[i]);
            }
        }
    }

    SessionOptions options_;
    VersionNegotiator negotiator_;
    BasicDecoder<Profile> decoder_{};
    SessionMessage message_{};
    SessionState state_ = SessionState::negotiating;
    std::uint32_t version_ = 0;
    std::uint32_t agreed_features_ = 0;
    std::uint32_t next_sequence_ = 0;
    SequenceTracker sequence_{};
    std::uint64_t started_us_ = 0;
    std::uint64_t last_rx_us_ = 0;
    std::uint64_t last_ping_us_ = 0;
    std::uint32_t ping_token_ = 0;
    bool ping_outstanding_ = false;
    bool retry_with_version_1_ = false;
    bool subscription_pending_ = false;  // waiting for output room; tick() retries
    bool closed_by_peer_message_ = false;  // close_text() is in the decoder's buffer
    std::array<char, Profile::bus_request ? max_bus_name : 0> bus_name_{};  // the bus asked for (client) or requested (server)
    std::uint8_t bus_name_size_ = 0;
    BusRequest bus_request_ = BusRequest::none;
    bool current_is_frame_ = false;
    std::size_t unwritten_in_message_ = 0;
    std::array<std::uint8_t, OutputBytes> output_{};
    std::size_t output_head_ = 0;
    std::size_t output_tail_ = 0;
    detail::RingQueue<QueuedFrame, BusFrames> bus_queue_{};
    detail::RingQueue<Event, Events> events_{};
    FilterSet<SubscriptionEntries> peer_subscription_{};
    [[no_unique_address]] std::conditional_t<Profile::local_subscription, FilterSet<SubscriptionEntries>,
                                             detail::NoLocalSubscription> local_subscription_{};
    Stats stats_{};
    [[no_unique_address]] std::conditional_t<resumable, ResumeState, detail::NoResume> resume_{};
};

}  // namespace tcpcan
