// tcpcan: carries a SocketCAN bus over TCP. Speaks both seed tools' command lines:
//   tcpcan [--host HOST] [--port PORT] [--serve] [-v] [--no-retry] canif      (tcpcan)
//   tcpcan server --can IF [--bind ADDR] [--port 3333]                        (canip_peer)
//   tcpcan client --can IF --host H [--port 3333] [--heartbeat SEC]           (canip_peer)
// Exit status: 0 after an orderly stop, 1 for a failure at run time, 2 for bad input.
#include <CLI/CLI.hpp>
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bridge.hpp"
#include "can_config.hpp"
#include "log.hpp"
#include "udp_net.hpp"

using namespace tcpcan;
using namespace tcpcan::linux_port;

namespace {

constexpr int exit_usage = 2;

struct Options {
    std::vector<std::string> cans;  // --can (server: repeatable), or the canif argument
    std::string host;
    std::string bind = "0.0.0.0";
    int port = 0;
    bool serve = false;
    bool verbose = false;
    bool no_retry = false;
    bool port_given = false;  // --port on the command line or in the configuration file
    std::string log_level = "INFO";
    bool no_seq = false;
    bool no_resume = false;
    double resume_window_s = 30;
    bool timestamps = false;
    bool can_fd = false;
    std::uint32_t can_bitrate = 0;
    std::uint32_t data_bitrate = 0;
    std::vector<std::string> filters, filter_files, blocks, block_files, subscribes;
    double heartbeat_s = 0;
    double dead_after_s = 0;
    double max_age_ms = 0;
    double stats_s = 0;
    double negotiation_timeout_s = 5;
    unsigned protocol_version = highest_version;
    unsigned min_protocol_version = 1;
    int max_clients = 16;
    int max_pending = 64;
    double evict_idle_s = 2;
    double latency_budget_ms = 0;
    std::vector<std::string> allow_transmit;
    bool read_only = false;
    std::string tls_psk_file, tls_cert, tls_key, tls_ca, tls_server_name, policy_file;
    std::vector<std::string> listen;
    std::string dialect = "tcpcan";
    std::string remote_bus;
    // Each dialect's own options go below its line (one block each keeps merges apart).
    // socketcand:
    bool beacon = false;
    std::string beacon_to;
    double socketcand_ok_hold_ms = 30;

    // cannelloni:
    std::string cannelloni_peer;
    double cannelloni_timeout_ms = 0;
    int cannelloni_local_port = -1;

    // canip:
    bool canip_form = false;     // `tcpcan server|client`, canip_peer's command line
    bool dialect_given = false;  // --dialect on the command line or in --config

};

// Numbers on the command line and in configuration files are plain decimal: CLI11 alone would
// take "0x10" as 16, "010" as 8, and "nan" or "1e30" as durations.
enum class DecimalParse { ok, not_decimal, out_of_range };

DecimalParse parse_decimal(const std::string& text, double& value) {
    if (text.empty() || text.find_first_not_of("0123456789.eE+-") != std::string::npos) {
        return DecimalParse::not_decimal;
    }
    const char* begin = text.data() + (text.front() == '+' ? 1 : 0);
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(begin, end, value);
    if (stop != end || (error != std::errc{} && error != std::errc::result_out_of_range)) {
        return DecimalParse::not_decimal;
    }
    // Out of range is beyond a double (1e400) or below its smallest normal value (1e-320).
    return error == std::errc{} && std::isfinite(value) ? DecimalParse::ok : DecimalParse::out_of_range;
}

std::string format_bound(double value) {
    std::ostringstream s;
    s.precision(12);
    s << value;
    return s.str();
}

// A duration in `unit` (seconds or milliseconds): finite, 0 = off where `zero_means` names what 0
// does, otherwise from `shortest` (1 ms unless given, in µs) to 1 day, and no finer than the
// microseconds the bridge counts in.
CLI::Validator duration(const std::string& unit, double units_per_second, const std::string& zero_means,
                        unsigned shortest_us = 1000) {
    const double low = shortest_us * 1e-6 * units_per_second;
    const double high = 86400 * units_per_second;
    const std::string shortest = shortest_us % 1000 == 0 ? std::to_string(shortest_us / 1000) + " ms"
                                                         : std::to_string(shortest_us) + " µs";
    const std::string range = (zero_means.empty() ? "" : "0 (" + zero_means + ") or ") + format_bound(low) + " to " +
                              format_bound(high) + " " + unit + " (" + shortest + " to 1 day)";
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            double value = 0;
            const DecimalParse parsed = parse_decimal(text, value);
            if (parsed == DecimalParse::not_decimal) {
                return "'" + text + "' is not a decimal number of " + unit + "; expected " + range;
            }
            if (parsed == DecimalParse::ok && value == 0 && !zero_means.empty()) {
                return {};
            }
            if (parsed != DecimalParse::ok || !(value >= low && value <= high)) {
                return "'" + text + "' is out of range; expected " + range;
            }
            const double micros = value * (1e6 / units_per_second);
            if (std::fabs(micros - std::round(micros)) > 1e-3) {
                return "'" + text + "' is finer than the 1 microsecond resolution";
            }
            return {};
        },
        unit);
}

