// tcpcan and canip_peer on one port, told apart by the first bytes (README "canip_peer
// and tcpcan on one port"). Until it knows, this link holds at most a few bytes and
// sends nothing; then it becomes a TcpcanLink or a CanipLink and passes everything on.
//
// Server: a tcpcan client's first byte is 'v', a canip 4.1 client's first line starts
// "CANIP/", a canip 4.0 client sends 14-byte frames (flags 0 or 1). Both real clients
// speak at once, so the server never has to greet first. Anything else, and silence, is
// tcpcan's to judge, as before: the tcpcan session exists from the start (its negotiation
// timeout counts from the connection) and is replaced only when the bytes are canip's.
// Client: a canip_peer server greets at once; a tcpcan server waits for a proposal. So the
// client waits `greeting_wait_us` for a greeting before it proposes. A canip greeting that
// arrives after the proposal is still served: the server has read our proposal as the start
// of our hello line, so a newline ends that line and both sides run 4.0 framing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <tcpcan/dialect/first_bytes.hpp>
#include <tcpcan/filter.hpp>
#include <tcpcan/session.hpp>

#include "canip_link.hpp"
#include "link.hpp"
#include "log.hpp"
#include "tcpcan_link.hpp"

namespace tcpcan::linux_port {

struct DetectOptions {
    SessionOptions tcpcan;  // its role is this link's role
    CanipOptions canip;     // `start` is chosen here; `bus` holds for tcpcan too
    const BusDirectory* buses = nullptr;  // server: answers a tcpcan client's bus request
    // Client: how long to wait for a canip greeting before proposing tcpcan. A canip_peer
    // server greets as soon as it accepts, so one round trip after connect; later greetings
    // still work (with 4.0 framing).
    std::uint64_t greeting_wait_us = 200'000;
    // Client: a greeting begun (e.g. "CAN") must be recognisable within this.
    std::uint64_t decide_within_us = 2'000'000;
};

class DetectLink final : public Link {
public:
    DetectLink(std::string name, const DetectOptions& options, const FilterSetBase& subscription, LogLimiter& limiter,
               std::uint64_t now);

    // What it became (nullptr while undecided).
    [[nodiscard]] TcpcanLink* tcpcan() const { return tcpcan_.get(); }
    TcpcanLink* tcpcan_session() override { return tcpcan_.get(); }
    [[nodiscard]] CanipLink* canip() const { return canip_.get(); }
    [[nodiscard]] FirstBytes detected() const { return detected_; }

    // Peer
    bool ready() const override { return inner() && inner()->ready(); }
    void offer(const Frame& frame, std::uint64_t now) override;
    bool has_room(std::size_t frames) const override { return inner() && inner()->has_room(frames); }
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
    bool closed() const override { return inner() ? inner()->closed() : closed_; }
    std::size_t bus() const override { return inner() ? inner()->bus() : 0; }
    bool agreed() const override { return inner() && inner()->agreed(); }
    std::uint64_t last_received_us() const override { return inner() ? inner()->last_received_us() : last_rx_us_; }
    void log_events(std::uint64_t now) override;
    void discard() override;
    void add_totals(LinkTotals& totals) const override;
    std::uint64_t drops() const override { return inner() ? inner()->drops() : 0; }
    std::string describe_drops() const override;

private:
    [[nodiscard]] Link* inner() const {
        return tcpcan_ ? static_cast<Link*>(tcpcan_.get()) : static_cast<Link*>(canip_.get());
    }
    [[nodiscard]] bool is_client() const { return options_.tcpcan.role == Role::client; }
    void become_tcpcan(std::uint64_t now);
    void become_canip(CanipOptions::Start start, std::uint64_t now);
    void decide(std::uint64_t now);

    DetectOptions options_;
    const FilterSetBase& subscription_;
    LogLimiter& limiter_;
    std::uint64_t started_us_;
    std::uint64_t last_rx_us_;
    std::array<std::uint8_t, first_bytes_needed> first_{};
    std::size_t first_size_ = 0;
    FirstBytes detected_ = FirstBytes::need_more;
    std::unique_ptr<TcpcanLink> tcpcan_;
    std::unique_ptr<CanipLink> canip_;
    bool proposal_sent_ = false;  // client: bytes of our tcpcan proposal reached the transport
    bool closed_ = false;
    bool log_detected_ = false;
    bool undecided_ = true;
    bool log_late_ = false;
};

}  // namespace tcpcan::linux_port
