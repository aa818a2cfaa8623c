// Instantiates the real core templates for a Cortex-M build (tests/core/check_cortex_m.py).
//
// Every entry point is an extern "C" function with external linkage, so the compiler keeps
// all the code they reach and `arm-none-eabi-nm -u` on the object lists every symbol the
// core needs from a C or C++ runtime. The check fails on anything outside its allow-list
// (a heap call such as _Znwj or malloc, __cxa_*, __throw_*, ...), and
// `arm-none-eabi-size` on the object is the core's flash and RAM cost.
//
// Compiled with -ffreestanding -fno-exceptions -fno-rtti: no hosted header may appear here
// either, so this file includes only the umbrella header and freestanding ones.
#include <tcpcan.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace {

// The configuration the issue names: 2 KiB of output, 16 bus frames, 32 subscription
// entries, 8 events.
using McuSession = tcpcan::Session<2048, 16, 32, 8>;

// std::optional keeps the session in .bss (it is constructed by tcpcan_m_open, not by a
// static constructor) and needs neither the heap nor a guard variable.
std::optional<McuSession> g_session;
tcpcan::FilterSet<8> g_forward;
tcpcan::FilterSet<32> g_subscription;
tcpcan::Decoder g_decoder;
tcpcan::Message g_message;

// The smallest CanPort and ByteStream a port could write: one-slot mailboxes that the C
// side fills and drains. They exist to instantiate bridge_step and its virtual calls.
class MailboxCan final : public tcpcan::CanPort {
public:
    bool read(tcpcan::Frame& frame) override {
        if (!has_rx) {
            return false;
        }
        frame = rx;
        has_rx = false;
        return true;
    }
    bool write(const tcpcan::Frame& frame) override {
        if (has_tx) {
            return false;
        }
        tx = frame;
        has_tx = true;
        return true;
    }

    tcpcan::Frame rx{};
    tcpcan::Frame tx{};
    bool has_rx = false;
    bool has_tx = false;
};

// Kept apart from BufferStream so the buffer stays in .bss (the object, with its vtable
// pointer, is in .data).
std::uint8_t g_stream_tx[512];

class BufferStream final : public tcpcan::ByteStream {
public:
    tcpcan::StreamRead read(std::span<std::uint8_t> buffer) override {
        std::size_t n = 0;
        while (n < buffer.size() && rx_at < rx_size) {
            buffer[n++] = rx_data[rx_at++];
        }
        return {n, closed && rx_at == rx_size};
    }
    std::size_t write(std::span<const std::uint8_t> bytes) override {
        std::size_t n = 0;
        while (n < bytes.size() && tx_size < sizeof g_stream_tx) {
            g_stream_tx[tx_size++] = bytes[n++];
        }
        return n;
    }

    const std::uint8_t* rx_data = nullptr;
    std::size_t rx_size = 0;
    std::size_t rx_at = 0;
    bool closed = false;
    std::size_t tx_size = 0;
};

MailboxCan g_can;
BufferStream g_stream;

tcpcan::Frame make_frame(std::uint32_t id, std::uint8_t flags, const std::uint8_t* data, std::uint8_t len) {
    tcpcan::Frame frame;
    frame.id = id;
    frame.flags = flags;
    frame.len = len;
    for (std::uint8_t i = 0; i < len && i < tcpcan::max_fd_length; ++i) {
        frame.data[i] = data[i];
    }
    return frame;
}

}  // namespace