// A whole number written in decimal digits only, from `low` to `high`.
CLI::Validator decimal_integer(std::uint64_t low, std::uint64_t high) {
    const std::string range = std::to_string(low) + " to " + std::to_string(high);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
                return "'" + text + "' is not a decimal number (digits 0-9 only); expected " + range;
            }
            std::uint64_t value = 0;
            const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (error != std::errc{} || stop != text.data() + text.size() || value < low || value > high) {
                return "'" + text + "' is out of range; expected " + range;
            }
            text = std::to_string(value);  // CLI11 would read a leading 0 as octal
            return {};
        },
        range);
}

const CLI::Validator port_number = decimal_integer(1, 65535);

void add_common_options(CLI::App& app, Options& o) {
    app.add_option("--log-level", o.log_level, "DEBUG, INFO, WARNING or ERROR")->default_val("INFO");
    app.add_flag("--no-seq", o.no_seq, "do not offer per-frame sequence numbers (version 2)");
    app.add_flag("--no-resume", o.no_resume, "do not offer acknowledged delivery and session resume (version 2; on by default)");
    app.add_option("--resume-window", o.resume_window_s, "server: keep a disconnected client's session this many seconds for it to resume")->default_val(30)->check(duration("seconds", 1, "off"));
    app.add_flag("--timestamps,--timestamp", o.timestamps, "carry capture timestamps with every frame (version 2)");
    app.add_flag("--can-fd", o.can_fd, "switch the CAN interface to CAN FD mode (rtnetlink)");
    app.add_option("--can-bitrate", o.can_bitrate, "set the interface's bitrate, bit/s (rtnetlink)")->transform(decimal_integer(1, 20'000'000));
    app.add_option("--data-bitrate", o.data_bitrate, "set the CAN FD data bitrate, bit/s (rtnetlink)")->transform(decimal_integer(1, 20'000'000));
    app.add_option("--filter", o.filters, "forward only bus frames matching SPEC (repeatable): 123, 1ABx, 100-1FF, 100/700, 123:7FF, 123~7FF");
    app.add_option("--filter-file", o.filter_files, "read --filter entries from a file (# comments)")->check(CLI::ExistingFile);
    app.add_option("--block", o.blocks, "never forward bus frames matching SPEC (repeatable)");
    app.add_option("--block-file", o.block_files, "read --block entries from a file")->check(CLI::ExistingFile);
    app.add_option("--subscribe", o.subscribes, "ask the server to send only frames matching SPEC (client, version 2)");
    app.add_option("--heartbeat", o.heartbeat_s, "send a heartbeat every SEC seconds and detect a dead peer (version 2)")->check(duration("seconds", 1, "off"));
    app.add_option("--dead-after", o.dead_after_s, "declare the peer dead after SEC seconds of silence (default: 3 heartbeats)")->check(duration("seconds", 1, "3 heartbeats"));
    app.add_option("--max-age", o.max_age_ms, "drop frames that waited longer than MS milliseconds to reach the bus")->check(duration("milliseconds", 1000, "off"));
    app.add_option("--stats", o.stats_s, "log statistics every SEC seconds")->check(duration("seconds", 1, "off"));
    app.add_option("--negotiation-timeout", o.negotiation_timeout_s, "close connections that have not agreed within SEC seconds")->default_val(5)->check(duration("seconds", 1, ""));
    app.add_option("--protocol-version", o.protocol_version, "highest protocol version proposed or accepted (1 = plain tcpcan)")->transform(decimal_integer(1, highest_version));
    app.add_option("--min-protocol-version", o.min_protocol_version, "lowest protocol version agreed to; 2 refuses the fallback to plain tcpcan")->transform(decimal_integer(1, highest_version));
    app.add_option("--max-clients", o.max_clients, "most clients served at once")->default_val(16)->transform(decimal_integer(1, 1024));
    app.add_option("--max-pending", o.max_pending, "server: most connections still negotiating (a new one closes the oldest), and TLS handshakes under way (more are refused)")->default_val(64)->transform(decimal_integer(1, 4096));
    app.add_option("--evict-idle", o.evict_idle_s, "server, when full: a client silent this many seconds makes room for a new one")->default_val(2)->check(duration("seconds", 1, "any established session"));
    app.add_option("--latency-budget", o.latency_budget_ms, "when bus frames come less than MS milliseconds apart, read them every MS: fewer wake-ups per frame for up to MS of added latency (0 = every frame at once)")->check(duration("milliseconds", 1000, "off", 10));
    app.add_option("--allow-transmit", o.allow_transmit, "only peer frames matching SPEC reach the bus (repeatable; the rest are counted)");
    app.add_flag("--read-only", o.read_only, "server: refuse frames from clients (they are counted)");
    app.add_option("--tls-psk-file", o.tls_psk_file, "TLS 1.3 with pre-shared keys: IDENTITY:HEXKEY lines (mode 600)");
    app.add_option("--tls-cert", o.tls_cert, "TLS 1.3 with certificates: our certificate (PEM)");
    app.add_option("--tls-key", o.tls_key, "  its private key (PEM, mode 600)");
    app.add_option("--tls-ca", o.tls_ca, "  the CA that signs the peer's certificate (PEM)");
    app.add_option("--tls-server-name", o.tls_server_name, "client: the name the server's certificate must hold (default: --host)");
    app.add_option("--policy-file", o.policy_file, "server with TLS: what each identity may send (read-only, allow, rate)");
    app.add_option("--listen", o.listen, "server: listen for DIALECT@[ADDR:]PORT[:BUS] (repeatable; replaces --port): tcpcan, socketcand, cannelloni, cannelloni-udp, canip; BUS ties the listener to one --can bus");
    app.add_option("--dialect", o.dialect, "client: the protocol spoken to the server: tcpcan (default), cannelloni, cannelloni-udp or canip")->default_val("tcpcan");
    app.add_option("--remote-bus", o.remote_bus, "client: the server's bus to join, by name (tcpcan version 2 bus request)");
    // socketcand's options:
    app.add_flag("--beacon", o.beacon, "server: announce the socketcand listeners with socketcand's UDP discovery beacon every 3 s (to 255.255.255.255:42000)");
    app.add_option("--socketcand-ok-hold", o.socketcand_ok_hold_ms, "server: socketcand clients get nothing for MS milliseconds after each < ok > (python-can reads each reply alone; default 30)")->check(duration("milliseconds", 1000, ""));
    app.add_option("--beacon-to", o.beacon_to, "server: send the beacon to ADDR[:PORT] instead (IPv4, port 42000 by default); implies --beacon");

    // cannelloni's options:
    app.add_option("--cannelloni-peer", o.cannelloni_peer, "server, cannelloni: take TCP connections and UDP packets only from ADDR (any port); UDP sends to ADDR:PORT from the start; default: anyone, and over UDP the first sender is the peer");
    app.add_option("--cannelloni-local-port", o.cannelloni_local_port, "client, cannelloni-udp: the local UDP port cannelloni sends to (its -r; default: --port, as cannelloni's -l and -r are both 20000; 0 = any)")->transform(decimal_integer(0, 65535));
    app.add_option("--cannelloni-timeout", o.cannelloni_timeout_ms, "cannelloni-udp: send a packet of frames at the latest MS milliseconds after its first frame (default 100, as cannelloni's -t)")->check(duration("milliseconds", 1000, "the default"));

    // canip's options:

}

