// Which dialect a peer speaks, from the first bytes it sends (README "canip_peer and
// tcpcan on one port"). tcpcan's first message is always 'v'; a canip 4.1 peer's first
// line starts "CANIP/"; a canip 4.0 peer sends frames at once: flags 0 or 1, dlc <= 8.
// No byte starts two of these, so a handful of bytes always decides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tcpcan {

enum class FirstBytes : std::uint8_t {
    need_more,     // too few bytes to tell
    tcpcan,        // a 'v' message
    canip_hello,   // "CANIP/" (a 4.1 hello line; the canip codec checks the rest)
    canip_legacy,  // a canip 4.0 frame
    unknown,       // none of these
};

// Bytes needed to decide in the worst case ("CANIP/").
inline constexpr std::size_t first_bytes_needed = 6;

[[nodiscard]] constexpr FirstBytes classify_first_bytes(std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) {
        return FirstBytes::need_more;
    }
    const std::uint8_t first = bytes[0];
    if (first == 'v') {
        return FirstBytes::tcpcan;
    }
    if (first == 'C') {
        constexpr char prefix[] = "CANIP/";
        for (std::size_t i = 1; i < first_bytes_needed; ++i) {
            if (i >= bytes.size()) {
                return FirstBytes::need_more;
            }
            if (bytes[i] != static_cast<std::uint8_t>(prefix[i])) {
                return FirstBytes::unknown;
            }
        }
        return FirstBytes::canip_hello;
    }
    if (first == 0x00 || first == 0x01) {  // canip flags: bit 0 = extended, nothing else
        if (bytes.size() < 2) {
            return FirstBytes::need_more;
        }
        return bytes[1] <= 8 ? FirstBytes::canip_legacy : FirstBytes::unknown;
    }
    return FirstBytes::unknown;
}

[[nodiscard]] constexpr const char* describe(FirstBytes kind) {
    switch (kind) {
    case FirstBytes::need_more: return "too few bytes to tell the dialect";
    case FirstBytes::tcpcan: return "tcpcan (a 'v' message)";
    case FirstBytes::canip_hello: return "canip 4.1 (a 'CANIP/' hello)";
    case FirstBytes::canip_legacy: return "canip 4.0 (a frame without a hello)";
    case FirstBytes::unknown:
        return "first bytes are neither tcpcan's 'v', a canip hello ('CANIP/') nor a canip 4.0 frame (flags 0 or 1, "
               "dlc <= 8)";
    }
    return "unknown";
}

}  // namespace tcpcan
