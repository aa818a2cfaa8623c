#include "detect_link.hpp"

#include <algorithm>

namespace tcpcan::linux_port {

DetectLink::DetectLink(std::string name, const DetectOptions& options, const FilterSetBase& subscription,
                       LogLimiter& limiter, std::uint64_t now)
    : Link(std::move(name)),
      options_(options),
      subscription_(subscription),
      limiter_(limiter),
      started_us_(now),
      last_rx_us_(now) {
    if (!is_client()) {
        become_tcpcan(now);  // silent until the client speaks; judges silence and garbage
        detected_ = FirstBytes::need_more;
    }
}

void DetectLink::become_tcpcan(std::uint64_t now) {
    detected_ = FirstBytes::tcpcan;
    tcpcan_ = std::make_unique<TcpcanLink>(name(), options_.tcpcan, subscription_, limiter_, now);
    tcpcan_->tie_to_bus(options_.canip.bus);
    tcpcan_->serve_buses(options_.buses);
}

void DetectLink::become_canip(CanipOptions::Start start, std::uint64_t now) {
    detected_ = start == CanipOptions::Start::hello ? FirstBytes::canip_hello : FirstBytes::canip_legacy;
    undecided_ = false;
    tcpcan_.reset();  // a server's pending session: it has neither sent nor received anything
    CanipOptions o = options_.canip;
    o.start = start;
    canip_ = std::make_unique<CanipLink>(name(), o, limiter_, now);
    log_detected_ = true;
}

void DetectLink::decide(std::uint64_t now) {
    const FirstBytes kind = classify_first_bytes(std::span<const std::uint8_t>(first_.data(), first_size_));
    switch (kind) {
    case FirstBytes::need_more: return;
    case FirstBytes::canip_hello: become_canip(CanipOptions::Start::hello, now); return;
    case FirstBytes::canip_legacy: become_canip(CanipOptions::Start::legacy, now); return;
    case FirstBytes::tcpcan:
    case FirstBytes::unknown: break;
    }
    detected_ = kind;
    undecided_ = false;
    if (is_client()) {
        closed_ = true;  // a tcpcan server never speaks first
        log_detected_ = true;
    }
    // Server: the tcpcan session reads these bytes (and names what is wrong with them).
}

void DetectLink::receive(std::span<const std::uint8_t> bytes, std::uint64_t now) {
    if (bytes.empty()) {
        return;
    }
    if (tcpcan_ && is_client() && proposal_sent_ && tcpcan_->stats().bytes_in == 0 && bytes[0] == 'C') {
        // A canip_peer server greeted after our proposal: it took the proposal for the start
        // of our hello line. No frame has flowed yet, so the tcpcan link goes unnoticed.
        tcpcan_.reset();
        become_canip(CanipOptions::Start::after_late_hello, now);
        log_late_ = true;
    }
    if (!undecided_) {
        if (Link* link = inner()) {
            link->receive(bytes, now);
        }
        return;
    }
    if (closed()) {
        return;
    }
    last_rx_us_ = now;
    const std::size_t take = std::min(bytes.size(), first_.size() - first_size_);
    std::copy_n(bytes.begin(), take, first_.begin() + static_cast<std::ptrdiff_t>(first_size_));
    first_size_ += take;
    decide(now);
    if (undecided_) {
        return;
    }
    if (Link* link = inner()) {
        link->receive(std::span<const std::uint8_t>(first_.data(), first_size_), now);
        link->receive(bytes.subspan(take), now);
    }
}

void DetectLink::tick(std::uint64_t now) {
    if (Link* link = inner()) {
        link->tick(now);  // a server's tcpcan session times the negotiation from the connection
        return;
    }
    if (closed_) {
        return;
    }
    if (first_size_ == 0 && now >= started_us_ + options_.greeting_wait_us) {
        undecided_ = false;
        become_tcpcan(now);  // no greeting: a tcpcan server, waiting for our proposal
        return;
    }
    if (now >= started_us_ + options_.decide_within_us) {
        closed_ = true;  // a greeting begun and not recognisable in time
        log_detected_ = true;
    }
}

std::uint64_t DetectLink::next_deadline() const {
    if (const Link* link = inner()) {
        return link->next_deadline();
    }
    if (closed_) {
        return ~std::uint64_t{0};
    }
    return started_us_ + (first_size_ == 0 ? options_.greeting_wait_us : options_.decide_within_us);
}

void DetectLink::offer(const Frame& frame, std::uint64_t now) {
    if (Link* link = inner()) {
        link->offer(frame, now);
    }
}

const Frame* DetectLink::peek_for_bus(std::uint64_t now, std::uint64_t wall_clock_us) {
    Link* link = inner();
    return link ? link->peek_for_bus(now, wall_clock_us) : nullptr;
}

void DetectLink::pop_for_bus() {
    if (Link* link = inner()) {
        link->pop_for_bus();
    }
}

std::size_t DetectLink::read_budget() const {
    if (closed()) {
        return 0;
    }
    // Undecided: only the bytes that decide, so nothing more needs holding here.
    if (undecided_) {
        return first_.size() - first_size_;
    }
    const Link* link = inner();
    return link ? link->read_budget() : 0;
}

std::span<const std::uint8_t> DetectLink::output() const {
    const Link* link = inner();
    return link ? link->output() : std::span<const std::uint8_t>{};
}

void DetectLink::consume_output(std::size_t n) {
    if (Link* link = inner()) {
        proposal_sent_ = proposal_sent_ || (tcpcan_ && n > 0);
        link->consume_output(n);
    }
}

void DetectLink::close(CloseReason reason, std::string_view text, std::uint64_t now) {
    if (Link* link = inner()) {
        link->close(reason, text, now);
        return;
    }
    closed_ = true;
}

void DetectLink::transport_closed(std::uint64_t now) {
    if (Link* link = inner()) {
        link->transport_closed(now);
        return;
    }
    closed_ = true;
}

void DetectLink::discard() {
    if (Link* link = inner()) {
        link->discard();
    }
}

void DetectLink::add_totals(LinkTotals& totals) const {
    if (const Link* link = inner()) {
        link->add_totals(totals);
    }
}

std::string DetectLink::describe_drops() const {
    const Link* link = inner();
    return link ? link->describe_drops() : std::string("0 frames dropped so far");
}

void DetectLink::log_events(std::uint64_t now) {
    const char* peer = name().c_str();
    if (log_detected_ && limiter_.allow(name() + " detect", now)) {
        log_detected_ = false;
        if (log_late_) {
            log_late_ = false;
            LOG_WARNING("%s: a canip_peer server greeted after our tcpcan proposal (more than %.0f ms after "
                        "connecting): running canip 4.0 framing, without SEQ or TS (--dialect canip keeps them)",
                        peer, static_cast<double>(options_.greeting_wait_us) / 1000.0);
        } else if (canip_) {
            LOG_INFO("%s: speaks canip_peer's protocol: %s", peer, describe(detected_));
        } else {
            std::string hex;
            for (std::size_t i = 0; i < first_size_; ++i) {
                char byte[4];
                std::snprintf(byte, sizeof byte, "%02x ", first_[i]);
                hex += byte;
            }
            if (!hex.empty()) {
                hex.pop_back();
            }
            const char* why = detected_ == FirstBytes::need_more
                                  ? "the server's first bytes were not recognisable in time"
                                  : "the server spoke first with bytes that are no canip greeting (a tcpcan server waits "
                                    "for our proposal)";
            LOG_WARNING("%s: %s (first bytes: %s); closing", peer, why, hex.c_str());
        }
    }
    if (Link* link = inner()) {
        link->log_events(now);
    }
}

}  // namespace tcpcan::linux_port
