#include "socketcand_link.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "clock.hpp"

namespace tcpcan::linux_port {

namespace {

namespace sc = ::tcpcan::socketcand;

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

// The shortest `< send >` a client can write ("<send 1 0>"): reading no more than this per
// free slot of the bus queue never overflows it.
constexpr std::size_t smallest_send = 10;
// A reply is at most this many times the size of the message it answers ("<>" → 25 bytes
// of `< error unknown command >`), so reading free/16 bytes never overflows the output.
constexpr std::size_t reply_ratio = 16;
constexpr std::size_t max_notes = 32;

const char* mode_name(SocketcandLink::Mode mode) {
    switch (mode) {
    case SocketcandLink::Mode::no_bus: return "no bus";
    case SocketcandLink::Mode::bcm: return "bcm";
    case SocketcandLink::Mode::raw: return "raw";
    case SocketcandLink::Mode::control: return "control";
    }
    return "?";
}

}  // namespace

SocketcandLink::SocketcandLink(std::string name, const BusDirectory& buses, const SocketcandOptions& options,
                               LogLimiter& limiter, std::uint64_t now, std::optional<std::size_t> tied_bus)
    : Link(std::move(name)),
      buses_(buses),
      tied_bus_(tied_bus),
      options_(options),
      limiter_(limiter),
      scanner_(std::make_unique<sc::MessageScanner>()),
      out_(std::make_unique<std::array<std::uint8_t, output_capacity>>()),
      to_bus_(std::make_unique<detail::RingQueue<Frame, bus_queue_capacity>>()),
      last_rx_us_(now),
      open_deadline_(options.open_timeout_us != 0 ? now + options.open_timeout_us : 0),
      now_(now) {
    reply("hi", now);
}

SocketcandLink::~SocketcandLink() = default;

bool SocketcandLink::ready() const { return mode_ != Mode::no_bus && !closed_; }

void SocketcandLink::offer(const Frame& frame, std::uint64_t now) {
    now_ = now;
    if (closed_ || mode_ == Mode::no_bus) {
        return;
    }
    ++counters_.frames_from_bus;
    counters_.bytes_from_bus += frame.is_remote() || frame.is_error() ? 0 : frame.len;
    if (mode_ != Mode::raw) {
        ++counters_.not_in_raw_mode;  // the client did not ask for frames: not a drop
        return;
    }
    if (frame.is_remote()) {
        ++counters_.drop_remote;
        return;
    }
    if (frame.is_fd() && !fd_) {
        ++counters_.drop_fd;
        return;
    }
    std::array<char, sc::max_frame_text> text{};
    const std::uint64_t ts = frame.timestamp_us != 0 ? frame.timestamp_us : wall_clock_us();
    const std::size_t n = sc::format_frame(frame, ts, text);
    if (n == 0 || output_free() < n + reply_reserve) {
        ++counters_.drop_output_full;
        return;
    }
    (void)append(std::span<const char>(text.data(), n));
    ++counters_.frames_to_client;
}

bool SocketcandLink::has_room(std::size_t frames) const {
    return closed_ || mode_ != Mode::raw || output_free() >= frames * sc::max_frame_text + reply_reserve;
}

const Frame* SocketcandLink::peek_for_bus(std::uint64_t, std::uint64_t) {
    return to_bus_->empty() ? nullptr : &to_bus_->front();
}

void SocketcandLink::pop_for_bus() { to_bus_->pop(); }

std::size_t SocketcandLink::read_budget() const {
    if (closed_) {
        return 0;
    }
    const std::size_t bus_room = (bus_queue_capacity - to_bus_->size()) * smallest_send;
    return std::min(bus_room, output_free() / reply_ratio);
}

void SocketcandLink::receive(std::span<const std::uint8_t> bytes, std::uint64_t now) {
    now_ = now;
    if (!bytes.empty()) {
        last_rx_us_ = now;
    }
    while (!closed_ && !bytes.empty()) {
        const sc::ScanResult r = scanner_->scan(bytes);
        if (r.status == sc::ScanStatus::error) {
            reply_error(sc::describe(scanner_->error()), now);
            char why[160];
            std::snprintf(why, sizeof why, "%s at byte %llu of the stream", sc::describe(scanner_->error()),
                          ull(scanner_->error_offset()));
            fail(why, now);
            return;
        }
        if (r.status == sc::ScanStatus::message) {
            handle(scanner_->message(), now);
        }
        bytes = bytes.subspan(r.consumed);
    }
}

void SocketcandLink::handle(std::string_view message, std::uint64_t now) {
    const sc::Command c = sc::parse_command(message, sc::ParseOptions{fd_});
    const bool open = mode_ != Mode::no_bus;
    switch (c.kind) {
    case sc::CommandKind::echo:
        reply("echo", now);
        return;
    case sc::CommandKind::open: {
        if (open) {
            reply_error("a bus is already open", now);
            return;
        }
        const std::string wanted(c.text);
        std::size_t index = 0;
        const bool known = buses_.find(wanted, index) || buses_.find_interface(wanted, index);
        if (!known || (tied_bus_ && index != *tied_bus_)) {
            reply_error("could not open bus", now);
            fail("asked for bus '" + escape_text(wanted, 64) + "', which this server does not serve", now);
            return;
        }
        bus_ = index;
        mode_ = Mode::bcm;
        reply_ok(now);
        note(LogLevel::info, "open", "opened bus " + escape_text(wanted, 64));
        return;
    }
    case sc::CommandKind::rawmode:
    case sc::CommandKind::controlmode:
        if (!open) {
            reply_error("open a bus first", now);
            return;
        }
        mode_ = c.kind == sc::CommandKind::rawmode ? Mode::raw : Mode::control;
        if (mode_ == Mode::control && statistics_ms_ != 0) {
            next_stat_at_ = now + std::uint64_t{statistics_ms_} * 1000u;
        }
        reply_ok(now);
        note(LogLevel::debug, "mode", std::string(mode_name(mode_)) + " mode");
        return;
    case sc::CommandKind::fdmode:
        fd_ = true;
        reply_ok(now);
        note(LogLevel::info, "fd", "CAN FD on (< fdmode >)");
        return;
    case sc::CommandKind::bcmmode:
    case sc::CommandKind::bcm_command:
        ++counters_.refused_commands;
        reply_error(open ? "bcm mode is not supported by this server, use rawmode" : "open a bus first", now);
        note(LogLevel::warning, "bcm", "asked for BCM mode, which is not supported");
        return;
    case sc::CommandKind::isotpmode:
    case sc::CommandKind::isotp_command:
        ++counters_.refused_commands;
        reply_error("isotp mode is not supported by this server", now);
        note(LogLevel::warning, "isotp", "asked for ISO-TP mode, which is not supported");
        return;
    case sc::CommandKind::send_remote:
        ++counters_.refused_sends;
        reply_error("remote frames are not supported", now);
        note(LogLevel::warning, "send", "sendrtr refused: remote frames are not carried");
        return;
    case sc::CommandKind::statistics:
        if (mode_ != Mode::control) {
            ++counters_.refused_commands;
            reply_error("statistics needs controlmode", now);
            return;
        }
        statistics_ms_ = c.number == 0 ? 0 : std::max(c.number, options_.min_statistics_ms);
        next_stat_at_ = now + std::uint64_t{statistics_ms_} * 1000u;
        return;
    case sc::CommandKind::send:
        if (!open) {
            ++counters_.refused_sends;
            reply_error("open a bus first", now);
            return;
        }
        if (!to_bus_->push(c.frame)) {
            ++counters_.drop_bus_queue_full;
            return;
        }
        ++counters_.frames_from_client;
        counters_.bytes_to_bus += c.frame.len;
        return;
    case sc::CommandKind::unknown:
        ++counters_.refused_commands;
        reply_error("unknown command", now);
        note(LogLevel::warning, "unknown", "unknown command '" + escape_text(c.word, 32) + "'");
        return;
    case sc::CommandKind::invalid:
        break;
    }
    const bool is_send = c.word == "send";
    ++(is_send ? counters_.refused_sends : counters_.refused_commands);
    reply_error(sc::describe(c.error), now);
    note(LogLevel::warning, "invalid",
         std::string(is_send ? "send refused: " : "command refused: ") + sc::describe(c.error) + ": " +
             escape_text(message, 80));
}

void SocketcandLink::reply(std::string_view word, std::uint64_t now) {
    std::array<char, sc::max_reply_text> text{};
    const std::size_t n = sc::format_reply(word, text);
    if (!append(std::span<const char>(text.data(), n))) {
        fail("the client sends commands faster than it reads the replies", now);
    }
}

void SocketcandLink::reply_ok(std::uint64_t now) {
    reply("ok", now);
    if (!closed_) {
        ok_ends_.push_back(written_total());
        start_hold_if_due(now);
    }
}

void SocketcandLink::reply_error(std::string_view text, std::uint64_t now) {
    std::array<char, sc::max_reply_text> buf{};
    const std::size_t n = sc::format_error(text, buf);
    if (!append(std::span<const char>(buf.data(), n))) {
        fail("the client sends commands faster than it reads the replies", now);
    }
}

bool SocketcandLink::append(std::span<const char> text) {
    if (text.empty() || text.size() > output_free()) {
        return false;
    }
    auto& out = *out_;
    if (end_ + text.size() > output_capacity) {
        std::memmove(out.data(), out.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    std::memcpy(out.data() + end_, text.data(), text.size());
    end_ += text.size();
    return true;
}

std::span<const std::uint8_t> SocketcandLink::output() const {
    std::size_t end = end_;
    if (!closed_ && !ok_ends_.empty()) {
        // Up to the `< ok >` whose pause is not over: it goes out alone.
        end = std::min(end, begin_ + static_cast<std::size_t>(ok_ends_.front() - consumed_total_));
    }
    return {out_->data() + begin_, end - begin_};
}

void SocketcandLink::consume_output(std::size_t n) {
    n = std::min(n, end_ - begin_);
    begin_ += n;
    consumed_total_ += n;
    if (begin_ == end_) {
        begin_ = end_ = 0;
    }
    start_hold_if_due(now_);
}

// The pause after an `< ok >` starts once the ok has been handed to the transport.
void SocketcandLink::start_hold_if_due(std::uint64_t now) {
    if (!ok_ends_.empty() && hold_until_ == 0 && consumed_total_ >= ok_ends_.front()) {
        hold_until_ = now + options_.ok_hold_us;
    }
}

void SocketcandLink::tick(std::uint64_t now) {
    now_ = now;
    while (hold_until_ != 0 && now >= hold_until_) {
        ok_ends_.pop_front();
        hold_until_ = 0;
        start_hold_if_due(now);
    }
    if (!closed_ && mode_ == Mode::no_bus && open_deadline_ != 0 && now >= open_deadline_) {
        reply_error("no bus opened in time", now);
        char why[96];
        std::snprintf(why, sizeof why, "no < open BUS > within %.1f s", static_cast<double>(options_.open_timeout_us) / 1e6);
        fail(why, now);
        return;
    }
    if (!closed_ && mode_ == Mode::control && statistics_ms_ != 0 && now >= next_stat_at_) {
        std::array<char, sc::max_reply_text> text{};
        const std::size_t n = sc::format_stat(counters_.bytes_from_bus, counters_.frames_from_bus,
                                              counters_.bytes_to_bus, counters_.frames_from_client, text);
        (void)append(std::span<const char>(text.data(), n));  // a client that does not read misses one
        next_stat_at_ = now + std::uint64_t{statistics_ms_} * 1000u;
    }
}

std::uint64_t SocketcandLink::next_deadline() const {
    std::uint64_t deadline = std::numeric_limits<std::uint64_t>::max();
    if (closed_) {
        return deadline;
    }
    if (hold_until_ != 0) {
        deadline = hold_until_;
    }
    if (mode_ == Mode::no_bus && open_deadline_ != 0) {
        deadline = std::min(deadline, open_deadline_);
    }
    if (mode_ == Mode::control && statistics_ms_ != 0) {
        deadline = std::min(deadline, next_stat_at_);
    }
    return deadline;
}

void SocketcandLink::close(CloseReason reason, std::string_view text, std::uint64_t now) {
    now_ = now;
    if (closed_) {
        return;
    }
    if (reason != CloseReason::normal) {
        const std::string why = text.empty() ? std::string(describe(reason)) : std::string(text);
        std::array<char, sc::max_reply_text> buf{};
        const std::size_t n = sc::format_error(std::string_view(why).substr(0, 100), buf);
        (void)append(std::span<const char>(buf.data(), n));  // best effort: socketcand has no close message
        note(LogLevel::info, "closed", "closing: " + why);
    }
    closed_ = true;
}

void SocketcandLink::transport_closed(std::uint64_t now) {
    now_ = now;
    if (!closed_) {
        note(LogLevel::info, "closed", "disconnected");
    }
    closed_ = true;
}

void SocketcandLink::fail(std::string reason, std::uint64_t) {
    if (closed_) {
        return;
    }
    note(LogLevel::warning, "protocol-error", "protocol error: " + reason + "; closing");
    closed_ = true;
}

void SocketcandLink::note(LogLevel level, std::string key, std::string line) {
    if (notes_.size() >= max_notes) {
        ++notes_dropped_;
        return;
    }
    notes_.push_back({level, std::move(key), std::move(line)});
}

void SocketcandLink::log_events(std::uint64_t now) {
    while (!notes_.empty()) {
        Note n = std::move(notes_.front());
        notes_.pop_front();
        if (!log_enabled(n.level) || !limiter_.allow(name() + " " + n.key, now)) {
            continue;
        }
        log(n.level, "%s: socketcand: %s", name().c_str(), n.line.c_str());
    }
    if (notes_dropped_ != 0 && limiter_.allow(name() + " notes", now)) {
        LOG_WARNING("%s: socketcand: %llu more events not logged", name().c_str(), ull(notes_dropped_));
        notes_dropped_ = 0;
    }
}

void SocketcandLink::discard() {
    counters_.unsent_at_close += to_bus_->size();
    to_bus_->clear();
}

void SocketcandLink::add_totals(LinkTotals& t) const {
    t.sent += counters_.frames_to_client;
    t.received += counters_.frames_from_client;
    t.dropped += drops();
    t.output_full += counters_.drop_output_full;
    t.bus_queue_full += counters_.drop_bus_queue_full;
    t.unsent_at_close += counters_.unsent_at_close;
}

std::uint64_t SocketcandLink::drops() const {
    return counters_.drop_remote + counters_.drop_fd + counters_.drop_output_full + counters_.drop_bus_queue_full;
}

std::string SocketcandLink::describe_drops() const {
    char text[320];
    std::snprintf(text, sizeof text,
                  "%llu frames dropped so far (towards client: remote %llu, CAN FD without fdmode %llu, output full "
                  "%llu; towards bus: queue full %llu; sends refused %llu)",
                  ull(drops()), ull(counters_.drop_remote), ull(counters_.drop_fd), ull(counters_.drop_output_full),
                  ull(counters_.drop_bus_queue_full), ull(counters_.refused_sends));
    return text;
}

}  // namespace tcpcan::linux_port
