#include "cannelloni_link.hpp"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "net.hpp"
#include "udp_net.hpp"

namespace tcpcan::linux_port {

namespace {

constexpr std::uint64_t no_deadline = ~std::uint64_t{0};

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

// ---- shared --------------------------------------------------------------------------

CannelloniLinkBase::CannelloniLinkBase(std::string name, const CannelloniOptions& options, LogLimiter& limiter,
                                       std::uint64_t now)
    : Link(std::move(name)),
      options_(options),
      limiter_(limiter),
      last_rx_us_(now),
      bus_queue_(std::make_unique<detail::RingQueue<Frame, bus_queue_frames>>()) {}

bool CannelloniLinkBase::has_room(std::size_t frames) const {
    return room_towards_peer_bytes() >= frames * cannelloni::max_frame_size;
}

const Frame* CannelloniLinkBase::peek_for_bus(std::uint64_t, std::uint64_t) {
    return bus_queue_->empty() ? nullptr : &bus_queue_->front();
}

void CannelloniLinkBase::pop_for_bus() { bus_queue_->pop(); }

void CannelloniLinkBase::to_bus(const Frame& frame) {
    if (frame.is_error()) {
        ++stats_.drop_error_frame_from_peer;
        return;
    }
    if (!bus_queue_->push(frame)) {
        ++stats_.drop_bus_queue_full;
        return;
    }
    ++stats_.frames_received;
}

void CannelloniLinkBase::discard() {
    stats_.drop_unsent_at_close += bus_queue_->size();
    bus_queue_->clear();
}

std::uint64_t CannelloniLinkBase::drops() const {
    const CannelloniStats& s = stats_;
    return s.drop_error_frame_to_peer + s.drop_error_frame_from_peer + s.drop_output_full + s.drop_bus_queue_full +
           s.drop_unsent_at_close + s.drop_no_peer + s.frames_in_bad_packets;
}

std::string CannelloniLinkBase::describe_drops() const {
    const CannelloniStats& s = stats_;
    char text[384];
    std::snprintf(text, sizeof text,
                  "%llu frames dropped so far (towards peer: error frames %llu, output full %llu, no peer yet %llu; "
                  "towards bus: error frames %llu, queue full %llu, in refused packets %llu)",
                  ull(drops()), ull(s.drop_error_frame_to_peer), ull(s.drop_output_full), ull(s.drop_no_peer),
                  ull(s.drop_error_frame_from_peer), ull(s.drop_bus_queue_full), ull(s.frames_in_bad_packets));
    return text;
}

void CannelloniLinkBase::add_totals(LinkTotals& t) const {
    const CannelloniStats& s = stats_;
    t.sent += s.frames_sent;
    t.received += s.frames_received;
    t.dropped += drops();
    t.lost += lost();
    t.output_full += s.drop_output_full;
    t.bus_queue_full += s.drop_bus_queue_full;
    t.unsent_at_close += s.drop_unsent_at_close;
}

// ---- TCP -----------------------------------------------------------------------------

CannelloniTcpLink::CannelloniTcpLink(std::string name, const CannelloniOptions& options, LogLimiter& limiter,
                                     std::uint64_t now)
    : CannelloniLinkBase(std::move(name), options, limiter, now), started_us_(now) {
    out_.reserve(output_capacity);
    if (!options.refuse_because.empty()) {
        // cannelloni's peer check: a stranger gets no handshake, only the closed connection.
        closed_ = true;
        log_refused_ = true;
        return;
    }
    // cannelloni sends its handshake at once, in both roles; so do we.
    out_.assign(cannelloni::handshake.begin(), cannelloni::handshake.end());
}

std::size_t CannelloniTcpLink::room_towards_peer_bytes() const {
    const std::size_t waiting = out_.size() - out_start_;
    return waiting >= output_capacity ? 0 : output_capacity - waiting;
}

void CannelloniTcpLink::offer(const Frame& frame, std::uint64_t) {
    if (closed_) {
        return;
    }
    if (frame.is_error()) {
        ++stats_.drop_error_frame_to_peer;
        return;
    }
    const std::size_t size = cannelloni::encoded_size(frame);
    if (room_towards_peer_bytes() < size) {
        ++stats_.drop_output_full;
        return;
    }
    if (out_start_ == out_.size()) {
        out_.clear();
        out_start_ = 0;
    } else if (out_start_ > output_capacity / 2) {
        out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_start_));
        out_start_ = 0;
    }
    const std::size_t at = out_.size();
    out_.resize(at + size);
    if (cannelloni::encode_frame(frame, std::span<std::uint8_t>(out_.data() + at, size)) != size) {
        out_.resize(at);  // an invalid frame never reaches a peer (the Router checked it already)
        ++stats_.drop_output_full;
        return;
    }
    ++stats_.frames_sent;
}

