// Fuzzes one Session against a peer the fuzzer plays: raw or well-formed peer messages,
// timer ticks, local frames, output taken in pieces, the bus queue, events and endings.
//
// Input: a 10-byte header, then operations until the input ends.
//   header: flags (bit 0 server, bit 1 max_version 1 instead of 2, bit 2 refuse frames,
//           bit 3 default capacities instead of the smallest, bit 4 a client asks for bus
//           "can1" (PROTOCOL.md 4.7), bit 5 a server refuses every bus request instead of
//           accepting it), features, negotiation
//           timeout (x 20 ms), heartbeat (x 2 ms), dead after (x 20 ms), max frame age
//           (x 2 ms), start time (u32 µs); 0 means "none" for the durations.
//   operation byte % 12:
//     0 peer bytes: n, then n raw bytes       1 a well-formed peer message (peer_message)
//     2 tick: u16 step (x 100 µs)             3 send_frame: b, frame; (b>>3 & 15) more copies;
//                                               b & 7 == 7 sends it unrepaired (maybe invalid)
//     4 consume_output: u16 bytes             5 bus: b; up to 1 + b%8 frames peeked and popped,
//                                               b & 0x80: a u64 wall clock follows
//     6 poll_event: n (0 = all)               7 close: reason, n, n text bytes
//     8 transport_closed                      9 set_local_subscription: n, n%73 x (kind, a, b)
//    10 discard_bus_queue                    11 receive with no bytes
//   peer_message: type byte % 9 ('v' 'h' 'f' 'd' 'p' 'q' 's' 'c', capital-letter skip), its
//   fields, then a split byte (0 or >= size: delivered whole).
//
// Invariants (besides no crash): the state is valid and only moves forward; the version is
// 0, 1 or 2, at most ours, and one the peer proposed; no frame from the peer is accepted
// before its 'h'; the bus queue and output stay in their bounds; every counter matches what
// the harness did and the stats add up (see check()); the output is a valid message stream
// in which our 'v' proposals strictly decrease (so we never answer our own proposal), the
// first message after agreement is 'h', frames come out exactly as queued and numbered, and
// nothing follows 'c'; a frame is refused as output_full only when it really does not fit;
// a tick before next_deadline() changes nothing, and no deadline is left overdue. The bus
// request: pending only while BUS is agreed and established; our output holds at most one
// 'b', only with BUS agreed, naming what was asked; a client that asked and finds BUS not
// agreed has closed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <tcpcan/encoder.hpp>
#include <tcpcan/session.hpp>
#include <tcpcan/subscription.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

// Session keeps this much output free of frames for control messages (its control_reserve).
constexpr std::size_t control_reserve = 4 * max_message_size;


template <std::size_t OutputBytes, std::size_t BusFrames, std::size_t SubscriptionEntries, std::size_t Events>
class Harness {
public:
    Harness(const SessionOptions& options, std::uint64_t now, bool ask_bus, bool refuse_bus)
        : options_(options), now_(now), session_(options, now), refuse_bus_(refuse_bus) {
        if (!decltype(session_)::supports_resume || (options_.features & feature::sequence) == 0) {
            options_.features &= ~feature::resume;  // a session without a replay buffer never offers it
        }
        if (ask_bus) {
            FUZZ_CHECK(session_.request_bus("can1") == (options.role == Role::client));
            if (options.role == Role::client) {
                asked_bus_ = true;
                options_.features |= feature::bus;  // what the session now offers in 'h'
            }
        }
        check();
    }