extern "C" {

// ---- Session ---------------------------------------------------------------------------

void tcpcan_m_open(int server, std::uint64_t now, std::uint64_t heartbeat_us, std::uint64_t dead_after_us) {
    tcpcan::SessionOptions options;
    options.role = server != 0 ? tcpcan::Role::server : tcpcan::Role::client;
    options.features = tcpcan::feature::sequence | tcpcan::feature::timestamps;
    options.heartbeat_interval_us = heartbeat_us;
    options.dead_after_us = dead_after_us;
    options.max_frame_age_us = 100'000;
    g_session.emplace(options, now);
}

// Returns the bytes consumed; *ok is false when the peer broke the protocol.
std::size_t tcpcan_m_receive(const std::uint8_t* bytes, std::size_t size, std::uint64_t now, bool* ok) {
    const tcpcan::ReceiveResult r = g_session->receive(std::span<const std::uint8_t>(bytes, size), now);
    *ok = r.ok;
    return r.consumed;
}

int tcpcan_m_send_frame(std::uint32_t id, std::uint8_t flags, const std::uint8_t* data, std::uint8_t len,
                        std::uint64_t now) {
    return static_cast<int>(g_session->send_frame(make_frame(id, flags, data, len), now));
}

std::size_t tcpcan_m_output(const std::uint8_t** bytes) {
    const std::span<const std::uint8_t> out = g_session->output();
    *bytes = out.data();
    return out.size();
}

void tcpcan_m_consume_output(std::size_t n) { g_session->consume_output(n); }

// Copies the oldest frame for the bus into the arguments and pops it.
bool tcpcan_m_take_bus_frame(std::uint64_t now, std::uint64_t wall_clock_us, std::uint32_t* id, std::uint8_t* flags,
                             std::uint8_t* data, std::uint8_t* len) {
    const tcpcan::Frame* frame = g_session->peek_bus_frame(now, wall_clock_us);
    if (frame == nullptr) {
        return false;
    }
    *id = frame->id;
    *flags = frame->flags;
    *len = frame->len;
    for (std::uint8_t i = 0; i < frame->len && i < tcpcan::max_fd_length; ++i) {
        data[i] = frame->data[i];
    }
    g_session->pop_bus_frame();
    return true;
}

std::size_t tcpcan_m_bus_queue_size(void) { return g_session->bus_queue_size(); }

void tcpcan_m_tick(std::uint64_t now) { g_session->tick(now); }

std::uint64_t tcpcan_m_next_deadline(void) { return g_session->next_deadline(); }

bool tcpcan_m_poll_event(std::uint32_t* type, std::uint32_t* value, std::uint32_t* value2, std::uint64_t* offset) {
    tcpcan::Event event;
    if (!g_session->poll_event(event)) {
        return false;
    }
    *type = static_cast<std::uint32_t>(event.type);
    *value = event.value;
    *value2 = event.value2;
    *offset = event.offset;
    return true;
}

const char* tcpcan_m_close_text(std::size_t* size) {
    const std::string_view text = g_session->close_text();
    *size = text.size();
    return text.data();
}

void tcpcan_m_close(int reason, const char* text, std::size_t size, std::uint64_t now) {
    g_session->close(static_cast<tcpcan::CloseReason>(reason), std::string_view(text, size), now);
}

void tcpcan_m_transport_closed(std::uint64_t now) {
    g_session->transport_closed(now);
    g_session->discard_bus_queue();
}

int tcpcan_m_state(void) { return static_cast<int>(g_session->state()); }
std::uint32_t tcpcan_m_version(void) { return g_session->version(); }
std::uint32_t tcpcan_m_agreed_features(void) { return g_session->agreed_features(); }
bool tcpcan_m_retry_with_version_1(void) { return g_session->retry_with_version_1(); }
std::uint64_t tcpcan_m_dropped(void) {
    const tcpcan::SessionStats& s = g_session->stats();
    return s.dropped_towards_peer() + s.dropped_towards_bus() + s.sequence.lost;
}
std::size_t tcpcan_m_peer_subscription_size(void) { return g_session->peer_subscription().size(); }

// ---- Filters -----------------------------------------------------------------------------

// Parses a filter list into the local subscription and asks the peer to apply it.
// Returns 0, or 1 + the offset of the problem.
std::size_t tcpcan_m_subscribe(const char* text, std::size_t size) {
    g_subscription.clear();
    const tcpcan::FilterListParseResult r = tcpcan::parse_filter_list(std::string_view(text, size), g_subscription);
    if (!r.ok) {
        return 1 + r.position;
    }
    return g_session->set_local_subscription(g_subscription) ? 0 : 1;
}

// Parses the bridge's forwarding filter (one entry at a time, as a command line gives them).
int tcpcan_m_forward_filter(const char* text, std::size_t size) {
    const tcpcan::FilterParseResult r = tcpcan::parse_filter_entry(std::string_view(text, size));
    if (!r.ok) {
        return static_cast<int>(r.error);
    }
    return g_forward.add(r.entry) ? 0 : -1;
}

bool tcpcan_m_filter_matches(std::uint32_t id, bool extended) { return g_forward.matches(id, extended); }

const char* tcpcan_m_describe_filter_error(int error) {
    return tcpcan::describe(static_cast<tcpcan::FilterParseError>(error));
}

// ---- Bridge -------------------------------------------------------------------------------

// One bridge_step over the mailbox CAN port and the buffer stream.
std::size_t tcpcan_m_bridge_step(const std::uint8_t* in, std::size_t in_size, bool in_closed, std::uint64_t now,
                                 std::uint8_t** out) {
    g_stream.rx_data = in;
    g_stream.rx_size = in_size;
    g_stream.rx_at = 0;
    g_stream.closed = in_closed;
    g_stream.tx_size = 0;
    const tcpcan::BridgeStepResult r = tcpcan::bridge_step(*g_session, g_can, g_stream, g_forward, now, 4);
    *out = g_stream_tx;
    return r.bytes_out + r.frames_to_bus + r.frames_filtered + (r.stream_closed ? 1 : 0);
}

// The same pass with a GatewayProfile session (profile.hpp), so its code is compiled and
// checked here too (port/cortex-m is the complete gateway; check_gateway_size.py sizes it).
std::optional<tcpcan::Session<384, 16, 28, 4, tcpcan::GatewayProfile>> g_gateway;

void tcpcan_m_gateway_open(std::uint64_t now, std::uint64_t heartbeat_us, std::uint64_t dead_after_us) {
    tcpcan::SessionOptions options;
    options.role = tcpcan::Role::server;
    options.heartbeat_interval_us = heartbeat_us;
    options.dead_after_us = dead_after_us;
    g_gateway.emplace(options, now);
}

std::size_t tcpcan_m_gateway_step(const std::uint8_t* in, std::size_t in_size, std::uint64_t now, std::uint8_t** out,
                                  std::uint32_t* dropped) {
    g_stream.rx_data = in;
    g_stream.rx_size = in_size;
    g_stream.rx_at = 0;
    g_stream.closed = false;
    g_stream.tx_size = 0;
    const tcpcan::BridgeStepResult r = tcpcan::bridge_step(*g_gateway, g_can, g_stream, g_forward, now, 4);
    const auto& stats = g_gateway->stats();
    *dropped = stats.drop_not_classic + stats.drop_output_full + stats.drop_bus_queue_full;
    *out = g_stream_tx;
    return r.bytes_out;
}

void tcpcan_m_can_rx(std::uint32_t id, std::uint8_t flags, const std::uint8_t* data, std::uint8_t len) {
    g_can.rx = make_frame(id, flags, data, len);
    g_can.has_rx = true;
}

bool tcpcan_m_can_tx(std::uint32_t* id, std::uint8_t* len) {
    if (!g_can.has_tx) {
        return false;
    }
    *id = g_can.tx.id;
    *len = g_can.tx.len;
    g_can.has_tx = false;
    return true;
}

// ---- Decoder and encoders (without a session) ----------------------------------------------

int tcpcan_m_decode(const std::uint8_t* bytes, std::size_t size, int mode, std::size_t* consumed) {
    g_decoder.set_mode(static_cast<tcpcan::DecoderMode>(mode));
    const tcpcan::DecodeResult r = g_decoder.decode(std::span<const std::uint8_t>(bytes, size), g_message);
    *consumed = r.consumed;
    if (r.status == tcpcan::DecodeStatus::error) {
        return -static_cast<int>(g_decoder.error());
    }
    return static_cast<int>(r.status);
}

void tcpcan_m_decoder_reset(void) { g_decoder.reset(); }
std::uint64_t tcpcan_m_decoder_error_offset(void) { return g_decoder.error_offset(); }
const char* tcpcan_m_describe_protocol_error(int error) {
    return tcpcan::describe(static_cast<tcpcan::ProtocolError>(error));
}

// Re-encodes the last decoded message (the fuzzers' decode -> encode -> decode).
std::size_t tcpcan_m_reencode(std::uint8_t* out, std::size_t size) {
    return tcpcan::encode_message(std::span<std::uint8_t>(out, size), g_message);
}

std::size_t tcpcan_m_encode_control(std::uint8_t* out, std::size_t size, int which, std::uint32_t value) {
    const std::span<std::uint8_t> o(out, size);
    switch (which) {
    case 0: return tcpcan::encode_version(o, value);
    case 1: return tcpcan::encode_features(o, value);
    case 2: return tcpcan::encode_ping(o, value);
    case 3: return tcpcan::encode_pong(o, value);
    default: return tcpcan::encode_close(o, static_cast<tcpcan::CloseReason>(value), "bye");
    }
}

std::size_t tcpcan_m_encode_frame(std::uint8_t* out, std::size_t size, std::uint32_t id, std::uint8_t flags,
                                  const std::uint8_t* data, std::uint8_t len, bool version1, std::uint32_t sequence) {
    const tcpcan::Frame frame = make_frame(id, flags, data, len);
    const std::span<std::uint8_t> o(out, size);
    return version1 ? tcpcan::encode_data_v1(o, frame) : tcpcan::encode_frame(o, frame, true, sequence, true);
}

std::size_t tcpcan_m_encode_subscribe(std::uint8_t* out, std::size_t size) {
    tcpcan::WireFilterEntry entries[tcpcan::wire_filter::max_entries] = {};
    std::size_t count = 0;
    for (const tcpcan::FilterEntry& e : g_subscription.entries()) {
        if (count == tcpcan::wire_filter::max_entries) {
            break;
        }
        entries[count++] = tcpcan::filter_entry_to_wire(e);
    }
    return tcpcan::encode_subscribe(std::span<std::uint8_t>(out, size), tcpcan::SubscribeOp::replace,
                                    std::span<const tcpcan::WireFilterEntry>(entries, count));
}

// Linux struct can_frame / canfd_frame round trip; returns the FrameProblem.
int tcpcan_m_linux_round_trip(const std::uint8_t* in, std::size_t size, std::uint8_t* out) {
    const tcpcan::LinuxFrameResult r = tcpcan::from_linux_bytes(std::span<const std::uint8_t>(in, size));
    if (r.problem != tcpcan::FrameProblem::none) {
        return static_cast<int>(r.problem);
    }
    return tcpcan::to_linux_bytes(r.frame, std::span<std::uint8_t>(out, tcpcan::linux_canfd_frame_size)) != 0 ? 0 : -1;
}

const char* tcpcan_m_describe_frame_problem(int problem) {
    return tcpcan::describe(static_cast<tcpcan::FrameProblem>(problem));
}

// ---- candump text ---------------------------------------------------------------------------

// Parses a candump line and writes it back in candump's log format; returns the length
// written, 0 for a skipped line, or -(1 + column) of the problem.
long tcpcan_m_candump_round_trip(const char* line, std::size_t size, char* out, std::size_t out_size) {
    const tcpcan::CandumpParseResult r = tcpcan::parse_candump_line(std::string_view(line, size));
    if (r.kind == tcpcan::CandumpLineKind::error) {
        return -1 - static_cast<long>(r.position);
    }
    if (r.kind == tcpcan::CandumpLineKind::skip) {
        return 0;
    }
    const std::string_view iface = r.interface.empty() ? std::string_view("can0") : r.interface;
    return static_cast<long>(tcpcan::format_candump_line(r.frame, iface, std::span<char>(out, out_size)));
}

std::size_t tcpcan_m_candump_frame(std::uint32_t id, std::uint8_t flags, const std::uint8_t* data, std::uint8_t len,
                                   char* out, std::size_t out_size) {
    return tcpcan::format_candump_frame(make_frame(id, flags, data, len), std::span<char>(out, out_size));
}

const char* tcpcan_m_describe_candump_error(int error) {
    return tcpcan::describe(static_cast<tcpcan::CandumpParseError>(error));
}

// ---- Pieces the session holds, used alone ----------------------------------------------------

int tcpcan_m_negotiate(int server, std::uint32_t peer_version, std::uint32_t* send_version) {
    tcpcan::VersionNegotiator n(server != 0 ? tcpcan::Role::server : tcpcan::Role::client, tcpcan::NegotiationConfig{});
    (void)n.start();
    const tcpcan::NegotiationStep step = n.on_peer_version(peer_version);
    *send_version = step.send ? step.send_version : 0xFFFF'FFFFu;
    return static_cast<int>(n.state());
}

int tcpcan_m_sequence(const std::uint32_t* numbers, std::size_t count, std::uint64_t* lost) {
    tcpcan::SequenceTracker tracker;
    int last = 0;
    for (std::size_t i = 0; i < count; ++i) {
        last = static_cast<int>(tracker.on_frame(numbers[i]).verdict);
    }
    *lost = tracker.counters().lost;
    return last;
}

}  // extern "C"
