// Who gets a slot when the server is full. Decided here, apart from the loop, so it can
// be tested alone. The rules (README, "Safe to leave running"):
//   - Connections that have not agreed yet (pending) have their own bound; a new one
//     always gets in, closing the oldest pending connection when that bound is reached,
//     so a flood of silent connections can delay a client but never lock it out.
//   - When a connection agrees while --max-clients sessions are established, the session
//     that has been silent longest makes room if it has been silent for at least
//     --evict-idle seconds; otherwise the newcomer is told the server is full.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace tcpcan::linux_port {

struct AdmissionCandidate {
    bool agreed = false;
    std::uint64_t connected_us = 0;
    std::uint64_t last_received_us = 0;
};

// The pending connection to close for a newcomer: the oldest one.
[[nodiscard]] inline std::optional<std::size_t> oldest_pending(std::span<const AdmissionCandidate> all) {
    std::optional<std::size_t> pick;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (!all[i].agreed && (!pick || all[i].connected_us < all[*pick].connected_us)) {
            pick = i;
        }
    }
    return pick;
}

// The agreed session to close for a newly agreed one: the longest silent, if silent for
// at least `min_idle_us`; nothing when every session spoke more recently.
[[nodiscard]] inline std::optional<std::size_t> idlest_agreed(std::span<const AdmissionCandidate> all,
                                                               std::uint64_t now, std::uint64_t min_idle_us) {
    std::optional<std::size_t> pick;
    for (std::size_t i = 0; i < all.size(); ++i) {
        const AdmissionCandidate& c = all[i];
        if (!c.agreed || now - c.last_received_us < min_idle_us) {
            continue;
        }
        if (!pick || c.last_received_us < all[*pick].last_received_us) {
            pick = i;
        }
    }
    return pick;
}

}  // namespace tcpcan::linux_port