std::string join(const std::vector<std::string>& names) {
    std::string all;
    for (const std::string& name : names) {
        all += (all.empty() ? "" : ", ") + name;
    }
    return all;
}

// The buses: a server serves each --can (at most one stdio, no name twice); a client one.
bool fill_buses(const Options& o, BridgeConfig& config, std::string& error) {
    if (!o.serve && o.cans.size() > 1) {
        error = "--can: a client carries one bus (" + join(o.cans) + " given); run one client per bus";
        return false;
    }
    if (o.cans.size() > 16) {
        error = "--can: at most 16 buses, " + std::to_string(o.cans.size()) + " given";
        return false;
    }
    for (std::size_t i = 0; i < o.cans.size(); ++i) {
        if (o.cans[i].empty()) {
            error = "--can: an empty interface name";
            return false;
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (o.cans[i] == o.cans[j]) {
                error = o.cans[i] == "-" ? "--can: stdio ('-') is one bus; give it once"
                                         : "--can: bus '" + o.cans[i] + "' given twice";
                return false;
            }
        }
    }
    config.can_interfaces = o.cans;
    return true;
}

// --beacon and --beacon-to into `config` (after --listen); a usage error message when they are wrong.
bool fill_beacon(const Options& o, BridgeConfig& config, std::string& error) {
    if (!o.beacon && o.beacon_to.empty()) {
        return true;
    }
    const bool has_socketcand = std::any_of(config.listen.begin(), config.listen.end(),
                                            [](const ListenSpec& l) { return l.dialect == Dialect::socketcand; });
    if (!o.serve || !has_socketcand) {
        error = "--beacon announces a socketcand listener: add --listen socketcand@PORT (a server option)";
        return false;
    }
    config.beacon = true;
    config.beacon_description = "tcpcan " TCPCAN_VERSION;
    if (o.beacon_to.empty()) {
        return true;
    }
    const std::size_t colon = o.beacon_to.find(':');
    const std::string address = o.beacon_to.substr(0, colon);
    in_addr parsed{};
    if (inet_pton(AF_INET, address.c_str(), &parsed) != 1) {
        error = "--beacon-to '" + o.beacon_to + "': '" + address + "' is not an IPv4 address (ADDR[:PORT])";
        return false;
    }
    config.beacon_address = address;
    if (colon != std::string::npos) {
        const std::string port = o.beacon_to.substr(colon + 1);
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value < 1 || value > 65535) {
            error = "--beacon-to '" + o.beacon_to + "': port '" + port + "' is not a number from 1 to 65535";
            return false;
        }
        config.beacon_port = static_cast<std::uint16_t>(value);
    }
    return true;
}

