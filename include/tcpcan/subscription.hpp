// Filter entries as the version-2 's' (subscribe) message carries them: 9 bytes of
// kind, a, b (PROTOCOL.md). The decoder has already checked the values' ranges.
#pragma once

#include <cstdint>

#include "encoder.hpp"
#include "filter.hpp"
#include "message.hpp"

namespace tcpcan {

[[nodiscard]] constexpr WireFilterEntry filter_entry_to_wire(const FilterEntry& entry) {
    std::uint8_t kind = 0;
    kind |= entry.extended ? wire_filter::extended : 0;
    kind |= entry.inverted ? wire_filter::inverted : 0;
    kind |= entry.kind == FilterKind::mask ? wire_filter::mask_form : 0;
    return {kind, entry.low, entry.high_or_mask};
}

[[nodiscard]] constexpr FilterEntry filter_entry_from_wire(const WireFilterEntry& wire) {
    FilterEntry entry;
    entry.low = wire.a;
    entry.high_or_mask = wire.b;
    entry.kind = (wire.kind & wire_filter::mask_form) ? FilterKind::mask : FilterKind::range;
    entry.extended = (wire.kind & wire_filter::extended) != 0;
    entry.inverted = (wire.kind & wire_filter::inverted) != 0;
    return entry;
}

}  // namespace tcpcan
