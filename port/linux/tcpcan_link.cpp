#include "tcpcan_link.hpp"

#include <string>

#include <tcpcan/encoder.hpp>

namespace tcpcan::linux_port {

namespace {

std::string feature_names(std::uint32_t features) {
    std::string s;
    if (features & feature::sequence) {
        s += "seq";
    }
    if (features & feature::timestamps) {
        s += s.empty() ? "ts" : ",ts";
    }
    if (features & feature::bus) {
        s += s.empty() ? "bus" : ",bus";
    }
    if (features & feature::resume) {
        s += s.empty() ? "resume" : ",resume";
    }
    return s.empty() ? "none" : s;
}

const char* event_key(EventType type) {
    switch (type) {
    case EventType::version_agreed: return "version";
    case EventType::features_agreed: return "features";
    case EventType::subscription_set: return "subscription";
    case EventType::sequence_gap: return "seq-gap";
    case EventType::sequence_duplicate: return "seq-duplicate";
    case EventType::sequence_reordered: return "seq-late";
    case EventType::rtt_measured: return "rtt";
    case EventType::peer_dead: return "dead";
    case EventType::protocol_error: return "protocol-error";
    case EventType::closed: return "closed";
    case EventType::bus_requested: return "bus-requested";
    case EventType::bus_chosen: return "bus";
    case EventType::suspended: return "suspended";
    case EventType::resume_requested: return "resume-requested";
    case EventType::resumed: return "resumed";
    case EventType::resume_refused: return "resume-refused";
    case EventType::resume_failed: return "resume-failed";
    }
    return "event";
}

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

TcpcanLink::TcpcanLink(std::string name, const SessionOptions& options, const FilterSetBase& subscription,
                       LogLimiter& limiter, std::uint64_t now)
    : Link(std::move(name)),
      pending_(std::make_unique<PendingSession>(options, now)),
      limiter_(limiter),
      options_(options),
      last_rx_us_(now) {
    if (options.role == Role::client && !subscription.empty()) {
        FilterSet<64> entries;
        for (const FilterEntry& e : subscription.entries()) {
            if (!entries.add(e)) {
                break;
            }
        }
        subscribing_ = true;
        if (entries.size() < subscription.size() || !pending_->set_local_subscription(entries)) {
            LOG_WARNING("%s: subscription has more entries than a session holds; sending the first %zu",
                        this->name().c_str(), entries.size());
            (void)pending_->set_local_subscription(entries);
        }
    }
}

TcpcanLink::~TcpcanLink() = default;

// A session kept for a resume takes frames while its transport is away (they wait in the
// replay buffer), so the Router keeps offering them.
bool TcpcanLink::ready() const {
    if (!full_) {
        return false;
    }
    // A server's session is not routed before the client said whether it resumes another.
    const ResumePhase phase = full_->resume_phase();
    if (phase == ResumePhase::awaiting_request || phase == ResumePhase::request_pending) {
        return false;
    }
    return full_->state() == SessionState::established || full_->is_resumable();
}

void TcpcanLink::set_resume(const ResumeOptions& options) {
    visit([&](auto& s) { s.set_resume_options(options); });
}

bool TcpcanLink::agreed() const { return ready() && !full_->bus_pending(); }

bool TcpcanLink::request_bus(std::string_view name) {
    if (!visit([&](auto& s) { return s.request_bus(name); })) {
        return false;
    }
    remote_bus_ = std::string(name);
    return true;
}

void TcpcanLink::answer_bus_request(std::uint64_t now) {
    visit([&](auto& s) {
        const std::string_view wanted = s.requested_bus();
        if (options_.role != Role::server || s.is_closed() || !s.bus_pending() || wanted.empty()) {
            return;
        }
        std::size_t index = 0;
        if (buses_ != nullptr && buses_->find(wanted, index)) {
            bus_ = index;
            s.accept_bus();
            return;
        }
        std::string served;
        for (const std::string& bus : buses_ != nullptr ? buses_->names : std::vector<std::string>{}) {
            served += (served.empty() ? "" : " ") + bus;
        }
        const std::string text = "unknown bus '" + std::string(wanted) + "' (buses: " + served + ")";
        LOG_WARNING("%s: asked for bus '%s', which this server does not serve (buses: %s); closing", name().c_str(),
                    escape_text(wanted).c_str(), escape_text(served).c_str());
        s.close(CloseReason::unsupported, text, now);
    });
}

void TcpcanLink::offer(const Frame& frame, std::uint64_t now) {
    visit([&](auto& s) { (void)s.send_frame(frame, now); });  // every outcome is counted by the session
}

bool TcpcanLink::has_room(std::size_t frames) const {
    return visit([&](const auto& s) { return s.has_room_for(frames, max_frame_message_size); });
}

const Frame* TcpcanLink::peek_for_bus(std::uint64_t now, std::uint64_t wall_clock_us) {
    return visit([&](auto& s) { return s.peek_bus_frame(now, wall_clock_us); });
}

void TcpcanLink::pop_for_bus() {
    visit([](auto& s) { s.pop_bus_frame(); });
}

std::size_t TcpcanLink::read_budget() const {
    // 8 bytes = the smallest frame message: reading no more than that per free slot never
    // overflows the bus queue, so a slow bus pushes back on the sender through TCP.
    return visit([](const auto& s) {
        return s.is_closed() || s.is_suspended() || s.requested_resume_token() != 0 ? std::size_t{0} : s.bus_queue_free() * 8;
    });
}

void TcpcanLink::receive(std::span<const std::uint8_t> bytes, std::uint64_t now) {
    if (!bytes.empty()) {
        last_rx_us_ = now;
    }
    // A protocol error closes the session.
    const std::size_t used = visit([&](auto& s) { return s.receive(bytes, now).consumed; });
    grow_when_established();
    answer_bus_request(now);
    if (!full_ || full_->requested_resume_token() == 0) {
        return;
    }
    // The client presented a token: a suspended session with it takes this connection over
    // (the rest of the bytes are its), or this session starts afresh.
    const std::uint64_t token = full_->requested_resume_token();
    TcpcanLink* parked = resume_lookup_ ? resume_lookup_(token, *this) : nullptr;
    const auto rest = bytes.subspan(used);
    if (parked != nullptr && parked->full_ && parked->full_->adopt(*full_, now)) {
        adopted_by_ = parked;
        LOG_INFO("%s: session resumed on a new connection from %s", parked->name().c_str(), name().c_str());
        parked->receive(rest, now);
        return;
    }
    full_->refuse_resume(now);
    receive(rest, now);
}

void TcpcanLink::grow_when_established() {
    if (pending_ && pending_->state() == SessionState::established) {
        full_ = std::make_unique<FullSession>(*pending_);
        pending_.reset();
    }
}

std::span<const std::uint8_t> TcpcanLink::output() const {
    return visit([](const auto& s) { return s.output(); });
}

void TcpcanLink::consume_output(std::size_t n) {
    visit([&](auto& s) { s.consume_output(n); });
}

void TcpcanLink::tick(std::uint64_t now) {
    visit([&](auto& s) { s.tick(now); });
}

std::uint64_t TcpcanLink::next_deadline() const {
    return visit([](const auto& s) { return s.next_deadline(); });
}

void TcpcanLink::close(CloseReason reason, std::string_view text, std::uint64_t now) {
    visit([&](auto& s) {
        if (!s.is_closed()) {
            s.close(reason, text, now);
        }
    });
}

void TcpcanLink::transport_closed(std::uint64_t now) {
    visit([&](auto& s) { s.transport_closed(now); });
}

bool TcpcanLink::closed() const {
    return adopted_by_ != nullptr || visit([](const auto& s) { return s.is_closed() || s.is_suspended(); });
}

bool TcpcanLink::suspended() const { return full_ && full_->is_suspended(); }

std::uint64_t TcpcanLink::resume_token() const { return full_ ? full_->resume_token() : 0; }

void TcpcanLink::reconnect(std::uint64_t now) {
    if (full_) {
        full_->reconnect(now);
        last_rx_us_ = now;
    }
}

std::uint64_t TcpcanLink::abandon(std::uint64_t now) { return full_ ? full_->abandon(now) : 0; }

void TcpcanLink::discard() {
    visit([](auto& s) { s.discard_bus_queue(); });
}

bool TcpcanLink::hung_up_on_proposal() const {
    return options_.role == Role::client && !full_ && pending_->version() == 0 && options_.max_version > 1 &&
           pending_->stats().bytes_in == 0;
}

bool TcpcanLink::retry_with_version_1() const {
    return visit([](const auto& s) { return s.retry_with_version_1(); });
}

std::uint32_t TcpcanLink::version() const {
    return visit([](const auto& s) { return s.version(); });
}

const SessionStats& TcpcanLink::stats() const {
    return visit([](const auto& s) -> const SessionStats& { return s.stats(); });
}

void TcpcanLink::add_totals(LinkTotals& t) const {
    const SessionStats& s = stats();
    t.sent += s.frames_written;
    t.received += s.frames_from_peer;
    t.dropped += s.dropped_towards_peer() + s.dropped_towards_bus();
    t.lost += s.sequence.lost + s.drop_replay_full;
    t.duplicates += s.sequence.duplicates;
    t.gaps += s.sequence.gaps;
    t.filtered += s.filtered_out;
    t.rtt_us = s.rtt_last_us != 0 ? s.rtt_last_us : t.rtt_us;
    t.output_full += s.drop_output_full;
    t.bus_queue_full += s.drop_bus_queue_full;
    t.expired += s.drop_expired + s.drop_replay_expired;
    t.resumed += s.resumed;
    t.replayed += s.frames_replayed;
    t.undeliverable += s.undeliverable;
    t.refused_read_only += s.drop_refused;
    t.unsent_at_close += s.drop_unsent_at_close + s.drop_unsent_bus_queue;
}

std::uint64_t TcpcanLink::drops() const {
    const SessionStats& s = stats();
    return s.dropped_towards_peer() + s.dropped_towards_bus();
}

std::string TcpcanLink::describe_drops() const {
    const SessionStats& s = stats();
    char text[256];
    std::snprintf(text, sizeof text,
                  "%llu frames dropped so far (towards peer: output full %llu; towards bus: expired %llu, "
                  "read-only %llu, queue full %llu)",
                  ull(drops()), ull(s.drop_output_full), ull(s.drop_expired), ull(s.drop_refused),
                  ull(s.drop_bus_queue_full));
    return text;
}

void TcpcanLink::log_events(std::uint64_t now) {
    const char* peer = name().c_str();
    visit([&](auto& s) {
        if (features_deferred_ && s.resume_phase() != ResumePhase::awaiting_answer) {
            features_deferred_ = false;
            LOG_INFO("%s: features agreed: %s", peer, feature_names(deferred_features_).c_str());
        }
        Event e;
        while (s.poll_event(e)) {
            if (!limiter_.allow(name() + " " + event_key(e.type), now)) {
                continue;
            }
            switch (e.type) {
            case EventType::version_agreed:
                LOG_INFO("%s: version %u agreed%s", peer, e.value, e.value == 1 ? " (plain tcpcan)" : "");
                if (e.value == 1 && options_.max_version > 1 && options_.role == Role::client) {
                    LOG_WARNING("%s: running version 1: no heartbeat, sequence numbers, timestamps, subscriptions or "
                                "close reasons (--min-protocol-version 2 refuses this)",
                                peer);
                }
                break;
            case EventType::features_agreed:
                if (s.version() >= 2 && options_.role == Role::client && s.resume_phase() == ResumePhase::awaiting_answer) {
                    // Said once the server answered the resume request ('t' or 'a'): only then
                    // does the server route this session, so "features agreed" means frames
                    // flow both ways (tests and scripts wait for this line).
                    deferred_features_ = e.value;
                    features_deferred_ = true;
                } else if (s.version() >= 2) {
                    LOG_INFO("%s: features agreed: %s", peer, feature_names(e.value).c_str());
                }
                if (!remote_bus_.empty() && (e.value & feature::bus) == 0) {
                    LOG_WARNING("%s: the server does not serve buses by name (no bus request in its features, or "
                                "version 1); --remote-bus %s needs a server with several buses",
                                peer, remote_bus_.c_str());
                }
                if (s.version() == 1 && subscribing_) {
                    LOG_WARNING("%s: version 1 cannot subscribe; filtering received frames here instead", peer);
                }
                break;
            case EventType::subscription_set:
                LOG_INFO("%s: subscribed with %u filter entries", peer, e.value);
                break;
            case EventType::sequence_gap:
                LOG_WARNING("%s: SEQ gap: %u frames lost before sequence %u", peer, e.value2, e.value + e.value2);
                break;
            case EventType::sequence_duplicate:
                LOG_WARNING("%s: SEQ duplicate: sequence %u dropped", peer, e.value);
                break;
            case EventType::sequence_reordered:
                LOG_WARNING("%s: SEQ late frame: sequence %u", peer, e.value);
                break;
            case EventType::rtt_measured:
                LOG_DEBUG("%s: round trip %.3f ms", peer, e.value / 1000.0);
                break;
            case EventType::peer_dead:
                LOG_WARNING("%s: dead peer: nothing received for %.1f s", peer, e.value / 1e6);
                break;
            case EventType::protocol_error:
                LOG_WARNING("%s: protocol error: %s at byte %llu of the stream; closing", peer, describe(e.error),
                            ull(e.offset));
                break;
            case EventType::bus_requested:
                LOG_DEBUG("%s: asks for bus '%s'", peer, escape_text(s.requested_bus()).c_str());
                break;
            case EventType::bus_chosen:
                LOG_INFO("%s: on bus '%s'", peer,
                         options_.role == Role::client ? remote_bus_.c_str() : escape_text(s.requested_bus()).c_str());
                break;
            case EventType::suspended:
                LOG_INFO("%s: connection lost; session kept for a resume (%u frames not yet acknowledged)", peer, e.value);
                break;
            case EventType::resume_requested: break;  // answered in receive()
            case EventType::resumed:
                LOG_INFO("%s: session resumed: %u frames sent again (%u not yet acknowledged)", peer, e.value, e.value2);
                break;
            case EventType::resume_refused:
                LOG_WARNING("%s: the client asked to resume a session this server does not know (restarted, or the "
                            "resume window ended); a new session starts, the client counts what it could not deliver",
                            peer);
                break;
            case EventType::resume_failed:
                LOG_WARNING("%s: the server no longer knows this session (restarted, or the resume window ended): %u "
                            "frames sent to it were never acknowledged and are counted as undeliverable",
                            peer, e.value);
                break;
            case EventType::closed: {
                const auto text = s.close_text();
                if (e.by_peer && s.version() >= 2 && !text.empty()) {
                    const std::string safe = escape_text(std::string_view(text.data(), text.size()));
                    LOG_INFO("%s: closed by peer: %s (%s)", peer, describe(e.reason), safe.c_str());
                } else if (e.by_peer) {
                    LOG_INFO("%s: %s", peer,
                             s.version() >= 2 && e.reason != CloseReason::normal ? describe(e.reason) : "disconnected");
                } else {
                    LOG_INFO("%s: closing: %s", peer, describe(e.reason));
                }
                break;
            }
            }
        }
    });
}

}  // namespace tcpcan::linux_port