// cannelloni's options (--cannelloni-*) into `config`, after --dialect and --port.
bool fill_cannelloni(const Options& o, BridgeConfig& config, std::string& error) {
    if (!o.cannelloni_peer.empty() && !(o.serve && std::any_of(o.listen.begin(), o.listen.end(), [](const std::string& l) {
            return l.rfind("cannelloni-udp@", 0) == 0 || l.rfind("cannelloni@", 0) == 0;
        }))) {
        error = "--cannelloni-peer is for a server with --listen cannelloni@... or cannelloni-udp@...; a client's peer is "
                "--host and --port";
        return false;
    }
    if (!o.cannelloni_peer.empty()) {
        sockaddr_storage address{};
        socklen_t length = 0;
        bool has_port = false;
        const NetResult r = resolve_udp_peer(o.cannelloni_peer, address, length, has_port);
        if (!r.ok) {
            error = "--cannelloni-peer " + r.error;
            return false;
        }
    }
    config.datagram_peer = o.cannelloni_peer;
    if (o.cannelloni_local_port != -1 && (o.serve || config.dialect != Dialect::cannelloni_udp)) {
        error = "--cannelloni-local-port is for a client with --dialect cannelloni-udp; a server's port is in --listen";
        return false;
    }
    config.datagram_local_port =
        static_cast<std::uint16_t>(o.cannelloni_local_port == -1 ? config.port : o.cannelloni_local_port);
    config.datagram_flush_us = static_cast<std::uint64_t>(std::llround(o.cannelloni_timeout_ms * 1000));
    return true;
}

