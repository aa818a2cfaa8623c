// A socketcand client (python-can's `socketcand` interface, SavvyCAN, socketcandcl) as a
// Link: the server side of socketcand's text protocol (include/tcpcan/dialect/socketcand.hpp).
//
// Life of a connection:
//  - `< hi >` at once. `< open NAME >` picks a bus from the BusDirectory by its --can name or
//    its interface name (the stdio bus's "tcpcan", when one bus has it): `< ok >`, or
//    `< error could not open bus >` and the connection closes (as socketcand does). From then
//    on the link is agreed and attached to that bus; `< send … >` reaches the bus in any mode.
//  - `< rawmode >` → `< ok >`, then every frame of the bus flows as `< frame … >` (error frames
//    as `< error CLASS TS >`; remote frames are dropped and counted; CAN FD only after
//    `< fdmode >`, else dropped and counted).
//  - `< controlmode >` → `< ok >`; `< statistics MS >` then sends `< stat RBYTES RPACKETS
//    TBYTES TPACKETS >` every MS milliseconds (0 stops it; at least 10 ms apart). The numbers
//    are this connection's: frames (and data bytes) its bus delivered to it since `< open >`,
//    and frames it sent to the bus; socketcand reports the interface's /proc/net/dev lines.
//  - BCM mode (socketcand's default after `< open >`) and ISO-TP mode are not served: their
//    commands get `< error … >` naming that, and the connection stays usable.
//  - `< echo >` is answered in every state; an unknown command gets `< error unknown command >`
//    and the connection goes on; a `< send >` with bad arguments gets `< error REASON >` (the
//    frame is not sent; socketcand only logs it).
//  - Bytes outside `< … >` or a message over 8,290 bytes close the connection with a logged
//    reason (socketcand closes too), and so does no `< open >` within open_timeout_us.
// `< ok >` never shares a TCP segment with what follows it: python-can 4.1 reads each
// handshake reply with one recv() and compares it whole. Bytes after an `< ok >` wait
// ok_hold_us (30 ms) after it became ready to send, by then the client has read it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <tcpcan/detail/ring_queue.hpp>
#include <tcpcan/dialect/socketcand.hpp>

#include "link.hpp"
#include "log.hpp"

namespace tcpcan::linux_port {

struct SocketcandOptions {
    // Bytes after an `< ok >` wait this long (µs) so the reply arrives alone.
    std::uint64_t ok_hold_us = 30'000;
    // Shortest `< statistics MS >` interval honoured (socketcand polls every 10 ms).
    std::uint32_t min_statistics_ms = 10;
    // A client that has not opened a bus this long after connecting is closed (the server's
    // --negotiation-timeout; socketcand waits forever). 0 = never.
    std::uint64_t open_timeout_us = 5'000'000;
};

class SocketcandLink final : public Link {
public:
    // 64 KiB of text towards the client (~1,700 classic frames), 1,024 frames towards the bus.
    static constexpr std::size_t output_capacity = 65536;
    // Room frames leave free for replies, so a busy bus never crowds out `< ok >` or `< echo >`.
    static constexpr std::size_t reply_reserve = 8192;
    static constexpr std::size_t bus_queue_capacity = 1024;

    // `tied_bus`: the listener serves this bus only (--listen socketcand@PORT:BUS); `< open >`
    // must name it.
    SocketcandLink(std::string name, const BusDirectory& buses, const SocketcandOptions& options, LogLimiter& limiter,
                   std::uint64_t now, std::optional<std::size_t> tied_bus = std::nullopt);
    ~SocketcandLink() override;

    // Peer
    bool ready() const override;
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
    bool closed() const override { return closed_; }
    std::size_t bus() const override { return bus_; }
    std::uint64_t last_received_us() const override { return last_rx_us_; }
    void log_events(std::uint64_t now) override;
    void discard() override;
    void add_totals(LinkTotals& totals) const override;
    std::uint64_t drops() const override;
    std::string describe_drops() const override;

    enum class Mode : std::uint8_t { no_bus, bcm, raw, control };
    [[nodiscard]] Mode mode() const { return mode_; }
    [[nodiscard]] bool fd() const { return fd_; }

    struct Counters {
        std::uint64_t frames_to_client = 0;      // `< frame >` / `< error >` written
        std::uint64_t frames_from_client = 0;    // valid `< send >` queued for the bus
        std::uint64_t bytes_to_bus = 0;          // their data bytes (for `< stat >`)
        std::uint64_t bytes_from_bus = 0;        // data bytes offered since `< open >` (for `< stat >`)
        std::uint64_t frames_from_bus = 0;       // frames offered since `< open >`
        std::uint64_t not_in_raw_mode = 0;       // offered while the client was not in raw mode
        std::uint64_t drop_remote = 0;           // RTR: socketcand has no form for it
        std::uint64_t drop_fd = 0;               // CAN FD while the client did not ask for it
        std::uint64_t drop_output_full = 0;      // the client does not read fast enough
        std::uint64_t drop_bus_queue_full = 0;   // towards the bus
        std::uint64_t refused_sends = 0;         // `< send >` with bad arguments, answered `< error … >`
        std::uint64_t refused_commands = 0;      // unknown or unsupported commands
        std::uint64_t unsent_at_close = 0;       // frames still queued for the bus at the end
    };
    [[nodiscard]] const Counters& counters() const { return counters_; }

private:
    void handle(std::string_view message, std::uint64_t now);
    void reply(std::string_view word, std::uint64_t now);
    void reply_ok(std::uint64_t now);
    void reply_error(std::string_view text, std::uint64_t now);
    bool append(std::span<const char> text);
    void fail(std::string reason, std::uint64_t now);
    void note(LogLevel level, std::string key, std::string line);
    void start_hold_if_due(std::uint64_t now);
    [[nodiscard]] std::size_t output_free() const { return output_capacity - (end_ - begin_); }
    [[nodiscard]] std::uint64_t written_total() const { return consumed_total_ + (end_ - begin_); }

    const BusDirectory& buses_;
    std::optional<std::size_t> tied_bus_;
    SocketcandOptions options_;
    LogLimiter& limiter_;
    std::unique_ptr<socketcand::MessageScanner> scanner_;
    std::unique_ptr<std::array<std::uint8_t, output_capacity>> out_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::uint64_t consumed_total_ = 0;
    // Stream offsets just past each `< ok >` not yet followed by its pause; bytes after the
    // first wait until hold_until_ (0 = its pause has not started yet).
    std::deque<std::uint64_t> ok_ends_;
    std::uint64_t hold_until_ = 0;
    std::unique_ptr<detail::RingQueue<Frame, bus_queue_capacity>> to_bus_;
    Mode mode_ = Mode::no_bus;
    bool fd_ = false;
    bool closed_ = false;
    std::size_t bus_ = 0;
    std::uint32_t statistics_ms_ = 0;
    std::uint64_t next_stat_at_ = 0;
    std::uint64_t last_rx_us_ = 0;
    std::uint64_t open_deadline_ = 0;  // 0 = none
    std::uint64_t now_ = 0;  // the latest time given: consume_output() has none
    Counters counters_;
    struct Note {
        LogLevel level;
        std::string key;
        std::string line;
    };
    std::deque<Note> notes_;
    std::uint64_t notes_dropped_ = 0;
};

}  // namespace tcpcan::linux_port
