// One connection's protocol side as the Linux hub drives it: a Router Peer (frames) plus
// the bytes, timers and life cycle of its wire protocol. A tcpcan session is one kind
// (tcpcan_link.hpp); other dialects become further kinds without touching the Router or
// the loop. Each kind turns its own events into log lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tcpcan/message.hpp>
#include <tcpcan/peer.hpp>

namespace tcpcan::linux_port {

// Counters summed over links, live and ended, for the statistics line.
struct LinkTotals {
    std::uint64_t sent = 0, received = 0, dropped = 0, lost = 0, duplicates = 0, gaps = 0, filtered = 0;
    std::uint64_t output_full = 0, bus_queue_full = 0, expired = 0, refused_read_only = 0, unsent_at_close = 0;
    std::uint64_t resumed = 0, replayed = 0, undeliverable = 0;  // feature::resume
    std::uint64_t rtt_us = 0;  // the last round trip measured, over all links
};

// The buses one daemon serves, by name, in --can order ("-" is stdio). A link whose dialect
// lets the peer choose a bus (socketcand's `< open NAME >`, tcpcan's bus request) looks the
// name up here, so it can answer the peer at once.
struct BusDirectory {
    std::vector<std::string> names;
    // Each bus port's own name, in the same order, where a client may know it instead: the
    // interface a stdio bus writes in its candump lines ("tcpcan"); for SocketCAN the same.
    // Its initializer keeps BusDirectory{{names}} free of missing-initializer warnings.
    std::vector<std::string> interfaces{};

    // A bus by its interface name, when exactly one bus has it (stdio and fd: buses share
    // "tcpcan").
    [[nodiscard]] bool find_interface(std::string_view name, std::size_t& index) const {
        std::size_t found = 0;
        for (std::size_t i = 0; i < interfaces.size(); ++i) {
            if (interfaces[i] == name) {
                index = i;
                ++found;
            }
        }
        return found == 1;
    }

    [[nodiscard]] bool find(std::string_view name, std::size_t& index) const {
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (names[i] == name) {
                index = i;
                return true;
            }
        }
        return false;
    }
};

class TcpcanLink;

class Link : public Peer {
public:
    virtual ~Link() = default;

    [[nodiscard]] const std::string& name() const { return name_; }

    // Bytes the link may take from the network now; 0 = stop reading (TCP pushes back).
    [[nodiscard]] virtual std::size_t read_budget() const = 0;
    // Bytes from the network. A protocol error closes the link (see closed()).
    virtual void receive(std::span<const std::uint8_t> bytes, std::uint64_t now) = 0;
    // Bytes for the network, and how many of them the transport took.
    [[nodiscard]] virtual std::span<const std::uint8_t> output() const = 0;
    virtual void consume_output(std::size_t n) = 0;
    // Timers: heartbeat, negotiation timeout, dead peer.
    virtual void tick(std::uint64_t now) = 0;
    [[nodiscard]] virtual std::uint64_t next_deadline() const = 0;
    // Ends the link, telling the peer why where the protocol can.
    virtual void close(CloseReason reason, std::string_view text, std::uint64_t now) = 0;
    // The transport ended (EOF, reset, error).
    virtual void transport_closed(std::uint64_t now) = 0;
    [[nodiscard]] virtual bool closed() const = 0;
    // The bus (index into BusDirectory::names) this link's frames belong to. The bridge
    // attaches the link to it once agreed(); a link whose peer chooses must have chosen by then.
    [[nodiscard]] virtual std::size_t bus() const { return 0; }
    // The tcpcan session under this link (itself, or the one a first-bytes detector chose),
    // for what only tcpcan does: resume, the fallback to version 1. Null for other dialects.
    [[nodiscard]] virtual TcpcanLink* tcpcan_session() { return nullptr; }
    // Once agreed, frames flow; before it the connection is pending.
    [[nodiscard]] virtual bool agreed() const { return ready(); }
    // Time (µs, the loop's clock) bytes last arrived.
    [[nodiscard]] virtual std::uint64_t last_received_us() const = 0;
    // Turns what happened since the last call into log lines (rate-limited per link).
    virtual void log_events(std::uint64_t now) = 0;
    // The link is done: frames still waiting for the bus are dropped and counted.
    virtual void discard() = 0;
    virtual void add_totals(LinkTotals& totals) const = 0;
    // Frames dropped so far, and a line saying by which cause.
    [[nodiscard]] virtual std::uint64_t drops() const = 0;
    [[nodiscard]] virtual std::string describe_drops() const = 0;

protected:
    explicit Link(std::string name) : name_(std::move(name)) {}

private:
    std::string name_;
};

}  // namespace tcpcan::linux_port
