#include "policy.hpp"

#include "tls_options.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace tcpcan::linux_port {

namespace {

// A whole number 1..max_policy_rate; false for anything else.
bool parse_count(std::string_view text, std::uint32_t& value) {
    if (text.empty() || text.size() > 7) {
        return false;
    }
    std::uint32_t n = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }
        n = n * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (n == 0 || n > max_policy_rate) {
        return false;
    }
    value = n;
    return true;
}

// Identities are printable ASCII (PSK identities must be; certificate CNs are logged so).
bool printable_ascii(std::string_view text) {
    for (const char c : text) {
        if (c < 0x20 || c > 0x7E) {
            return false;
        }
    }
    return true;
}

// Drops a trailing '#' comment (values never hold '#').
std::string_view without_comment(std::string_view text) {
    return trim(text.substr(0, text.find('#')));
}

}  // namespace

PolicyFileResult parse_policy_text(std::string_view text, std::string_view source) {
    PolicyFileResult result;
    std::vector<std::size_t> section_lines;
    for (const TextLine& line : split_lines(text)) {
        const std::string_view content = trim(line.text);
        if (content.empty() || content.front() == '#') {
            continue;
        }
        const auto fail = [&](const std::string& what) {
            result.policies.clear();
            result.error = std::string(source) + " line " + std::to_string(line.number) + ": " + what;
            return result;
        };
        if (content.front() == '[') {
            const std::size_t close = content.find(']');
            if (close == std::string_view::npos) {
                return fail("section header without ']'");
            }
            const std::string_view rest = trim(content.substr(close + 1));
            if (!rest.empty() && rest.front() != '#') {
                return fail("unexpected text after ']'");
            }
            const std::string_view identity = trim(content.substr(1, close - 1));
            if (identity.empty()) {
                return fail("empty identity in '[]'");
            }
            if (identity.size() > max_identity_length) {
                return fail("identity longer than " + std::to_string(max_identity_length) + " characters");
            }
            if (!printable_ascii(identity)) {
                return fail("identity holds a character that is not printable ASCII");
            }
            for (std::size_t i = 0; i < result.policies.size(); ++i) {
                if (result.policies[i].identity == identity) {
                    return fail("section [" + std::string(identity) + "] appears twice (first on line " +
                                std::to_string(section_lines[i]) + ")");
                }
            }
            ClientPolicy policy;
            policy.identity = std::string(identity);
            result.policies.push_back(std::move(policy));
            section_lines.push_back(line.number);
            continue;
        }
        if (result.policies.empty()) {
            return fail("setting before any [identity] section");
        }
        ClientPolicy& policy = result.policies.back();
        const std::size_t equals = content.find('=');
        const std::string_view key = trim(content.substr(0, equals));
        if (equals == std::string_view::npos) {
            if (without_comment(key) == "read-only") {
                policy.read_only = true;
                continue;
            }
            return fail("expected 'read-only' or 'SETTING = VALUE', got '" + std::string(without_comment(key)) + "'");
        }
        const std::string_view raw_value = trim(content.substr(equals + 1));
        if (key == "allow") {
            if (policy.has_allow) {
                return fail("'allow' appears twice in section [" + policy.identity + "]");
            }
            const FilterListParseResult parsed = parse_filter_list(raw_value, policy.allow);
            if (!parsed.ok) {
                return fail(std::string("allow: ") + tcpcan::describe(parsed.error) + " at column " +
                            std::to_string(static_cast<std::size_t>(raw_value.data() - line.text.data()) +
                                           parsed.position + 1));
            }
            if (parsed.added == 0) {
                return fail("allow: empty list (use read-only to refuse every frame)");
            }
            policy.has_allow = true;
        } else if (key == "rate" || key == "burst") {
            std::uint32_t value = 0;
            if (!parse_count(without_comment(raw_value), value)) {
                return fail(std::string(key) + ": expected a whole number from 1 to " + std::to_string(max_policy_rate) +
                            ", got '" + std::string(without_comment(raw_value)) + "'");
            }
            (key == "rate" ? policy.max_frames_per_s : policy.burst) = value;
        } else if (key == "read-only") {
            return fail("read-only takes no value");
        } else {
            return fail("unknown setting '" + std::string(key) + "' (settings: read-only, allow, rate, burst)");
        }
    }
    for (const ClientPolicy& policy : result.policies) {
        if (policy.burst != 0 && policy.max_frames_per_s == 0) {
            // The message first: clearing the list frees `policy`.
            std::string error = std::string(source) + ": section [" + policy.identity + "] sets burst without rate";
            result.policies.clear();
            result.error = std::move(error);
            return result;
        }
    }
    result.ok = true;
    return result;
}

PolicyFileResult load_policy_file(const std::string& path) {
    PolicyFileResult result;
    std::string text;
    if (!read_small_file(path, text, result.error)) {
        return result;
    }
    return parse_policy_text(text, path);
}

const ClientPolicy* find_policy(std::span<const ClientPolicy> policies, std::string_view identity) {
    const ClientPolicy* fallback = nullptr;
    for (const ClientPolicy& policy : policies) {
        if (!identity.empty() && policy.identity == identity) {
            return &policy;
        }
        if (policy.identity == any_identity) {
            fallback = &policy;
        }
    }
    return fallback;
}

bool is_loopback_host(const std::string& host) {
    if (host == "localhost") {
        return true;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        return IN6_IS_ADDR_LOOPBACK(&v6) != 0;
    }
    return false;
}

std::string exposure_warning(const std::string& host, std::uint16_t port, bool tls, bool read_only,
                             bool allow_transmit) {
    if (tls || read_only || is_loopback_host(host)) {
        return {};
    }
    const std::string where = host.empty() ? "every address" : host;
    return "listening on " + where + " port " + std::to_string(port) +
           " without TLS: anyone who reaches this port reads every frame on the bus and " +
           (allow_transmit ? "writes the frames --allow-transmit lets through to it"
                           : "writes any frame to it") +
           ", and reaches every other client the same way (use --tls-psk-file or --tls-cert/--tls-key/--tls-ca; "
           "--read-only to only listen)";
}

TransmitPolicy transmit_policy(const ClientPolicy* policy) {
    TransmitPolicy transmit;
    if (policy == nullptr) {
        return transmit;
    }
    transmit.read_only = policy->read_only;
    transmit.allow = policy->has_allow ? &policy->allow : nullptr;
    transmit.max_frames_per_s = policy->max_frames_per_s;
    transmit.burst = policy->burst;
    return transmit;
}

}  // namespace tcpcan::linux_port