    void run(fuzz::FuzzInput& in) {
        while (!in.empty()) {
            switch (in.u8() % 12) {
            case 0: {
                const std::size_t n = in.u8();
                receive(in.bytes(n));
                break;
            }
            case 1: peer_message(in); break;
            case 2: tick(std::uint64_t{in.u16()} * 100); break;
            case 3: {
                const std::uint8_t b = in.u8();
                const Frame raw = fuzz::read_frame(in);
                const Frame frame = (b & 7) == 7 ? raw : fuzz::make_valid(raw);
                for (int i = 0; i <= ((b >> 3) & 15); ++i) {
                    send(frame);
                }
                break;
            }
            case 4: take_output(in.u16()); break;
            case 5: {
                const std::uint8_t b = in.u8();
                const std::uint64_t wall = (b & 0x80) != 0 ? in.u64() : 0;
                to_bus(1 + b % 8, wall);
                break;
            }
            case 6: {
                const std::uint8_t n = in.u8();
                poll_events(n == 0 ? ~std::size_t{0} : n);
                break;
            }
            case 7: {
                const auto reason = static_cast<CloseReason>(in.u8());  // unknown codes are allowed
                const std::span<const std::uint8_t> text = in.bytes(in.u8());
                close(reason, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
                break;
            }
            case 8: transport_closed(); break;
            case 9: subscribe(in); break;
            case 10:
                session_.discard_bus_queue();
                FUZZ_CHECK(session_.bus_queue_size() == 0);
                break;
            case 11: receive({}); break;
            }
            answer_bus_request();
            check();
        }
        finish();
    }

private:
    struct Queued {
        Frame frame;
        std::uint32_t sequence;
    };

    [[nodiscard]] bool sequence_agreed() const { return (session_.agreed_features() & feature::sequence) != 0; }
    [[nodiscard]] bool timestamps_agreed() const { return (session_.agreed_features() & feature::timestamps) != 0; }

    // ---- Operations ---------------------------------------------------------------------

    void receive(std::span<const std::uint8_t> bytes) {
        const bool was_closed = session_.is_closed();
        const std::uint32_t version_before = session_.version();
        const ReceiveResult r = session_.receive(bytes, now_);
        FUZZ_CHECK(r.consumed <= bytes.size());
        if (was_closed) {
            FUZZ_CHECK(r.ok && r.consumed == bytes.size());  // a closed session reads and drops
            return;
        }
        if (!r.ok) {
            FUZZ_CHECK(session_.is_closed());
        }
        if (!session_.is_closed()) {
            FUZZ_CHECK(r.consumed == bytes.size());  // an open session takes everything
        }
        bytes_in_ += r.consumed;
        if (version_before == 0) {
            shadow_peer(bytes.first(r.consumed));
        }
    }

    // Reads the peer's 'v' messages from the bytes the session took before agreement, so the
    // agreed version can be checked against what the peer proposed.
    void shadow_peer(std::span<const std::uint8_t> bytes) {
        std::size_t used = 0;
        while (used < bytes.size() && !shadow_done_) {
            const DecodeResult r = peer_shadow_.decode(bytes.subspan(used), shadow_message_);
            used += r.consumed;
            if (r.status == DecodeStatus::need_more) {
                break;
            }
            if (r.status == DecodeStatus::error) {
                shadow_done_ = true;  // past negotiation: later 'v' cannot count
                break;
            }
            peer_versions_.push_back(shadow_message_.value);
        }
    }

    // One well-formed peer message (mostly valid for the state), delivered whole or in two.
    void peer_message(fuzz::FuzzInput& in) {
        std::uint8_t buffer[max_message_size];
        std::size_t size = 0;
        switch (in.u8() % 9) {
        case 0: {
            const std::uint8_t b = in.u8();
            size = encode_version(buffer, (b & 0x80) != 0 ? in.u32() : b & 3u);
            break;
        }
        case 1: size = encode_features(buffer, in.u8()); break;
        case 2: {
            const std::uint8_t b = in.u8();
            const Frame frame = fuzz::make_valid(fuzz::read_frame(in));
            // The fields the session expects, unless b & 3 is 1 (sequence flipped) or 3
            // (timestamp flipped), which the session must refuse.
            const bool with_sequence = sequence_agreed() != ((b & 3) == 1);
            const bool with_timestamp = timestamps_agreed() != ((b & 3) == 3);
            std::uint32_t sequence = 0;
            switch ((b >> 2) & 3) {
            case 2: sequence = in.u32(); break;                              // anywhere: gaps
            case 3: sequence = peer_sequence_ - 1 - in.u8() % 70; break;    // earlier: late or repeat
            default: sequence = peer_sequence_; break;                       // in order
            }
            peer_sequence_ = sequence + 1;
            size = encode_frame(buffer, frame, with_sequence, sequence, with_timestamp);
            break;
        }
        case 3: size = encode_data_v1(buffer, fuzz::make_valid(fuzz::read_frame(in))); break;
        case 4: size = encode_ping(buffer, in.u32()); break;
        case 5: {
            const std::uint8_t b = in.u8();
            size = encode_pong(buffer, (b & 1) != 0 ? last_ping_token_ : in.u32());
            break;
        }
        case 6: {
            const auto op = static_cast<SubscribeOp>(in.u8() & 1);
            WireFilterEntry entries[wire_filter::max_entries];
            const std::size_t n = in.u8() % (wire_filter::max_entries + 1);
            for (std::size_t i = 0; i < n; ++i) {
                entries[i] = fuzz::read_wire_entry(in);
            }
            size = encode_subscribe(buffer, op, std::span<const WireFilterEntry>(entries, n));
            break;
        }
        case 7: {
            const auto reason = static_cast<CloseReason>(in.u8());
            const std::span<const std::uint8_t> text = in.bytes(in.u8() % 64);
            size = encode_close(buffer, reason, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
            break;
        }
        case 8: {
            // An optional message the session skips (capital-letter prefix).
            buffer[0] = static_cast<std::uint8_t>('A' + in.u8() % 26);
            const std::span<const std::uint8_t> payload = in.bytes(in.u8());
            buffer[1] = static_cast<std::uint8_t>(payload.size());
            std::copy(payload.begin(), payload.end(), buffer + header_size);
            size = header_size + payload.size();
            break;
        }
        }
        FUZZ_CHECK(size > 0);
        const std::size_t split = in.u8();
        const std::span<const std::uint8_t> message(buffer, size);
        if (split > 0 && split < size) {
            receive(message.first(split));
            receive(message.subspan(split));
        } else {
            receive(message);
        }
    }

    void send(const Frame& frame) {
        const bool was_closed = session_.is_closed();
        const bool valid = check_frame(frame) == FrameProblem::none;
        const bool passes = session_.peer_subscription().matches(frame);
        const bool established = session_.state() == SessionState::established;
        const std::size_t pending = session_.output().size();
        const SendResult r = session_.send_frame(frame, now_);
        // The causes in the order send_frame documents them.
        if (was_closed) {
            FUZZ_CHECK(r == SendResult::closed);
            ++sent_closed_;
        } else if (!valid) {
            FUZZ_CHECK(r == SendResult::invalid);
            ++sent_invalid_;
        } else if (!passes) {
            FUZZ_CHECK(r == SendResult::filtered);
            ++sent_filtered_;
        } else if (!established) {
            FUZZ_CHECK(r == SendResult::not_established);
            ++sent_not_established_;
        } else {
            FUZZ_CHECK(r == SendResult::queued || r == SendResult::output_full);
            const std::uint32_t sequence = numbering_++;  // numbered either way
            const std::size_t size = session_.version() == 1
                                         ? header_size + (frame.is_fd() ? linux_canfd_frame_size : linux_can_frame_size)
                                         : frame_message_size(frame, sequence_agreed(), timestamps_agreed());
            if (r == SendResult::queued) {
                ++sent_queued_;
                in_output_.push_back({frame, sequence});
                FUZZ_CHECK(session_.output().size() == pending + size);
            } else {
                ++sent_output_full_;
                FUZZ_CHECK(session_.output().size() == pending);
                // Dropped only when the frame and the control reserve really do not fit
                // (regressions/fuzz_session/output-full-with-room).
                FUZZ_CHECK(pending + size + control_reserve > OutputBytes);
            }
        }
    }

    // The transport takes up to `n` bytes; the harness reads them as the peer would.
    void take_output(std::size_t n) {
        const std::vector<std::uint8_t> before(session_.output().begin(), session_.output().end());
        const std::size_t taken = n < before.size() ? n : before.size();
        for (std::size_t i = 0; i < taken; ++i) {
            if (out_splitter_.push(before[i])) {
                on_output_message();
            }
        }
        session_.consume_output(n);
        // Exactly `taken` bytes left the front; the session may append more (a message that
        // waited for room), never change what was pending.
        const std::span<const std::uint8_t> after = session_.output();
        FUZZ_CHECK(after.size() >= before.size() - taken);
        FUZZ_CHECK(std::equal(before.begin() + static_cast<std::ptrdiff_t>(taken), before.end(), after.begin()));
        bytes_out_ += taken;
    }

    void to_bus(std::size_t count, std::uint64_t wall_clock) {
        for (std::size_t i = 0; i < count; ++i) {
            const Frame* frame = session_.peek_bus_frame(now_, wall_clock);
            if (frame == nullptr) {
                FUZZ_CHECK(session_.bus_queue_size() == 0);
                return;
            }
            FUZZ_CHECK(check_frame(*frame) == FrameProblem::none);
            session_.pop_bus_frame();
            ++popped_;
        }
    }

    void tick(std::uint64_t step) {
        now_ += step;
        const std::uint64_t deadline = session_.next_deadline();
        const SessionState state = session_.state();
        const std::size_t pending = session_.output().size();
        const std::uint64_t pings = session_.stats().pings_sent;
        session_.tick(now_);
        if (now_ < deadline) {
            // Nothing is due before the deadline the session announced (a port sleeps until
            // then; regressions/fuzz_session/subscription-deferred-no-deadline).
            FUZZ_CHECK(session_.state() == state && session_.output().size() == pending &&
                       session_.stats().pings_sent == pings);
        }
        if (session_.is_closed()) {
            FUZZ_CHECK(session_.next_deadline() == ~std::uint64_t{0});
        } else {
            // A port sleeps until next_deadline(); one already past would make it spin
            // (regressions/fuzz_session/pong-flood-deadline-overdue).
            FUZZ_CHECK(session_.next_deadline() > now_);
        }
    }

    void poll_events(std::size_t count) {
        Event e;
        for (std::size_t i = 0; i < count && session_.poll_event(e); ++i) {
            FUZZ_CHECK(static_cast<unsigned>(e.type) <= static_cast<unsigned>(EventType::resume_failed));  // the last event type
            FUZZ_CHECK(closed_events_ == 0);  // 'closed' is the last event
            switch (e.type) {
            case EventType::version_agreed:
                FUZZ_CHECK(++version_events_ == 1);
                FUZZ_CHECK(e.value == session_.version());
                break;
            case EventType::features_agreed:
                FUZZ_CHECK(++features_events_ == 1);
                FUZZ_CHECK(version_events_ == 1 || session_.stats().events_lost > 0);
                FUZZ_CHECK(e.value == session_.agreed_features());
                break;
            case EventType::protocol_error: FUZZ_CHECK(e.error != ProtocolError::none); break;
            case EventType::bus_requested:
                FUZZ_CHECK(options_.role == Role::server && ++bus_requested_events_ == 1);
                break;
            case EventType::bus_chosen:
                FUZZ_CHECK(++bus_chosen_events_ == 1);
                FUZZ_CHECK(options_.role == Role::server ? bus_requested_events_ == 1 || session_.stats().events_lost > 0
                                                         : asked_bus_);
                break;
            case EventType::closed:
                ++closed_events_;
                closed_by_peer_ = e.by_peer;
                break;
            default: break;
            }
        }
    }

    void close(CloseReason reason, std::string_view text) {
        const bool was_closed = session_.is_closed();
        const std::size_t pending = session_.output().size();
        session_.close(reason, text, now_);
        FUZZ_CHECK(session_.is_closed());
        if (!was_closed && session_.version() == 2) {
            // The peer is told why: a 'c' always finds room, even after a ping flood
            // (regressions/fuzz_session/pong-flood-close-lost).
            const std::size_t text_size = text.size() < max_payload_size - 1 ? text.size() : max_payload_size - 1;
            FUZZ_CHECK(session_.output().size() == pending + header_size + 1 + text_size);
        } else {
            FUZZ_CHECK(session_.output().size() == pending);
        }
    }

    void transport_closed() {
        if (!transport_closed_) {
            unsent_at_close_ = sent_queued_ - frames_in_output_stream_;
        }
        transport_closed_ = true;
        session_.transport_closed(now_);
        FUZZ_CHECK(session_.is_closed());
        FUZZ_CHECK(session_.output().empty());
        in_output_.clear();
        if (session_.retry_with_version_1()) {
            FUZZ_CHECK(options_.role == Role::client && session_.version() == 0 && options_.max_version > 1);
        }
    }

    void subscribe(fuzz::FuzzInput& in) {
        FilterSet<72> filters;
        const std::size_t n = in.u8() % 73;
        for (std::size_t i = 0; i < n; ++i) {
            (void)filters.add(filter_entry_from_wire(fuzz::read_wire_entry(in)));
        }
        FUZZ_CHECK(session_.set_local_subscription(filters) == (n <= SubscriptionEntries));
    }

    // A server port answers a bus request at once (as TcpcanLink does): accepted, or refused.
    void answer_bus_request() {
        if (options_.role != Role::server || !session_.bus_pending() || session_.requested_bus().empty()) {
            return;
        }
        FUZZ_CHECK(session_.requested_bus().size() <= max_bus_name);
        if (refuse_bus_) {
            session_.close(CloseReason::unsupported, "unknown bus", now_);
            FUZZ_CHECK(session_.is_closed());
        } else {
            session_.accept_bus();
        }
        FUZZ_CHECK(!session_.bus_pending());
    }

    // ---- Our output, read as the peer reads it ---------------------------------------------

    void on_output_message() {
        const std::span<const std::uint8_t> bytes = out_splitter_.last_bytes();
        FUZZ_CHECK(!out_closed_);  // nothing follows 'c'
        Message m;
        if (bytes[0] == prefix::version) {
            FUZZ_CHECK(!out_agreed_);  // no 'v' after agreement
            Decoder decoder(DecoderMode::negotiating);
            const DecodeResult r = decoder.decode(bytes, m);
            FUZZ_CHECK(r.status == DecodeStatus::complete && r.consumed == bytes.size());
            // Strictly lower than every earlier one: we never repeat (answer) our own proposal.
            FUZZ_CHECK(out_versions_.empty() || m.value < out_versions_.back());
            out_versions_.push_back(m.value);
            return;
        }
        out_agreed_ = true;
        const std::uint32_t version = session_.version();
        FUZZ_CHECK(version == 1 || version == 2);
        Decoder decoder(version == 1 ? DecoderMode::version1 : DecoderMode::version2);
        const DecodeResult r = decoder.decode(bytes, m);
        FUZZ_CHECK(r.status == DecodeStatus::complete && r.consumed == bytes.size());
        if (version == 2) {
            if (!out_features_) {  // 'h' first, with what we offer
                FUZZ_CHECK(m.type == MessageType::features && m.value == options_.features);
                out_features_ = true;
                return;
            }
            FUZZ_CHECK(m.type != MessageType::features);
        }
        switch (m.type) {
        case MessageType::data_v1:
        case MessageType::frame: {
            FUZZ_CHECK(!in_output_.empty());
            const Queued sent = in_output_.front();
            in_output_.pop_front();
            FUZZ_CHECK(m.frame == fuzz::as_received(sent.frame, version, session_.agreed_features()));
            if (version == 2) {
                FUZZ_CHECK(m.has_sequence == sequence_agreed() && m.has_timestamp == timestamps_agreed());
                FUZZ_CHECK(!m.has_sequence || m.sequence == sent.sequence);
            }
            ++frames_in_output_stream_;
            break;
        }
        case MessageType::ping:
            FUZZ_CHECK(m.value == last_ping_token_ + 1);
            last_ping_token_ = m.value;
            break;
        case MessageType::close: out_closed_ = true; break;
        case MessageType::bus:
            FUZZ_CHECK(!out_bus_);  // one request, or one answer
            out_bus_ = true;
            FUZZ_CHECK((session_.agreed_features() & feature::bus) != 0);
            if (options_.role == Role::client) {
                FUZZ_CHECK(asked_bus_ && m.payload_size == 4 && m.payload[0] == 'c' && m.payload[3] == '1');
            }
            break;
        default: break;
        }
    }

    // ---- Invariants after every operation --------------------------------------------------

    void check() {
        const SessionState state = session_.state();
        FUZZ_CHECK(static_cast<unsigned>(state) <= static_cast<unsigned>(SessionState::closed));
        FUZZ_CHECK(state >= last_state_);  // negotiating, awaiting_features, established, closed
        last_state_ = state;
        ever_established_ = ever_established_ || state == SessionState::established;

        const std::uint32_t version = session_.version();
        FUZZ_CHECK(version <= 2 && version <= options_.max_version);
        FUZZ_CHECK(agreed_version_ == 0 || version == agreed_version_);
        agreed_version_ = version;
        if (version != 0) {
            // Agreed only on a version the peer proposed (or acknowledged) and we support.
            FUZZ_CHECK(std::find(peer_versions_.begin(), peer_versions_.end(), version) != peer_versions_.end());
        }
        FUZZ_CHECK(state != SessionState::negotiating || version == 0);
        FUZZ_CHECK(state != SessionState::awaiting_features || version == 2);
        FUZZ_CHECK(state != SessionState::established || version != 0);
        FUZZ_CHECK((session_.agreed_features() & ~(options_.features & feature::known)) == 0);
        FUZZ_CHECK(version == 2 || session_.agreed_features() == 0);
        if (session_.bus_pending()) {
            FUZZ_CHECK(state == SessionState::established && (session_.agreed_features() & feature::bus) != 0);
        }
        if (asked_bus_ && version != 0 && state != SessionState::awaiting_features &&
            (session_.agreed_features() & feature::bus) == 0) {
            FUZZ_CHECK(state == SessionState::closed);  // never routed to a bus it did not ask for
        }

        const SessionStats& s = session_.stats();
        // PROTOCOL.md 4.1: frames only after the peer's 'h' (regressions/fuzz_session/frame-before-features).
        if (state == SessionState::negotiating || state == SessionState::awaiting_features) {
            FUZZ_CHECK(s.frames_from_peer == 0 && session_.bus_queue_size() == 0);
        }
        FUZZ_CHECK(session_.bus_queue_size() <= BusFrames);
        FUZZ_CHECK(session_.output().size() <= OutputBytes);

        // Towards the peer: each send counted once, by its result.
        FUZZ_CHECK(s.frames_queued == sent_queued_);
        FUZZ_CHECK(s.drop_output_full == sent_output_full_);
        FUZZ_CHECK(s.drop_invalid == sent_invalid_);
        FUZZ_CHECK(s.drop_after_close == sent_closed_);
        FUZZ_CHECK(s.drop_not_established == sent_not_established_);
        FUZZ_CHECK(s.filtered_out >= sent_filtered_);
        if (transport_closed_) {
            FUZZ_CHECK(s.frames_written == s.frames_queued && s.drop_unsent_at_close == unsent_at_close_);
        } else {
            FUZZ_CHECK(s.frames_written == frames_in_output_stream_ && s.drop_unsent_at_close == 0);
        }

        // Towards the bus: every accepted peer frame is refused, filtered, dropped, handed
        // to the bus, or still queued.
        const std::uint64_t filtered_from_peer = s.filtered_out - sent_filtered_;
        FUZZ_CHECK(s.frames_from_peer == s.drop_refused + filtered_from_peer + s.drop_bus_queue_full +
                                             s.frames_to_bus + s.drop_expired + s.drop_unsent_bus_queue +
                                             session_.bus_queue_size());
        FUZZ_CHECK(s.frames_to_bus == popped_);
        FUZZ_CHECK(s.sequence.duplicates == s.drop_duplicate);
        FUZZ_CHECK(s.sequence.received == (sequence_agreed() ? s.frames_from_peer + s.drop_duplicate : 0));

        FUZZ_CHECK(s.bytes_in == bytes_in_ && s.bytes_out == bytes_out_);
        FUZZ_CHECK(s.pongs_received <= s.pings_sent);
        if (s.pongs_received > 0) {
            FUZZ_CHECK(s.rtt_min_us <= s.rtt_last_us && s.rtt_last_us <= s.rtt_max_us);
        }
    }

    void finish() {
        take_output(session_.output().size());
        poll_events(~std::size_t{0});
        check();
        if (session_.stats().events_lost == 0) {
            FUZZ_CHECK(closed_events_ == (session_.is_closed() ? 1 : 0));
            FUZZ_CHECK(version_events_ == (session_.version() != 0 ? 1 : 0));
            if (ever_established_) {
                FUZZ_CHECK(features_events_ == 1);
            }
            // A version-2 session that ended the connection itself told the peer why.
            if (session_.is_closed() && session_.version() == 2 && !closed_by_peer_ && !transport_closed_) {
                FUZZ_CHECK(out_closed_);  // as pong-flood-close-lost
            }
        }
    }

    SessionOptions options_;
    std::uint64_t now_;
    Session<OutputBytes, BusFrames, SubscriptionEntries, Events> session_;
    bool refuse_bus_ = false;
    bool asked_bus_ = false;
    bool out_bus_ = false;

    // What the harness did, to compare with the stats.
    std::uint64_t sent_queued_ = 0;
    std::uint64_t sent_output_full_ = 0;
    std::uint64_t sent_invalid_ = 0;
    std::uint64_t sent_closed_ = 0;
    std::uint64_t sent_not_established_ = 0;
    std::uint64_t sent_filtered_ = 0;
    std::uint64_t popped_ = 0;
    std::uint64_t bytes_in_ = 0;
    std::uint64_t bytes_out_ = 0;
    std::uint32_t numbering_ = 0;
    std::deque<Queued> in_output_;  // queued frames not yet read from the output
    bool transport_closed_ = false;
    std::uint64_t unsent_at_close_ = 0;
    SessionState last_state_ = SessionState::negotiating;
    bool ever_established_ = false;
    std::uint32_t agreed_version_ = 0;

    // The peer's proposals, read from the bytes the session took while negotiating.
    Decoder peer_shadow_{DecoderMode::negotiating};
    Message shadow_message_{};
    bool shadow_done_ = false;
    std::vector<std::uint32_t> peer_versions_;
    std::uint32_t peer_sequence_ = 0;

    // Our output as the peer sees it.
    fuzz::MessageSplitter out_splitter_;
    std::vector<std::uint32_t> out_versions_;
    bool out_agreed_ = false;
    bool out_features_ = false;
    bool out_closed_ = false;
    std::uint32_t last_ping_token_ = 0;
    std::uint64_t frames_in_output_stream_ = 0;

    // Events seen.
    int version_events_ = 0;
    int features_events_ = 0;
    int closed_events_ = 0;
    int bus_requested_events_ = 0;
    int bus_chosen_events_ = 0;
    bool closed_by_peer_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::FuzzInput in(data, size);
    const std::uint8_t flags = in.u8();
    SessionOptions options;
    options.role = (flags & 1) != 0 ? Role::server : Role::client;
    options.max_version = (flags & 2) != 0 ? 1 : 2;
    options.accept_frames = (flags & 4) == 0;
    const bool ask_bus = (flags & 0x10) != 0;
    const bool refuse_bus = (flags & 0x20) != 0;
    options.features = in.u8();
    options.negotiation_timeout_us = in.u8() * std::uint64_t{20'000};
    options.heartbeat_interval_us = in.u8() * std::uint64_t{2'000};
    options.dead_after_us = in.u8() * std::uint64_t{20'000};
    options.max_frame_age_us = in.u8() * std::uint64_t{2'000};
    const std::uint64_t now = in.u32();
    // On the heap: the default session is tens of kilobytes.
    if ((flags & 8) != 0) {
        std::make_unique<Harness<16384, 256, 64, 32>>(options, now, ask_bus, refuse_bus)->run(in);
    } else {
        std::make_unique<Harness<6 * max_message_size, 4, wire_filter::max_entries, 4>>(options, now, ask_bus, refuse_bus)
            ->run(in);
    }
    return 0;
}