// --listen, --dialect and --remote-bus into `config`; a usage error message when they are wrong.
bool fill_dialects(const Options& o, BridgeConfig& config, std::string& error) {
    const auto parsed = parse_dialect(o.dialect);
    if (!parsed) {
        error = "--dialect '" + o.dialect + "': unknown dialect, expected " + dialect_list();
        return false;
    }
    if (o.serve && *parsed != Dialect::tcpcan) {
        error = "--dialect is for clients; a server speaks a dialect on a listener: --listen " + o.dialect + "@PORT";
        return false;
    }
    std::string why;
    if (!o.serve && !dialect_built(*parsed, Role::client, why)) {
        error = "--dialect " + o.dialect + ": " + why;
        return false;
    }
    config.dialect = *parsed;
    if (!o.remote_bus.empty() && o.serve) {
        error = "--remote-bus is for clients: it names the server's bus to join";
        return false;
    }
    if (!o.remote_bus.empty()) {
        const bool printable = std::all_of(o.remote_bus.begin(), o.remote_bus.end(), [](char c) { return c > 0x20 && c < 0x7F; });
        if (o.remote_bus.size() > 64 || !printable) {
            error = "--remote-bus '" + o.remote_bus + "': a bus name is 1 to 64 printable ASCII characters, no spaces";
            return false;
        }
        if (*parsed != Dialect::tcpcan) {
            error = "--remote-bus names a bus with tcpcan's bus request: it needs --dialect tcpcan";
            return false;
        }
        if (o.protocol_version < 2) {
            error = "--remote-bus needs protocol version 2 (version 1 has no bus request)";
            return false;
        }
    }
    config.remote_bus = o.remote_bus;
    if (!fill_cannelloni(o, config, error)) {
        return false;
    }
    if (!o.listen.empty() && !o.serve) {
        error = "--listen is for servers (tcpcan server, or --serve); a client connects with --host and --port";
        return false;
    }
    if (!o.listen.empty() && o.port_given) {
        error = "--port and --listen: with --listen the server listens only where --listen says; for tcpcan on that "
                "port too, add --listen tcpcan@" + std::to_string(o.port);
        return false;
    }
    for (const std::string& text : o.listen) {
        ListenParse r = parse_listen_spec(text);
        if (!r.ok) {
            error = r.error;
            return false;
        }
        if (!dialect_built(r.spec.dialect, Role::server, why)) {
            error = "--listen '" + text + "': " + why;
            return false;
        }
        if (!r.spec.bus.empty() && std::find(o.cans.begin(), o.cans.end(), r.spec.bus) == o.cans.end()) {
            error = "--listen '" + text + "': no bus '" + r.spec.bus + "' (--can gives " + join(o.cans) + ")";
            return false;
        }
        config.listen.push_back(std::move(r.spec));
    }
    return fill_beacon(o, config, error);
}

// The TLS options and the policy file into `config`; a usage error message when they do
// not fit together. The files are read by the bridge at start (exit 1 if one is wrong).
bool fill_security(const Options& o, BridgeConfig& config, std::string& error) {
    const bool certificates = !o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_ca.empty();
    if (!o.tls_psk_file.empty() && certificates) {
        error = "--tls-psk-file and --tls-cert/--tls-key/--tls-ca exclude each other: use pre-shared keys or certificates";
        return false;
    }
    if (certificates && (o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty())) {
        error = std::string("--tls-cert, --tls-key and --tls-ca go together; missing:") +
                (o.tls_cert.empty() ? " --tls-cert" : "") + (o.tls_key.empty() ? " --tls-key" : "") +
                (o.tls_ca.empty() ? " --tls-ca" : "");
        return false;
    }
    if (!o.tls_server_name.empty() && (o.serve || !certificates)) {
        error = "--tls-server-name is for a client with --tls-cert/--tls-key/--tls-ca: it names the server's certificate";
        return false;
    }
    config.tls.psk_file = o.tls_psk_file;
    config.tls.cert_file = o.tls_cert;
    config.tls.key_file = o.tls_key;
    config.tls.ca_file = o.tls_ca;
    config.tls.server_name = o.tls_server_name;
    if (o.policy_file.empty()) {
        return true;
    }
    if (!o.serve) {
        error = "--policy-file is for servers: it says what each client may send";
        return false;
    }
    if (!config.tls.enabled()) {
        error = "--policy-file names clients by their TLS identity: it needs --tls-psk-file or "
                "--tls-cert/--tls-key/--tls-ca (without TLS, use --allow-transmit or --read-only)";
        return false;
    }
    PolicyFileResult loaded = load_policy_file(o.policy_file);
    if (!loaded.ok) {
        error = loaded.error;
        return false;
    }
    config.policies = std::move(loaded.policies);
    return true;
}

