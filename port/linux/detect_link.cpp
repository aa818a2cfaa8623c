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
      last_rx_us_(now) {}

void DetectLink::become_tcpcan(std::uint64_t now) {
    detected_ = FirstBytes::tcpcan;
    tcpcan_ = std::make_unique<TcpcanLink>(name(), options_.tcpcan, subscription_, limiter_, now);
}

void DetectLink::become_canip(CanipOptions::Start start, std::uint64_t now) {
    detected_ = start == CanipOptions::Start::hello ? FirstBytes::canip_hello : FirstBytes::canip_legacy;
    CanipOptions o = options_.canip;
    o.start = start;
    canip_ = std::make_unique<CanipLink>(name(), o, limiter_, now);
    log_detected_ = true;
}

void DetectLink::decide(std::uint64_t now) {
    const FirstBytes kind = classify_first_bytes(std::span<const std::uint8_t>(first_.data(), first_size_));
    switch (kind) {
    case FirstBytes::need_more: return;
    case FirstBytes::tcpcan:
        if (!is_client()) {
            become_tcpcan(now);
            return;
        }
        break;  // a tcpcan server never speaks first
    case FirstBytes::canip_hello: become_canip(CanipOptions::Start::hello, now); return;
    case FirstBytes::canip_legacy: become_canip(CanipOptions::Start::legacy, now); return;
    case FirstBytes::unknown: break;
    }
    detected_ = FirstBytes::unknown;
    closed_ = true;
    log_detected_ = true;
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
    if (Link* link = inner()) {
        link->receive(bytes, now);
        return;
    }
    if (closed_) {
        return;
    }
    last_rx_us_ = now;
    const std::size_t take = std::min(bytes.size(), first_.size() - first_size_);
    std::copy_n(bytes.begin(), take, first_.begin() + static_cast<std::ptrdiff_t>(first_size_));
    first_size_ += take;
    decide(now);
    if (Link* link = inner()) {
        link->receive(std::span<const std::uint8_t>(first_.data(), first_size_), now);
        link->receive(bytes.subspan(take), now);
    }
}

void DetectLink::tick(std::uint64_t now) {
    if (Link* link = inner()) {
        link->tick(now);
        return;
    }
    if (closed_) {
        return;
    }
    if (is_client() && first_size_ == 0 && now >= started_us_ + options_.greeting_wait_us) {
        become_tcpcan(now);  // no greeting: a tcpcan server, waiting for our proposal
        return;
    }
    if (now >= started_us_ + options_.silent_client_us) {
        if (first_size_ == 0) {
            log_silent_ = true;
            become_canip(CanipOptions::Start::legacy, now);
        } else {
            detected_ = FirstBytes::need_more;
            closed_ = true;
            log_detected_ = true;
        }
    }
}

std::uint64_t DetectLink::next_deadline() const {
    if (const Link* link = inner()) {
        return link->next_deadline();
    }
    if (closed_) {
        return ~std::uint64_t{0};
    }
    if (is_client() && first_size_ == 0) {
        return started_us_ + options_.greeting_wait_us;
    }
    return started_us_ + options_.silent_client_us;
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
    if (const Link* link = inner()) {
        return link->read_budget();
    }
    // Undecided: only the bytes that decide, so nothing more needs holding here.
    return closed_ ? 0 : first_.size() - first_size_;
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
        } else if (log_silent_) {
            log_silent_ = false;
            LOG_INFO("%s: silent for %.1f s: taken for a canip 4.0 client", peer,
                     static_cast<double>(options_.silent_client_us) / 1e6);
        } else if (canip_) {
            LOG_INFO("%s: speaks canip_peer's protocol (%s)", peer, describe(detected_));
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
            const char* why = detected_ == FirstBytes::need_more ? "too few bytes within the wait to tell the dialect"
                              : is_client() ? "the server spoke first with bytes that are no canip greeting"
                                            : describe(detected_);
            LOG_WARNING("%s: %s (first bytes: %s); closing", peer, why, hex.c_str());
        }
    }
    if (Link* link = inner()) {
        link->log_events(now);
    }
}

}  // namespace tcpcan::linux_port
