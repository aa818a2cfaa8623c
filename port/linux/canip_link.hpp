// A canip_peer 4.1 connection (or a legacy 4.0 one) as a Link, in either role: both
// sides send their hello at once and wait up to 2 s for the other's (as canip_peer
// does); the features are the intersection; no hello means 4.0 (14-byte frames, no
// features). FD, remote and error frames have no place on this wire: they are dropped
// towards the peer and counted by cause.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <tcpcan/detail/ring_queue.hpp>
#include <tcpcan/dialect/canip.hpp>
#include <tcpcan/sequence.hpp>

#include "link.hpp"
#include "log.hpp"

namespace tcpcan::linux_port {

struct CanipOptions {
    enum class Start : std::uint8_t {
        hello,             // send our hello, read the peer's (2 s; none = 4.0)
        legacy,            // the peer is 4.0: no hello either way
        after_late_hello,  // client: the server greeted after we proposed tcpcan (see DetectLink)
    };
    Start start = Start::hello;
    std::uint8_t features = canip::feature::seq;  // ours (canip_peer's default: SEQ on, TS opt-in)
    std::uint64_t hello_timeout_us = 2'000'000;   // canip_peer's own wait for a hello
    std::uint64_t max_frame_age_us = 0;           // frames with an older TS are not put on the bus
    std::size_t bus = 0;
};

// Counted per link, summed in add_totals.
struct CanipStats {
    std::uint64_t frames_sent = 0, frames_received = 0, bytes_in = 0;
    // Towards the peer: what this wire cannot carry, and a full output.
    std::uint64_t drop_fd = 0, drop_remote = 0, drop_error = 0, drop_invalid = 0, drop_output_full = 0;
    // Towards the bus.
    std::uint64_t drop_duplicate = 0, drop_expired = 0, drop_bus_queue_full = 0, drop_unsent_bus_queue = 0;
    [[nodiscard]] std::uint64_t dropped_towards_peer() const {
        return drop_fd + drop_remote + drop_error + drop_invalid + drop_output_full;
    }
    [[nodiscard]] std::uint64_t dropped_towards_bus() const {
        return drop_duplicate + drop_expired + drop_bus_queue_full + drop_unsent_bus_queue;
    }
};

class CanipLink final : public Link {
public:
    static constexpr std::size_t output_capacity = 65536;  // ~2,500 frames of 26 bytes
    static constexpr std::size_t bus_queue_capacity = 2048;

    CanipLink(std::string name, const CanipOptions& options, LogLimiter& limiter, std::uint64_t now);

    // Peer
    bool ready() const override { return state_ == State::established; }
    void offer(const Frame& frame, std::uint64_t now) override;
    bool has_room(std::size_t frames) const override;
    const Frame* peek_for_bus(std::uint64_t now, std::uint64_t wall_clock_us) override;
    void pop_for_bus() override;

    // Link
    std::size_t read_budget() const override;
    void receive(std::span<const std::uint8_t> bytes, std::uint64_t now) override;
    std::span<const std::uint8_t> output() const override;
    void consume_output(std::size_t n) override;
    void tick(std::uint64_t now) override;
    std::uint64_t next_deadline() const override;
    void close(CloseReason reason, std::string_view text, std::uint64_t now) override;
    void transport_closed(std::uint64_t now) override;
    bool closed() const override { return state_ == State::closed; }
    std::size_t bus() const override { return options_.bus; }
    std::uint64_t last_received_us() const override { return last_rx_us_; }
    void log_events(std::uint64_t now) override;
    void discard() override;
    void add_totals(LinkTotals& totals) const override;
    std::uint64_t drops() const override;
    std::string describe_drops() const override;

    // Agreed features (valid once ready()); legacy() = the peer sent no hello (4.0).
    [[nodiscard]] std::uint8_t features() const { return features_; }
    [[nodiscard]] bool legacy() const { return legacy_; }
    [[nodiscard]] const CanipStats& stats() const { return stats_; }
    [[nodiscard]] const SequenceCounters& sequence() const { return tracker_.counters(); }
    // Why the link closed on the peer's bytes (none otherwise).
    [[nodiscard]] canip::Error error() const { return error_; }

private:
    enum class State : std::uint8_t { awaiting_hello, established, closed };

    void establish(std::uint8_t features, bool legacy);
    void fail(canip::Error error, std::uint64_t offset);
    void append(std::span<const std::uint8_t> bytes);
    [[nodiscard]] std::size_t output_room() const { return output_capacity - (output_.size() - output_head_); }
    void take_frame(const canip::WireFrame& wire);

    CanipOptions options_;
    LogLimiter& limiter_;
    State state_ = State::awaiting_hello;
    std::uint64_t started_us_ = 0;
    std::uint64_t last_rx_us_ = 0;
    std::uint8_t features_ = 0;
    bool legacy_ = false;
    bool hello_bytes_seen_ = false;

    canip::HelloReader hello_;
    canip::FrameDecoder decoder_;
    canip::Error error_ = canip::Error::none;
    std::uint64_t error_offset_ = 0;
    bool error_in_hello_ = false;

    std::vector<std::uint8_t> output_;
    std::size_t output_head_ = 0;
    std::uint32_t next_sequence_ = 0;
    bool first_sequence_ = true;
    SequenceTracker tracker_;
    std::unique_ptr<detail::RingQueue<Frame, bus_queue_capacity>> to_bus_;
    CanipStats stats_;

    // What log_events reports next.
    bool log_agreed_ = false;
    bool log_error_ = false;
    bool log_closed_ = false;
    bool closed_by_peer_ = false;
    CloseReason close_reason_ = CloseReason::normal;
    SequenceCounters logged_sequence_{};
};

}  // namespace tcpcan::linux_port