std::size_t CannelloniTcpLink::read_budget() const {
    if (closed_) {
        return 0;
    }
    // 5 bytes = the smallest frame: reading no more than that per free slot never overflows
    // the bus queue, so a slow bus pushes back on the sender through TCP.
    return bus_queue_free() * cannelloni::frame_header_size + (agreed_ ? 0 : cannelloni::handshake.size());
}

void CannelloniTcpLink::receive(std::span<const std::uint8_t> bytes, std::uint64_t now) {
    if (closed_) {
        return;
    }
    if (!bytes.empty()) {
        last_rx_us_ = now;
    }
    stats_.bytes_in += bytes.size();
    // Every round consumes at least one byte, so the input's size bounds the rounds.
    const std::size_t most_rounds = bytes.size();
    for (std::size_t round = 0; round < most_rounds && !bytes.empty(); ++round) {
        Frame frame;
        const cannelloni::StreamResult r = decoder_.decode(bytes, frame);
        bytes = bytes.subspan(r.consumed);
        switch (r.status) {
        case cannelloni::StreamStatus::handshake_done:
            agreed_ = true;
            log_agreed_ = true;
            break;
        case cannelloni::StreamStatus::frame:
            to_bus(frame);
            break;
        case cannelloni::StreamStatus::error:
            closed_ = true;
            log_error_ = true;
            return;
        case cannelloni::StreamStatus::need_more:
            return;
        }
    }
}

std::span<const std::uint8_t> CannelloniTcpLink::output() const {
    return std::span<const std::uint8_t>(out_.data() + out_start_, out_.size() - out_start_);
}

void CannelloniTcpLink::consume_output(std::size_t n) {
    out_start_ += std::min(n, out_.size() - out_start_);
    if (out_start_ == out_.size()) {
        out_.clear();
        out_start_ = 0;
    }
}

void CannelloniTcpLink::tick(std::uint64_t now) {
    if (!agreed_ && !closed_ && options_.handshake_timeout_us != 0 && now - started_us_ >= options_.handshake_timeout_us) {
        closed_ = true;
        log_timeout_ = true;
    }
}

std::uint64_t CannelloniTcpLink::next_deadline() const {
    if (agreed_ || closed_ || options_.handshake_timeout_us == 0) {
        return no_deadline;
    }
    return started_us_ + options_.handshake_timeout_us;
}

void CannelloniTcpLink::close(CloseReason reason, std::string_view, std::uint64_t) {
    if (closed_) {
        return;
    }
    closed_ = true;
    log_closed_ = reason != CloseReason::normal;
}

void CannelloniTcpLink::transport_closed(std::uint64_t) {
    if (!closed_) {
        closed_ = true;
        log_eof_ = true;
    }
}

void CannelloniTcpLink::log_events(std::uint64_t now) {
    const char* peer = name().c_str();
    if (log_agreed_) {
        log_agreed_ = false;
        if (limiter_.allow(name() + " version", now)) {
            LOG_INFO("%s: cannelloni handshake done (TCP)", peer);
        }
    }
    if (log_refused_) {
        log_refused_ = false;
        if (limiter_.allow("cannelloni refused", now)) {
            LOG_WARNING("%s: refused: %s", peer, options_.refuse_because.c_str());
        }
    }
    if (log_error_) {
        log_error_ = false;
        if (limiter_.allow(name() + " protocol-error", now)) {
            LOG_WARNING("%s: cannelloni protocol error: %s at byte %llu of the stream; closing", peer,
                        cannelloni::describe(decoder_.error()), ull(decoder_.error_offset()));
        }
    }
    if (log_timeout_) {
        log_timeout_ = false;
        if (limiter_.allow(name() + " closed", now)) {
            LOG_WARNING("%s: no cannelloni handshake (\"CANNELLONIv1\") within %.1f s; closing", peer,
                        static_cast<double>(options_.handshake_timeout_us) / 1e6);
        }
    }
    if (log_eof_) {
        log_eof_ = false;
        if (limiter_.allow(name() + " closed", now)) {
            LOG_INFO("%s: disconnected", peer);
        }
    }
    if (log_closed_) {
        log_closed_ = false;
        if (limiter_.allow(name() + " closed", now)) {
            LOG_INFO("%s: closing", peer);
        }
    }
}

// ---- UDP -----------------------------------------------------------------------------

namespace {

class UdpTransport final : public Transport {
public:
    UdpTransport(int fd, std::shared_ptr<UdpPeer> peer) : fd_(fd), peer_(std::move(peer)) {}

    int fd() const override { return fd_; }