// Appends entries parsed from `text` to `set`; on error, a message naming where.
bool add_filters(const std::string& text, const std::string& origin, bool deny, FilterSetBase& set, std::string& error) {
    FilterSet<512> parsed;
    const FilterListParseResult r = parse_filter_list(text, parsed);
    if (!r.ok) {
        std::size_t line = 1, column = 1;
        for (std::size_t i = 0; i < r.position && i < text.size(); ++i) {
            if (text[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        std::ostringstream m;
        m << origin << ": ";
        if (text.find('\n') != std::string::npos) {
            m << "line " << line << ", ";
        }
        m << "column " << column << ": " << describe(r.error);
        error = m.str();
        return false;
    }
    for (FilterEntry e : parsed.entries()) {
        e.inverted = deny ? true : e.inverted;
        if (!set.add(e)) {
            error = origin + ": more than " + std::to_string(set.capacity()) + " filter entries";
            return false;
        }
    }
    return true;
}

bool read_file(const std::string& path, std::string& text) {
    std::ifstream in(path);
    if (!in) {
        return false;
    }
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
    return true;
}

std::uint64_t seconds_to_us(double s) { return static_cast<std::uint64_t>(std::llround(s * 1e6)); }

int usage_error(const std::string& message) {
    std::fprintf(stderr, "tcpcan: %s\nRun 'tcpcan --help' for usage.\n", message.c_str());
    return exit_usage;
}

int run(const Options& o) {
    LogLevel level = LogLevel::info;
    if (!parse_log_level(o.log_level, level)) {
        return usage_error("--log-level: '" + o.log_level + "' is not DEBUG, INFO, WARNING or ERROR");
    }
    set_log_level(o.verbose ? LogLevel::debug : level);

    BridgeConfig config;
    config.serve = o.serve;
    config.host = o.host;
    config.port = static_cast<std::uint16_t>(o.port);
    config.max_version = o.protocol_version;
    config.features = (o.no_seq ? 0 : feature::sequence) | (o.timestamps ? feature::timestamps : 0) |
                      (o.no_seq || o.no_resume ? 0 : feature::resume);
    config.resume_window_us = seconds_to_us(o.resume_window_s);
    config.heartbeat_us = seconds_to_us(o.heartbeat_s);
    config.dead_after_us = o.dead_after_s > 0 ? seconds_to_us(o.dead_after_s) : 3 * config.heartbeat_us;
    config.max_age_us = static_cast<std::uint64_t>(std::llround(o.max_age_ms * 1000));
    config.stats_interval_us = seconds_to_us(o.stats_s);
    config.negotiation_timeout_us = seconds_to_us(o.negotiation_timeout_s);
    config.max_clients = o.max_clients;
    config.max_pending = o.max_pending;
    config.min_version = o.min_protocol_version;
    config.evict_idle_us = seconds_to_us(o.evict_idle_s);
    config.latency_budget_us = static_cast<std::uint64_t>(std::llround(o.latency_budget_ms * 1000));
    config.socketcand_ok_hold_us = static_cast<std::uint64_t>(std::llround(o.socketcand_ok_hold_ms * 1000));
    config.read_only = o.read_only;
    config.retry = !o.no_retry;

    std::string error;
    for (const std::string& spec : o.filters) {
        if (!add_filters(spec, "--filter '" + spec + "'", false, config.forward, error)) {
            return usage_error(error);
        }
    }
    for (const std::string& spec : o.blocks) {
        if (!add_filters(spec, "--block '" + spec + "'", true, config.forward, error)) {
            return usage_error(error);
        }
    }
    for (const auto& [files, deny] : {std::pair{&o.filter_files, false}, std::pair{&o.block_files, true}}) {
        for (const std::string& path : *files) {
            std::string text;
            if (!read_file(path, text)) {
                return usage_error("cannot read filter file '" + path + "'");
            }
            if (!add_filters(text, path, deny, config.forward, error)) {
                return usage_error(error);
            }
        }
    }
    for (const std::string& spec : o.allow_transmit) {
        const std::size_t before = config.allow_transmit.size();
        if (!add_filters(spec, "--allow-transmit '" + spec + "'", false, config.allow_transmit, error)) {
            return usage_error(error);
        }
        if (config.allow_transmit.size() == before) {  // an empty list would let every frame through
            return usage_error("--allow-transmit '" + spec + "': no filter entry (use --read-only to refuse every frame)");
        }
    }
    if (o.min_protocol_version > o.protocol_version) {
        return usage_error("--min-protocol-version " + std::to_string(o.min_protocol_version) +
                           " is above --protocol-version " + std::to_string(o.protocol_version));
    }
    for (const std::string& spec : o.subscribes) {
        if (o.serve) {
            return usage_error("--subscribe is for clients: it asks the server to filter");
        }
        if (!add_filters(spec, "--subscribe '" + spec + "'", false, config.subscription, error)) {
            return usage_error(error);
        }
    }
    if (o.read_only && !o.serve) {
        return usage_error("--read-only is for servers");
    }
    if (!fill_security(o, config, error)) {
        return usage_error(error);
    }
    if (!fill_buses(o, config, error) || !fill_dialects(o, config, error)) {
        return usage_error(error);
    }
    // canip_peer's command line reaches canip_peer too, unless a dialect (or, by
    // --remote-bus, tcpcan's bus request) was chosen (README "canip_peer and tcpcan on one port").
    config.detect_canip = o.canip_form && (o.serve ? o.listen.empty() : !o.dialect_given && o.remote_bus.empty());
    const bool text_bus = std::any_of(o.cans.begin(), o.cans.end(),
                                      [](const std::string& can) { return can == "-" || can.rfind("fd:", 0) == 0; });
    if ((o.can_bitrate || o.data_bitrate || o.can_fd) && text_bus) {
        return usage_error("--can-bitrate, --data-bitrate and --can-fd need CAN interfaces, not stdio ('-') or fd:IN,OUT");
    }
    if (o.can_bitrate || o.data_bitrate || o.can_fd) {
        for (const std::string& can : o.cans) {
            const CanConfigResult r = configure_can_link(can, {o.can_bitrate, o.data_bitrate, o.can_fd});
            if (!r.ok) {
                LOG_ERROR("%s", r.error.c_str());
                return 1;
            }
            LOG_INFO("%s configured and up", can.c_str());
        }
    }
    return run_bridge(config);
}

// -1 when parsing succeeded; otherwise the exit status (0 after --help or --version, 2 for bad input).
int parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
        return -1;
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ConfigError& e) {
        // CLI11 words an unknown key as "INI was not able to parse KEY".
        const std::string what = e.what();
        const std::string prefix = "INI was not able to parse ";
        const std::string file = app.get_config_ptr() ? app.get_config_ptr()->as<std::string>() : "";
        if (what.rfind(prefix, 0) == 0) {
            std::string key = what.substr(prefix.size());
            for (const char* form : {"server.", "client."}) {
                if (key.rfind(form, 0) == 0) {
                    key.erase(0, std::string(form).size());
                }
            }
            return usage_error("--config " + file + ": unknown option '" + key + "'");
        }
        return usage_error("--config " + file + ": " + what);
    } catch (const CLI::FileError& e) {
        const std::string file = app.get_config_ptr() ? app.get_config_ptr()->as<std::string>() : "";
        return usage_error("--config " + file + ": cannot read the file");
    } catch (const CLI::ParseError& e) {
        return usage_error(e.what());
    }
}

const char* const version_text =
    "tcpcan " TCPCAN_VERSION "\n"
    "protocol: tcpcan versions 1 (the original Python tcpcan, byte for byte) and 2 (PROTOCOL.md)\n"
    "command lines: tcpcan [--serve] canif (tcpcan), tcpcan server|client --can IF (canip_peer)";

// In the subcommand form a configuration file holds that form's options at its top level
// (`port = 3333`), as the command line does after `server`; a [server] section also works.
class SubcommandConfig : public CLI::ConfigTOML {
public:
    explicit SubcommandConfig(std::string subcommand) : subcommand_(std::move(subcommand)) {}
    std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
        std::vector<CLI::ConfigItem> items = CLI::ConfigTOML::from_config(input);
        for (CLI::ConfigItem& item : items) {
            if (item.parents.empty() || item.parents.front() != subcommand_) {
                item.parents.insert(item.parents.begin(), subcommand_);
            }
        }
        return items;
    }

private:
    std::string subcommand_;
};

