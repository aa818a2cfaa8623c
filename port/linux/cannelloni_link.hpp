// cannelloni peers (cannelloni 2.x) as Links: over TCP (both sides send "CANNELLONIv1",
// then frames) and over UDP (frames packed into sequence-numbered packets, flushed when
// full or after a timeout). The wire format is include/tcpcan/dialect/cannelloni*.hpp.
//
// What cannelloni cannot carry is dropped towards it and counted: error frames (cannelloni
// keeps its own error frames local, so error frames neither go to a cannelloni peer nor are
// taken from one). Nothing else is lost by design; a full queue drops and counts too.
//
// UDP has no connection: one link serves the one socket for the life of the process.
// The peer is fixed (client: a connected socket; server: --cannelloni-peer) or the first
// sender; datagrams from any other address are dropped and counted (cannelloni's
// peer-address check). The UDP socket's Transport is make_udp_transport() below.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <tcpcan/detail/ring_queue.hpp>
#include <tcpcan/dialect/cannelloni.hpp>
#include <tcpcan/dialect/cannelloni_udp.hpp>
#include <tcpcan/negotiation.hpp>

#include "link.hpp"
#include "log.hpp"
#include "transport.hpp"

namespace tcpcan::linux_port {

struct CannelloniOptions {
    Role role = Role::server;
    std::size_t bus = 0;                                   // index into the BusDirectory
    std::uint64_t handshake_timeout_us = 5'000'000;        // TCP: the peer's CANNELLONIv1
    std::string refuse_because;                            // TCP server: non-empty = close at once, saying this
    std::size_t mtu = cannelloni::default_mtu;             // UDP: packets up to mtu − ip_udp_overhead bytes
    std::size_t ip_udp_overhead = cannelloni::ipv4_udp_overhead;  // 48 over IPv6
    std::uint64_t flush_timeout_us = cannelloni::default_flush_timeout_us;  // UDP: cannelloni's -t
};

// Counters both kinds share; drops by cause.
struct CannelloniStats {
    std::uint64_t frames_sent = 0;      // towards the peer (TCP: encoded; UDP: in a packet handed to the socket)
    std::uint64_t frames_received = 0;  // from the peer, queued for the bus
    std::uint64_t bytes_in = 0;
    std::uint64_t drop_error_frame_to_peer = 0;    // cannelloni does not carry error frames
    std::uint64_t drop_error_frame_from_peer = 0;  // ... nor take them from a peer
    std::uint64_t drop_output_full = 0;            // the peer reads too slowly
    std::uint64_t drop_bus_queue_full = 0;         // the bus takes frames too slowly
    std::uint64_t drop_unsent_at_close = 0;        // waiting for the bus when the link ended
    std::uint64_t drop_no_peer = 0;                // UDP server: no peer known yet to send to
    std::uint64_t bad_packets = 0;                 // UDP: packets refused whole (named in the log)
    std::uint64_t frames_in_bad_packets = 0;       // ... and the frames their count announced
    std::uint64_t packets_sent = 0, packets_received = 0;
};

// Shared by both kinds: the queue towards the bus and the counters.
class CannelloniLinkBase : public Link {
public:
    static constexpr std::size_t bus_queue_frames = 2048;

    // Peer
    bool has_room(std::size_t frames) const override;
    const Frame* peek_for_bus(std::uint64_t now, std::uint64_t wall_clock_us) override;
    void pop_for_bus() override;

    // Link
    std::size_t bus() const override { return options_.bus; }
    std::uint64_t last_received_us() const override { return last_rx_us_; }
    void discard() override;
    void add_totals(LinkTotals& totals) const override;
    std::uint64_t drops() const override;
    std::string describe_drops() const override;

    [[nodiscard]] const CannelloniStats& stats() const { return stats_; }

protected:
    CannelloniLinkBase(std::string name, const CannelloniOptions& options, LogLimiter& limiter, std::uint64_t now);
    // Queues a frame from the peer for the bus (error frames are dropped and counted).
    void to_bus(const Frame& frame);
    [[nodiscard]] virtual std::size_t room_towards_peer_bytes() const = 0;
    [[nodiscard]] virtual std::uint64_t lost() const { return 0; }
    [[nodiscard]] std::size_t bus_queue_free() const { return bus_queue_->capacity() - bus_queue_->size(); }

    CannelloniOptions options_;
    LogLimiter& limiter_;
    CannelloniStats stats_;
    std::uint64_t last_rx_us_ = 0;

private:
    std::unique_ptr<detail::RingQueue<Frame, bus_queue_frames>> bus_queue_;
};

// cannelloni over TCP, either role. Agreed once the peer's handshake arrived (ours is
// queued at once: cannelloni sends its own without waiting). Bad bytes close the link
// with the reason in the log; cannelloni has no message to tell the peer why.
class CannelloniTcpLink final : public CannelloniLinkBase {
public:
    static constexpr std::size_t output_capacity = 65536;