    IoResult read(std::span<std::uint8_t> into) override {
        // Bounded: datagrams from strangers are skipped, but never more than this many per call.
        for (int skipped = 0; skipped < 64; ++skipped) {
            sockaddr_storage from{};
            socklen_t from_length = sizeof from;
            const ssize_t n =
                recvfrom(fd_, into.data(), into.size(), MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &from_length);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    return {IoStatus::would_block, 0};
                }
                if (errno == ECONNREFUSED) {
                    // A connected socket learns of an ICMP port unreachable here: the peer is not
                    // up (yet). UDP carries on; packets sent meanwhile are lost.
                    ++peer_->send_errors;
                    continue;
                }
                error_ = std::string("recvfrom: ") + std::strerror(errno);
                return {IoStatus::error, 0};
            }
            if (static_cast<std::size_t>(n) > into.size()) {
                ++peer_->oversized_packets;
                continue;
            }
            if (!peer_->connected && !accept_sender(from, from_length)) {
                continue;
            }
            return {IoStatus::ok, static_cast<std::size_t>(n)};
        }
        return {IoStatus::would_block, 0};
    }

    IoResult write(std::span<const std::uint8_t> bytes) override {
        ssize_t n;
        if (peer_->connected) {
            n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        } else if (peer_->known) {
            n = sendto(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&peer_->address),
                       peer_->address_length);
        } else {
            return {IoStatus::ok, bytes.size()};  // the link counts frames with no peer to go to
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return {IoStatus::would_block, 0};
            }
            // A datagram lost (peer not up, no route): UDP carries on, counted.
            ++peer_->send_errors;
            return {IoStatus::ok, bytes.size()};
        }
        return {IoStatus::ok, bytes.size()};
    }

    std::uint32_t wanted_events(bool app_has_output) const override {
        return EPOLLIN | (app_has_output ? EPOLLOUT : 0u);
    }
    const std::string& identity() const override { return identity_; }
    const std::string& last_error() const override { return error_; }

private:
    // The peer-address check (cannelloni's, by address only): the first sender becomes the
    // peer unless one was fixed; the peer's latest source port is where packets go.
    bool accept_sender(const sockaddr_storage& from, socklen_t from_length) {
        UdpPeer& p = *peer_;
        if (p.address_fixed || p.known) {
            if (!same_host(from, p.address)) {
                ++p.foreign_packets;
                p.foreign_event = true;
                return false;
            }
            if (!p.port_fixed) {
                p.address = from;
                p.address_length = from_length;
            }
            p.known = true;
            return true;
        }
        p.address = from;
        p.address_length = from_length;
        p.known = true;
        p.adopted_event = true;
        return true;
    }

    int fd_;
    std::shared_ptr<UdpPeer> peer_;
    std::string identity_;
    std::string error_;
};

}  // namespace

std::unique_ptr<Transport> make_udp_transport(int fd, std::shared_ptr<UdpPeer> peer) {
    return std::make_unique<UdpTransport>(fd, std::move(peer));
}

CannelloniUdpLink::CannelloniUdpLink(std::string name, const CannelloniOptions& options, std::shared_ptr<UdpPeer> peer,
                                     LogLimiter& limiter, std::uint64_t now)
    : CannelloniLinkBase(std::move(name), options, limiter, now),
      peer_(std::move(peer)),
      packer_(options.mtu > options.ip_udp_overhead ? options.mtu - options.ip_udp_overhead : 0,
              options.flush_timeout_us) {}

std::size_t CannelloniUdpLink::room_towards_peer_bytes() const {
    const std::size_t packets_free = max_packets_waiting - std::min(packets_.size(), max_packets_waiting);
    return packets_free * packer_.payload_limit();
}

void CannelloniUdpLink::offer(const Frame& frame, std::uint64_t now) {
    if (closed_) {
        return;
    }
    if (frame.is_error()) {
        ++stats_.drop_error_frame_to_peer;
        return;
    }
    if (!peer_->known) {
        ++stats_.drop_no_peer;
        return;
    }
    if (!packer_.fits(frame)) {
        finish_packet();
    }
    if (!packer_.add(frame, now)) {
        ++stats_.drop_output_full;  // an invalid frame; the Router checked it already
        return;
    }
    if (packer_.full()) {
        finish_packet();
    }
}

void CannelloniUdpLink::finish_packet() {
    const std::uint16_t frames = packer_.count();
    const auto bytes = packer_.finish();
    if (packets_.size() >= max_packets_waiting) {
        // The socket does not keep up: this packet is lost, and its sequence number with it,
        // so the peer sees the gap too.
        stats_.drop_output_full += frames;
        return;
    }
    packets_.push_back({std::vector<std::uint8_t>(bytes.begin(), bytes.end()), frames});
}