// --config and --version, on the top-level app so that both forms share them.
void add_config_and_version(CLI::App& app) {
    app.set_config("--config", "", "read options from a TOML or INI file (the command line wins)");
    app.get_config_ptr()->type_name("FILE");
    app.allow_config_extras(CLI::config_extras_mode::error);
    app.set_version_flag("--version", version_text);
}

int parse_and_run(int argc, char** argv) {
    Options o;
    const bool subcommand_form = argc > 1 && (std::string(argv[1]) == "server" || std::string(argv[1]) == "client");
    CLI::App app{"Tunnel SocketCAN on TCP (tcpcan protocol versions 1 and 2)", "tcpcan"};
    app.get_formatter()->column_width(34);
    if (subcommand_form) {
        const bool server = std::string(argv[1]) == "server";
        CLI::App* sub = app.add_subcommand(argv[1], server ? "serve a CAN interface (canip_peer form)"
                                                           : "connect a CAN interface to a server (canip_peer form)");
        add_config_and_version(app);
        app.config_formatter(std::make_shared<SubcommandConfig>(argv[1]));
        sub->fallthrough();
        sub->footer("Also: --config FILE (options from a TOML or INI file; the command line wins), --version");
        sub->add_option("--can", o.cans,
                        server ? "CAN interface, or - for stdin/stdout in candump format (repeatable: one bus each)"
                               : "CAN interface, or - for stdin/stdout in candump format")
            ->required()
            ->allow_extra_args(false);
        sub->add_option("--port", o.port, "TCP port")->default_val(3333)->transform(port_number);
        if (server) {
            sub->add_option("--bind", o.bind, "address to listen on")->default_val("0.0.0.0");
        } else {
            sub->add_option("--host", o.host, "server address")->required();
            sub->add_flag("--no-retry", o.no_retry, "exit instead of reconnecting");
        }
        sub->add_flag("-v,--verbose", o.verbose, "log at DEBUG level");
        add_common_options(*sub, o);
        app.require_subcommand(1);
        if (const int rc = parse(app, argc, argv); rc >= 0) {
            return rc;
        }
        o.serve = server;
        o.canip_form = true;
        o.dialect_given = sub->count("--dialect") > 0;
        o.port_given = sub->count("--port") > 0;
        if (server) {
            o.host = o.bind;
        }
    } else {
        app.add_option("canif", o.cans, "SocketCAN interface, or - for stdin/stdout in candump format")->required()->expected(1);
        app.add_option("--host", o.host, "TCP host")->default_val("localhost");
        app.add_option("--port", o.port, "TCP port")->default_val(20010)->transform(port_number);
        app.add_flag("--serve", o.serve, "serve (bind --host) instead of connecting");
        app.add_flag("-v,--verbose", o.verbose, "log at DEBUG level");
        app.add_flag("--no-retry", o.no_retry, "client: exit instead of reconnecting");
        add_common_options(app, o);
        add_config_and_version(app);
        app.footer("Also: tcpcan server --can IF [--bind ADDR] [--port 3333] ...\n"
                   "      tcpcan client --can IF --host H [--port 3333] ...\n"
                   "Run 'tcpcan server --help' or 'tcpcan client --help' for those forms.");
        if (const int rc = parse(app, argc, argv); rc >= 0) {
            return rc;
        }
        o.port_given = app.count("--port") > 0;
    }
    return run(o);
}

}  // namespace

int main(int argc, char** argv) { return parse_and_run(argc, argv); }
