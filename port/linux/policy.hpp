// Least privilege per authenticated client: the policy file (--policy-file), and its
// translation into the Router's TransmitPolicy (include/tcpcan/router.hpp), which enforces it.
//
// Policy file: INI-like, one section per identity (the PSK identity, or the CN of the
// client certificate), and a `[*]` section for every authenticated identity not named.
// An identity with no section and no `[*]` is not restricted.
//
//   # a bench Pi may only listen
//   [pi-bench]
//   read-only
//
//   [desktop]
//   allow = 7DF, 7E0-7EF      # transmit allow-list, filter syntax of filter.hpp
//   rate = 100                # frames per second towards the bus (token bucket)
//   burst = 20                # frames back to back after a quiet spell (default: rate)
//
//   [*]
//   read-only
//
// Settings: `read-only` (alone on its line) — no frame of this client reaches the bus or
// other clients; `allow = LIST` — only frames matching the list pass (error frames never:
// the filter syntax cannot name them); `rate = N` and `burst = N`, whole numbers 1-1000000.
// Blank lines and '#' comments are ignored. A section may appear once; an unknown setting,
// a setting outside a section or a bad value is an error naming the file and line.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tcpcan/filter.hpp>
#include <tcpcan/frame.hpp>
#include <tcpcan/router.hpp>

namespace tcpcan::linux_port {

inline constexpr std::string_view any_identity = "*";
inline constexpr std::uint32_t max_policy_rate = 1'000'000;

struct ClientPolicy {
    std::string identity;  // or any_identity
    bool read_only = false;
    bool has_allow = false;
    FilterSet<64> allow;
    std::uint32_t max_frames_per_s = 0;  // 0 = unlimited
    std::uint32_t burst = 0;             // 0 = max_frames_per_s
};

struct PolicyFileResult {
    bool ok = false;
    std::vector<ClientPolicy> policies;  // file order
    std::string error;                   // "FILE line N: what is wrong", when !ok
};

[[nodiscard]] PolicyFileResult parse_policy_text(std::string_view text, std::string_view source);
[[nodiscard]] PolicyFileResult load_policy_file(const std::string& path);

// The policy for `identity`: its own section, else `[*]`, else nullptr (unrestricted).
// An empty identity (an unauthenticated client) only gets `[*]`.
[[nodiscard]] const ClientPolicy* find_policy(std::span<const ClientPolicy> policies, std::string_view identity);

// Whether `host` (as given to listen) is a loopback address: "localhost", 127.0.0.0/8, ::1.
// A name other than "localhost" counts as not loopback: it may resolve to anything.
[[nodiscard]] bool is_loopback_host(const std::string& host);

// The one warning a server logs at start when it listens beyond loopback without TLS and
// without --read-only, saying what is exposed; empty when there is nothing to warn about.
[[nodiscard]] std::string exposure_warning(const std::string& host, std::uint16_t port, bool tls, bool read_only,
                                           bool allow_transmit);

// The Router's TransmitPolicy for one client (one place decides: the Router enforces and
// counts read-only, the allow-list and the rate; this only translates). nullptr gives the
// unrestricted policy; `policy` must outlive the Router's use of the result (its allow-list
// is pointed to, not copied).
[[nodiscard]] TransmitPolicy transmit_policy(const ClientPolicy* policy);

}  // namespace tcpcan::linux_port