    CannelloniTcpLink(std::string name, const CannelloniOptions& options, LogLimiter& limiter, std::uint64_t now);

    bool ready() const override { return agreed_ && !closed_; }
    void offer(const Frame& frame, std::uint64_t now) override;

    std::size_t read_budget() const override;
    void receive(std::span<const std::uint8_t> bytes, std::uint64_t now) override;
    std::span<const std::uint8_t> output() const override;
    void consume_output(std::size_t n) override;
    void tick(std::uint64_t now) override;
    std::uint64_t next_deadline() const override;
    void close(CloseReason reason, std::string_view text, std::uint64_t now) override;
    void transport_closed(std::uint64_t now) override;
    bool closed() const override { return closed_; }
    bool agreed() const override { return agreed_; }
    void log_events(std::uint64_t now) override;

private:
    std::size_t room_towards_peer_bytes() const override;

    cannelloni::StreamDecoder decoder_;
    std::vector<std::uint8_t> out_;  // bytes for the peer from out_start_ on
    std::size_t out_start_ = 0;
    std::uint64_t started_us_ = 0;
    bool agreed_ = false;
    bool closed_ = false;
    // Events for log_events(), at most one of each kind pending.
    bool log_agreed_ = false, log_error_ = false, log_timeout_ = false, log_closed_ = false, log_eof_ = false;
    bool log_refused_ = false;
};

// The UDP side's view of its socket: who the peer is, and what the socket dropped.
struct UdpPeer {
    sockaddr_storage address{};
    socklen_t address_length = 0;
    bool known = false;           // a destination to send to
    bool address_fixed = false;   // only `address` (any port) may send
    bool port_fixed = false;      // the destination port is fixed too
    bool connected = false;       // client: a connected socket (the kernel filters senders)
    std::uint64_t foreign_packets = 0;   // from another address, dropped
    std::uint64_t oversized_packets = 0; // larger than the read buffer, dropped
    std::uint64_t send_errors = 0;       // packets the socket refused (e.g. ICMP port unreachable)
    bool adopted_event = false;          // the first sender became the peer (for the log)
    bool foreign_event = false;
};

// One bound UDP socket as a Transport: read() returns one datagram from the peer, write()
// sends one datagram (the whole span). Does not own the fd.
[[nodiscard]] std::unique_ptr<Transport> make_udp_transport(int fd, std::shared_ptr<UdpPeer> peer);

// cannelloni over UDP. Always agreed: there is no handshake. One datagram per receive().
class CannelloniUdpLink final : public CannelloniLinkBase {
public:
    static constexpr std::size_t max_packets_waiting = 64;

    CannelloniUdpLink(std::string name, const CannelloniOptions& options, std::shared_ptr<UdpPeer> peer,
                      LogLimiter& limiter, std::uint64_t now);

    bool ready() const override { return !closed_; }
    void offer(const Frame& frame, std::uint64_t now) override;

    std::size_t read_budget() const override;
    void receive(std::span<const std::uint8_t> bytes, std::uint64_t now) override;
    std::span<const std::uint8_t> output() const override;
    void consume_output(std::size_t n) override;
    void tick(std::uint64_t now) override;
    std::uint64_t next_deadline() const override;
    void close(CloseReason reason, std::string_view text, std::uint64_t now) override;
    void transport_closed(std::uint64_t now) override;
    bool closed() const override { return closed_; }
    bool agreed() const override { return true; }
    void log_events(std::uint64_t now) override;

    [[nodiscard]] const cannelloni::SequenceWatch& sequence() const { return sequence_; }
    [[nodiscard]] const UdpPeer& peer() const { return *peer_; }

private:
    std::size_t room_towards_peer_bytes() const override;
    std::uint64_t lost() const override { return sequence_.lost(); }
    void finish_packet();

    std::shared_ptr<UdpPeer> peer_;
    cannelloni::PacketPacker<cannelloni::default_payload> packer_;
    struct WaitingPacket {
        std::vector<std::uint8_t> bytes;
        std::uint16_t frames = 0;
    };
    std::deque<WaitingPacket> packets_;  // finished, waiting for the socket
    cannelloni::SequenceWatch sequence_;
    bool closed_ = false;
    cannelloni::Error last_bad_ = cannelloni::Error::none;
    std::size_t last_bad_offset_ = 0;
    std::uint64_t bad_logged_ = 0, gaps_logged_ = 0, foreign_logged_ = 0, trouble_logged_ = 0;
    bool summary_logged_ = false;
};

}  // namespace tcpcan::linux_port
