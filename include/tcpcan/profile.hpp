// Compile-time profiles: what a Session (and its Decoder) carries. The Linux port, the
// tools and the tests use FullProfile, which is the default everywhere and changes nothing.
// A microcontroller gateway picks GatewayProfile (or its own struct with the same members)
// and pays neither flash nor RAM for what it leaves out:
//
//   Session<384, 16, 28, 4, GatewayProfile> session(options, now);
//
// A profile is a plain struct of constants, checked by the SessionProfile concept.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace tcpcan {

/// Everything this project implements (the default).
struct FullProfile {
    /// CAN FD frames reach the bus queue (each queued frame is a whole 80-byte Frame).
    /// false: the bus queue holds classic frames only (16 bytes each); FD frames from the
    /// peer are dropped and counted (SessionStats::drop_not_classic), FD frames from the
    /// bus are refused by send_frame as invalid.
    static constexpr bool fd_frames = true;
    /// Version 1 (plain tcpcan) can be agreed. false: the lowest accepted version is 2, so
    /// a version-1 peer is answered with `v 0` and the 'd' codec is not linked in.
    static constexpr bool version_1 = true;
    /// Session::set_local_subscription (ask the peer to filter, 's' messages sent).
    /// false: the session never sends 's' and needs no room in its output for one; a
    /// peer's subscription is still honoured.
    static constexpr bool local_subscription = true;
    /// 'c' messages this side sends carry an English text (describe()). false: the reason
    /// code alone (3 bytes); the texts and their tables are not linked in. A peer's text
    /// is still readable through close_text().
    static constexpr bool close_texts = true;
    /// Session::request_bus and a server's answer to a client's bus request ('b',
    /// feature::bus). false: the session never offers the feature (a 'b' is a protocol
    /// error) and keeps no room for a bus name.
    static constexpr bool bus_request = true;
    /// Statistics counters (SessionStats). 32 bits wrap after 4 G events.
    using Counter = std::uint64_t;
    /// Bytes bridge_step reads from the stream per pass (a stack buffer).
    static constexpr std::size_t bridge_read_bytes = 256;
};

/// A microcontroller gateway between a classic CAN bus and one version-2 peer: no CAN FD,
/// no version 1, no local subscription, close reasons as codes, 32-bit counters. With
/// Session<384, 16, 28, 4, GatewayProfile> the session is under 2 KiB (tests/core measures
/// it; see port/cortex-m for a complete gateway).
struct GatewayProfile {
    static constexpr bool fd_frames = false;
    static constexpr bool version_1 = false;
    static constexpr bool local_subscription = false;
    static constexpr bool close_texts = false;
    static constexpr bool bus_request = false;
    using Counter = std::uint32_t;
    static constexpr std::size_t bridge_read_bytes = 64;
};

/// What a profile must define (see FullProfile for the meaning of each member).
template <class P>
concept SessionProfile = requires {
    { P::fd_frames } -> std::convertible_to<bool>;
    { P::version_1 } -> std::convertible_to<bool>;
    { P::local_subscription } -> std::convertible_to<bool>;
    { P::close_texts } -> std::convertible_to<bool>;
    { P::bus_request } -> std::convertible_to<bool>;
    { P::bridge_read_bytes } -> std::convertible_to<std::size_t>;
    typename P::Counter;
} && std::unsigned_integral<typename P::Counter> && (P::bridge_read_bytes >= 8);

}  // namespace tcpcan
