#include "canip_link.hpp"

#include <array>
#include <cstdio>
#include <cstring>

#include "clock.hpp"

namespace tcpcan::linux_port {

namespace {

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

std::string feature_names(std::uint8_t features) {
    std::string s;
    if (features & canip::feature::seq) {
        s += "SEQ";
    }
    if (features & canip::feature::ts) {
        s += s.empty() ? "TS" : ",TS";
    }
    return s.empty() ? "none" : s;
}

}  // namespace

CanipLink::CanipLink(std::string name, const CanipOptions& options, LogLimiter& limiter, std::uint64_t now)
    : Link(std::move(name)),
      options_(options),
      limiter_(limiter),
      started_us_(now),
      last_rx_us_(now) {
    options_.features &= canip::feature::all;
    switch (options_.start) {
    case CanipOptions::Start::hello: {
        std::array<std::uint8_t, 32> hello{};
        append(std::span<const std::uint8_t>(hello.data(), canip::encode_hello(options_.features, hello)));
        break;
    }
    case CanipOptions::Start::legacy:
        establish(0, true);
        break;
    case CanipOptions::Start::after_late_hello: {
        // The server read our tcpcan proposal as the start of our hello line: a newline ends
        // that line, which is no canip hello, so the server runs 4.0 framing; so do we, once
        // its own hello line has been read.
        const std::uint8_t newline = '\n';
        append(std::span<const std::uint8_t>(&newline, 1));
        options_.features = 0;
        break;
    }
    }
}

void CanipLink::append(std::span<const std::uint8_t> bytes) {
    if (output_head_ != 0 && output_.size() + bytes.size() > output_capacity) {
        output_.erase(output_.begin(), output_.begin() + static_cast<std::ptrdiff_t>(output_head_));
        output_head_ = 0;
    }
    output_.insert(output_.end(), bytes.begin(), bytes.end());
}

void CanipLink::establish(std::uint8_t features, bool legacy) {
    // Storage for frames only once agreed, so a connection that never greets costs little.
    to_bus_ = std::make_unique<detail::RingQueue<Frame, bus_queue_capacity>>();
    output_.reserve(output_capacity);
    state_ = State::established;
    features_ = features;
    legacy_ = legacy;
    decoder_ = canip::FrameDecoder(features);
    log_agreed_ = true;
}

void CanipLink::fail(canip::Error error, std::uint64_t offset) {
    error_ = error;
    error_offset_ = offset;
    error_in_hello_ = state_ == State::awaiting_hello;
    log_error_ = true;
    close(CloseReason::protocol_error, canip::describe(error), last_rx_us_);
}

void CanipLink::offer(const Frame& frame, std::uint64_t /*now*/) {
    if (state_ != State::established) {
        return;  // the Router offers only to ready peers
    }
    switch (canip::check_carriable(frame)) {
    case canip::Uncarried::none: break;
    case canip::Uncarried::fd: ++stats_.drop_fd; return;
    case canip::Uncarried::remote: ++stats_.drop_remote; return;
    case canip::Uncarried::error: ++stats_.drop_error; return;
    case canip::Uncarried::invalid: ++stats_.drop_invalid; return;
    }
    // Numbered before the room check, so a frame dropped here is a gap the peer sees.
    const std::uint32_t sequence = next_sequence_++;
    const std::size_t size = canip::frame_size(features_);
    if (output_room() < size) {
        ++stats_.drop_output_full;
        return;
    }
    // TS: the capture time when the bus gave one (the sender's wall clock), else now.
    const std::uint64_t ts = frame.timestamp_us != 0 ? frame.timestamp_us : wall_clock_us();
    std::array<std::uint8_t, canip::max_frame_size> bytes{};
    const std::size_t n = canip::encode_frame(frame, features_, sequence, ts, bytes);
    append(std::span<const std::uint8_t>(bytes.data(), n));
    ++stats_.frames_sent;
}

bool CanipLink::has_room(std::size_t frames) const {
    return output_room() >= frames * canip::max_frame_size;
}

const Frame* CanipLink::peek_for_bus(std::uint64_t /*now*/, std::uint64_t wall_clock_us) {
    while (to_bus_ && !to_bus_->empty()) {
        const Frame& f = to_bus_->front();
        const bool too_old = options_.max_frame_age_us != 0 && f.timestamp_us != 0 && wall_clock_us != 0 &&
                             wall_clock_us > f.timestamp_us && wall_clock_us - f.timestamp_us > options_.max_frame_age_us;
        if (!too_old) {
            return &f;
        }
        ++stats_.drop_expired;
        to_bus_->pop();
    }
    return nullptr;
}

void CanipLink::pop_for_bus() {
    if (to_bus_) {
        to_bus_->pop();
    }
}

std::size_t CanipLink::read_budget() const {
    if (state_ == State::closed) {
        return 0;
    }
    if (!to_bus_) {
        return canip::max_hello_size;  // greeting: the hello, and no more than a few frames after it
    }
    // The smallest frame per free slot: reading never overflows the bus queue, so a slow
    // bus pushes back on the sender through TCP.
    return (to_bus_->capacity() - to_bus_->size()) * canip::base_frame_size;
}

void CanipLink::take_frame(const canip::WireFrame& wire) {
    ++stats_.frames_received;
    if (features_ & canip::feature::seq) {
        // canip_peer numbers from 0 per connection, but checks from the first number it sees.
        if (first_sequence_) {
            first_sequence_ = false;
            tracker_.reset(wire.sequence);
        }
        if (tracker_.on_frame(wire.sequence).verdict == SequenceVerdict::duplicate) {
            ++stats_.drop_duplicate;  // as tcpcan does with its sequence numbers: counted, not repeated on the bus
            return;
        }
    }
    if (!to_bus_->push(wire.frame)) {
        ++stats_.drop_bus_queue_full;  // read_budget keeps this from happening
    }
}

void CanipLink::receive(std::span<const std::uint8_t> bytes, std::uint64_t now) {
    if (bytes.empty() || state_ == State::closed) {
        return;
    }
    last_rx_us_ = now;
    stats_.bytes_in += bytes.size();
    if (state_ == State::awaiting_hello) {
        if (!hello_bytes_seen_ && bytes[0] != 'C' && options_.start == CanipOptions::Start::hello) {
            // Not a hello: a 4.0 peer's first frame (canip_peer would wait 2 s and then read
            // the rest of the line as a hello; we need not guess).
            establish(0, true);
        } else {
            hello_bytes_seen_ = true;
            const DecodeResult r = hello_.feed(bytes);
            if (r.status == DecodeStatus::error) {
                fail(hello_.error(), 0);
                return;
            }
            bytes = bytes.subspan(r.consumed);
            if (r.status == DecodeStatus::need_more) {
                return;
            }
            const bool late = options_.start == CanipOptions::Start::after_late_hello;
            establish(late ? 0 : static_cast<std::uint8_t>(options_.features & hello_.features()), late);
        }
    }
    while (!bytes.empty()) {
        canip::WireFrame wire;
        const DecodeResult r = decoder_.decode(bytes, wire);
        if (r.status == DecodeStatus::error) {
            fail(decoder_.error(), decoder_.error_offset());
            return;
        }
        bytes = bytes.subspan(r.consumed);
        if (r.status == DecodeStatus::complete) {
            take_frame(wire);
        }
    }
}

std::span<const std::uint8_t> CanipLink::output() const {
    return std::span<const std::uint8_t>(output_.data() + output_head_, output_.size() - output_head_);
}

void CanipLink::consume_output(std::size_t n) {
    output_head_ += n;
    if (output_head_ >= output_.size()) {
        output_.clear();
        output_head_ = 0;
    }
}

void CanipLink::tick(std::uint64_t now) {
    if (state_ == State::awaiting_hello && now >= started_us_ + options_.hello_timeout_us) {
        if (hello_bytes_seen_) {
            fail(canip::Error::hello_unfinished, 0);
            return;
        }
        establish(0, true);  // as canip_peer: no hello in time = a 4.0 peer
    }
}

std::uint64_t CanipLink::next_deadline() const {
    return state_ == State::awaiting_hello ? started_us_ + options_.hello_timeout_us : ~std::uint64_t{0};
}

void CanipLink::close(CloseReason reason, std::string_view /*text*/, std::uint64_t /*now*/) {
    if (state_ == State::closed) {
        return;
    }
    // canip has no close message: the reason goes to our log only.
    state_ = State::closed;
    close_reason_ = reason;
    log_closed_ = true;
}

void CanipLink::transport_closed(std::uint64_t now) {
    if (state_ != State::closed) {
        closed_by_peer_ = true;
        close(CloseReason::normal, "", now);
    }
}

void CanipLink::discard() {
    if (to_bus_) {
        stats_.drop_unsent_bus_queue += to_bus_->size();
        to_bus_->clear();
    }
}

void CanipLink::add_totals(LinkTotals& t) const {
    t.sent += stats_.frames_sent;
    t.received += stats_.frames_received;
    t.dropped += drops();
    t.lost += tracker_.counters().lost;
    t.duplicates += tracker_.counters().duplicates;
    t.gaps += tracker_.counters().gaps;
    t.output_full += stats_.drop_output_full;
    t.bus_queue_full += stats_.drop_bus_queue_full;
    t.expired += stats_.drop_expired;
    t.unsent_at_close += stats_.drop_unsent_bus_queue;
}

std::uint64_t CanipLink::drops() const { return stats_.dropped_towards_peer() + stats_.dropped_towards_bus(); }

std::string CanipLink::describe_drops() const {
    char text[320];
    std::snprintf(text, sizeof text,
                  "%llu frames dropped so far (towards canip peer: CAN FD %llu, remote %llu, error frames %llu, "
                  "invalid %llu, output full %llu; towards bus: duplicates %llu, expired %llu, queue full %llu)",
                  ull(drops()), ull(stats_.drop_fd), ull(stats_.drop_remote), ull(stats_.drop_error),
                  ull(stats_.drop_invalid), ull(stats_.drop_output_full), ull(stats_.drop_duplicate),
                  ull(stats_.drop_expired), ull(stats_.drop_bus_queue_full));
    return text;
}

void CanipLink::log_events(std::uint64_t now) {
    const char* peer = name().c_str();
    if (log_agreed_) {
        log_agreed_ = false;
        if (legacy_) {
            LOG_INFO("%s: canip 4.0 (no hello): 14-byte frames, no sequence numbers or timestamps", peer);
        } else {
            LOG_INFO("%s: canip 4.1 agreed, features %s (%zu-byte frames)", peer, feature_names(features_).c_str(),
                     canip::frame_size(features_));
        }
    }
    const SequenceCounters& seq = tracker_.counters();
    if (seq.gaps != logged_sequence_.gaps && limiter_.allow(name() + " seq-gap", now)) {
        LOG_WARNING("%s: SEQ gap: %llu frames lost so far in %llu gaps", peer, ull(seq.lost), ull(seq.gaps));
        logged_sequence_.gaps = seq.gaps;
    }
    if (seq.duplicates != logged_sequence_.duplicates && limiter_.allow(name() + " seq-duplicate", now)) {
        LOG_WARNING("%s: SEQ duplicate: %llu frames repeated so far (dropped)", peer, ull(seq.duplicates));
        logged_sequence_.duplicates = seq.duplicates;
    }
    if (log_error_) {
        log_error_ = false;
        if (error_in_hello_) {
            LOG_WARNING("%s: canip protocol error in its hello: %s; closing", peer, canip::describe(error_));
        } else {
            LOG_WARNING("%s: canip protocol error: %s, in the frame at byte %llu after the hello; closing", peer,
                        canip::describe(error_), ull(error_offset_));
        }
    }
    if (log_closed_) {
        log_closed_ = false;
        if (closed_by_peer_) {
            LOG_INFO("%s: disconnected", peer);
        } else if (close_reason_ != CloseReason::protocol_error) {
            LOG_INFO("%s: closing: %s", peer, describe(close_reason_));
        }
    }
}

}  // namespace tcpcan::linux_port
