// Fuzzes the Linux port's start-up files: the PSK file (tls_options.hpp) and the policy
// file (policy.hpp). They come from the operator, not the network, but a typo must give a
// named error, never a crash or a half-read file.
//
// Input: byte 0 selects the parser (even: PSK file, odd: policy file), the rest is the text.
//
// Invariants: no crash or over-read (ASan); a failure returns nothing and names the source
// and a reason; a parsed PSK file holds 1+ unique printable identities with 16-64 byte keys
// and parses the same again when written back; a parsed policy file has unique identities,
// each found by find_policy, an allow-list exactly when has_allow, no burst without a rate,
// and its TransmitPolicy says what the file says.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "policy.hpp"
#include "tls_options.hpp"

namespace {

using namespace tcpcan;
using namespace tcpcan::linux_port;

constexpr std::string_view source = "fuzz.conf";

bool printable(std::string_view text) {
    for (const char c : text) {
        if (c < 0x20 || c > 0x7E) {
            return false;
        }
    }
    return true;
}

void check_failure(bool ok, std::size_t items, const std::string& error) {
    FUZZ_CHECK(!ok);
    FUZZ_CHECK(items == 0);
    FUZZ_CHECK(error.size() > source.size() + 2);
    FUZZ_CHECK(error.compare(0, source.size(), source) == 0);
}

void check_psk(std::string_view text) {
    const PskFileResult parsed = parse_psk_text(text, source);
    if (!parsed.ok) {
        check_failure(parsed.ok, parsed.entries.size(), parsed.error);
        return;
    }
    FUZZ_CHECK(parsed.error.empty());
    FUZZ_CHECK(!parsed.entries.empty());
    std::string written;
    for (std::size_t i = 0; i < parsed.entries.size(); ++i) {
        const PskEntry& entry = parsed.entries[i];
        FUZZ_CHECK(!entry.identity.empty() && entry.identity.size() <= max_identity_length);
        FUZZ_CHECK(printable(entry.identity));
        FUZZ_CHECK(entry.key.size() >= min_psk_bytes && entry.key.size() <= max_psk_bytes);
        for (std::size_t j = 0; j < i; ++j) {
            FUZZ_CHECK(parsed.entries[j].identity != entry.identity);
        }
        written += entry.identity + ":";
        for (const std::uint8_t byte : entry.key) {
            char hex[3];
            std::snprintf(hex, sizeof hex, "%02x", byte);
            written += hex;
        }
        written += "\n";
    }
    const PskFileResult again = parse_psk_text(written, source);
    FUZZ_CHECK(again.ok);
    FUZZ_CHECK(again.entries.size() == parsed.entries.size());
    for (std::size_t i = 0; i < again.entries.size(); ++i) {
        FUZZ_CHECK(again.entries[i].identity == parsed.entries[i].identity);
        FUZZ_CHECK(again.entries[i].key == parsed.entries[i].key);
    }
}

void check_policy(std::string_view text) {
    const PolicyFileResult parsed = parse_policy_text(text, source);
    if (!parsed.ok) {
        check_failure(parsed.ok, parsed.policies.size(), parsed.error);
        return;
    }
    FUZZ_CHECK(parsed.error.empty());
    for (std::size_t i = 0; i < parsed.policies.size(); ++i) {
        const ClientPolicy& policy = parsed.policies[i];
        FUZZ_CHECK(!policy.identity.empty() && policy.identity.size() <= max_identity_length);
        FUZZ_CHECK(policy.has_allow == !policy.allow.empty());
        FUZZ_CHECK(policy.burst == 0 || policy.max_frames_per_s != 0);
        FUZZ_CHECK(policy.max_frames_per_s <= max_policy_rate && policy.burst <= max_policy_rate);
        for (const FilterEntry& entry : policy.allow.entries()) {
            FUZZ_CHECK(entry.is_valid());
        }
        for (std::size_t j = 0; j < i; ++j) {
            FUZZ_CHECK(parsed.policies[j].identity != policy.identity);
        }
        FUZZ_CHECK(find_policy(parsed.policies, policy.identity) == &policy);
        const TransmitPolicy transmit = transmit_policy(&policy);
        FUZZ_CHECK(transmit.read_only == policy.read_only);
        FUZZ_CHECK((transmit.allow != nullptr) == policy.has_allow);
        FUZZ_CHECK(transmit.max_frames_per_s == policy.max_frames_per_s && transmit.burst == policy.burst);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    if ((data[0] & 1) == 0) {
        check_psk(text);
    } else {
        check_policy(text);
    }
    return 0;
}