std::size_t CannelloniUdpLink::read_budget() const {
    // A 1,500-byte packet holds at most (1,472 − 5) / 5 = 293 frames; read only with room for
    // them (a bigger datagram from a larger MTU may still overflow the queue: counted).
    if (closed_ || bus_queue_free() < 300) {
        return 0;
    }
    return 65536;
}

void CannelloniUdpLink::receive(std::span<const std::uint8_t> bytes, std::uint64_t now) {
    if (closed_) {
        return;
    }
    last_rx_us_ = now;
    stats_.bytes_in += bytes.size();
    const cannelloni::PacketCheck c = cannelloni::check_packet(bytes);
    if (c.error != cannelloni::Error::none) {
        ++stats_.bad_packets;
        stats_.frames_in_bad_packets += c.count;
        last_bad_ = c.error;
        last_bad_offset_ = c.error_offset;
        return;
    }
    ++stats_.packets_received;
    sequence_.arrived(c.seq);
    cannelloni::PacketReader reader(bytes);
    Frame frame;
    for (std::uint32_t i = 0; i < c.count && reader.next(frame); ++i) {
        to_bus(frame);
    }
}

std::span<const std::uint8_t> CannelloniUdpLink::output() const {
    if (packets_.empty()) {
        return {};
    }
    return packets_.front().bytes;
}

void CannelloniUdpLink::consume_output(std::size_t) {
    // A datagram goes whole or not at all.
    if (packets_.empty()) {
        return;
    }
    stats_.frames_sent += packets_.front().frames;
    ++stats_.packets_sent;
    packets_.pop_front();
}

void CannelloniUdpLink::tick(std::uint64_t now) {
    if (!closed_ && packer_.due(now)) {
        finish_packet();
    }
}

std::uint64_t CannelloniUdpLink::next_deadline() const {
    return closed_ || packer_.empty() ? no_deadline : packer_.deadline();
}

void CannelloniUdpLink::close(CloseReason, std::string_view, std::uint64_t) {
    if (!closed_ && !packer_.empty()) {
        finish_packet();  // frames already taken go out with the last packet
    }
    closed_ = true;
}

void CannelloniUdpLink::transport_closed(std::uint64_t) { closed_ = true; }

void CannelloniUdpLink::log_events(std::uint64_t now) {
    const char* link = name().c_str();
    UdpPeer& p = *peer_;
    if (p.adopted_event) {
        p.adopted_event = false;
        LOG_INFO("%s: cannelloni peer is %s (the first sender)", link, describe_address(p.address).c_str());
    }
    if (p.foreign_event && p.foreign_packets != foreign_logged_ && limiter_.allow(name() + " foreign", now)) {
        p.foreign_event = false;
        LOG_WARNING("%s: %llu packets from addresses other than the cannelloni peer %s dropped so far", link,
                    ull(p.foreign_packets), p.known ? describe_address(p.address).c_str() : "(fixed)");
        foreign_logged_ = p.foreign_packets;
    }
    if (stats_.bad_packets != bad_logged_ && limiter_.allow(name() + " protocol-error", now)) {
        LOG_WARNING("%s: cannelloni packet refused: %s at byte %zu (%llu refused so far)", link,
                    cannelloni::describe(last_bad_), last_bad_offset_, ull(stats_.bad_packets));
        bad_logged_ = stats_.bad_packets;
    }
    if (p.send_errors + p.oversized_packets != trouble_logged_ && limiter_.allow(name() + " lost", now)) {
        LOG_WARNING("%s: %llu packets the socket could not deliver (peer not listening?) and %llu too large to read, "
                    "so far",
                    link, ull(p.send_errors), ull(p.oversized_packets));
        trouble_logged_ = p.send_errors + p.oversized_packets;
    }
    if (sequence_.gaps() != gaps_logged_ && limiter_.allow(name() + " seq-gap", now)) {
        LOG_WARNING("%s: cannelloni sequence gaps: %llu packets lost so far", link, ull(sequence_.lost()));
        gaps_logged_ = sequence_.gaps();
    }
    if (closed_ && !summary_logged_) {
        // UDP has no connection to count by: the one link's totals, once, when it ends.
        summary_logged_ = true;
        LOG_INFO("%s: packets sent=%llu received=%llu refused=%llu from_other_addresses=%llu lost=%llu "
                 "out_of_order=%llu undeliverable=%llu too_large=%llu",
                 link, ull(stats_.packets_sent), ull(stats_.packets_received), ull(stats_.bad_packets),
                 ull(p.foreign_packets), ull(sequence_.lost()), ull(sequence_.out_of_order()), ull(p.send_errors),
                 ull(p.oversized_packets));
    }
}

}  // namespace tcpcan::linux_port
