// Fuzzes the filter text syntax: parse_filter_entry and parse_filter_list.
//
// Input: byte 0 = entries already in the 64-entry set (b % 70; over 64 means full),
// then the text.
//
// Invariants: no crash or over-read (ASan); a parsed entry is_valid() and, written back
// in the syntax, parses to the same entry; a failure names an error at a position inside
// the text; a list parse is all or nothing (on failure the set is unchanged, on success it
// grew by `added` valid entries); a text without separators parses the same as one entry.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <tcpcan/filter.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

constexpr std::size_t set_capacity = 64;

// The entry in the text syntax (filter.hpp): ranges as LOW-HIGH, masks as ID/MASK, deny
// entries as ID~MASK; 'x' on the id marks extended.
std::string format_entry(const FilterEntry& e) {
    char text[64];
    const char* x = e.extended ? "x" : "";
    if (e.kind == FilterKind::range) {
        std::snprintf(text, sizeof text, "%X%s-%X", static_cast<unsigned>(e.low), x,
                      static_cast<unsigned>(e.high_or_mask));
    } else {
        std::snprintf(text, sizeof text, "%X%s%c%X", static_cast<unsigned>(e.low), x, e.inverted ? '~' : '/',
                      static_cast<unsigned>(e.high_or_mask));
    }
    return text;
}

void check_entry(std::string_view text) {
    const FilterParseResult r = parse_filter_entry(text);
    if (!r.ok) {
        FUZZ_CHECK(r.error != FilterParseError::none);
        FUZZ_CHECK(r.position <= text.size());
        return;
    }
    FUZZ_CHECK(r.error == FilterParseError::none);
    FUZZ_CHECK(r.entry.is_valid());
    const std::string again = format_entry(r.entry);
    const FilterParseResult back = parse_filter_entry(again);
    FUZZ_CHECK(back.ok && back.entry == r.entry);
}

bool has_separator(std::string_view text) {
    for (const char c : text) {
        if (c == ',' || c == '#' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            return true;
        }
    }
    return false;
}

void check_list(std::string_view text, std::size_t prefilled) {
    FilterSet<set_capacity> set;
    for (std::size_t i = 0; i < prefilled && i < set_capacity; ++i) {
        (void)set.add(FilterEntry::exact_id(static_cast<std::uint32_t>(i)));
    }
    const std::vector<FilterEntry> before(set.entries().begin(), set.entries().end());

    const FilterListParseResult r = parse_filter_list(text, set);
    if (!r.ok) {
        FUZZ_CHECK(r.error != FilterParseError::none);
        FUZZ_CHECK(r.position <= text.size());
        FUZZ_CHECK(r.added == 0);
        // All or nothing.
        FUZZ_CHECK(set.size() == before.size());
        for (std::size_t i = 0; i < before.size(); ++i) {
            FUZZ_CHECK(set.entries()[i] == before[i]);
        }
    } else {
        FUZZ_CHECK(r.error == FilterParseError::none);
        FUZZ_CHECK(set.size() == before.size() + r.added);
        std::string written;
        for (std::size_t i = before.size(); i < set.size(); ++i) {
            FUZZ_CHECK(set.entries()[i].is_valid());
            written += i > before.size() ? ", " : "";
            written += format_entry(set.entries()[i]);
        }
        // The written-back list parses to the same entries.
        FilterSet<set_capacity> again;
        const FilterListParseResult back = parse_filter_list(written, again);
        FUZZ_CHECK(back.ok && back.added == r.added);
        for (std::size_t i = 0; i < r.added; ++i) {
            FUZZ_CHECK(again.entries()[i] == set.entries()[before.size() + i]);
        }
    }

    // One token alone: the list parser and the entry parser agree (given room).
    if (!text.empty() && !has_separator(text) && before.size() < set_capacity) {
        const FilterParseResult one = parse_filter_entry(text);
        FUZZ_CHECK(one.ok == r.ok);
        if (one.ok) {
            FUZZ_CHECK(r.added == 1 && set.entries()[before.size()] == one.entry);
        } else {
            FUZZ_CHECK(r.error == one.error && r.position == one.position);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::FuzzInput in(data, size);
    const std::size_t prefilled = in.u8() % 70;
    // The text ends where the input ends, so ASan catches a read past its end.
    const std::span<const std::uint8_t> rest = in.rest();
    const std::string_view text(reinterpret_cast<const char*>(rest.data()), rest.size());
    check_entry(text);
    check_list(text, prefilled);
    return 0;
}
