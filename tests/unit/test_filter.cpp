// Filter entries, filter sets and the filter text parser (include/tcpcan/filter.hpp).
#include <tcpcan/filter.hpp>

#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

using tcpcan::FilterEntry;
using tcpcan::FilterKind;
using tcpcan::FilterListParseResult;
using tcpcan::FilterParseError;
using tcpcan::FilterSet;
using tcpcan::FilterSetBase;
using tcpcan::Frame;
using tcpcan::parse_filter_entry;
using tcpcan::parse_filter_list;

// Readable failure messages instead of doctest's "{?}".
namespace doctest {
template <>
struct StringMaker<FilterEntry> {
    static String convert(const FilterEntry& e) {
        char text[128];
        std::snprintf(text, sizeof text, "{%s 0x%X, 0x%X%s%s}", e.kind == FilterKind::range ? "range" : "mask",
                      static_cast<unsigned>(e.low), static_cast<unsigned>(e.high_or_mask),
                      e.extended ? " extended" : "", e.inverted ? " inverted" : "");
        return text;
    }
};
}  // namespace doctest

namespace {

constexpr bool standard = false;
constexpr bool extended = true;

FilterEntry parse_ok(std::string_view text) {
    const auto result = parse_filter_entry(text);
    INFO("text: ", std::string(text), "; got: ", tcpcan::describe(result.error), " at ", result.position);
    CHECK(result.ok);
    CHECK(result.error == FilterParseError::none);
    return result.entry;
}

void check_entry_error(std::string_view text, FilterParseError error, std::size_t position) {
    const auto result = parse_filter_entry(text);
    INFO("text: ", std::string(text), "; got: ", tcpcan::describe(result.error), " at ", result.position);
    CHECK_FALSE(result.ok);
    CHECK(result.error == error);
    CHECK(result.position == position);
}

void check_list_error(std::string_view text, FilterParseError error, std::size_t position) {
    FilterSet<8> set;
    const FilterListParseResult result = parse_filter_list(text, set);
    INFO("text: ", std::string(text), "; got: ", tcpcan::describe(result.error), " at ", result.position);
    CHECK_FALSE(result.ok);
    CHECK(result.error == error);
    CHECK(result.position == position);
    CHECK(result.added == 0);
    CHECK(set.empty());
}

// Takes the base, as code that does not know the capacity does.
bool passes(const FilterSetBase& set, std::uint32_t id, bool is_extended) {
    return set.matches(id, is_extended);
}

// Size and every entry, in order (REQUIRE is unavailable without exceptions).
void check_entries(const FilterSetBase& set, std::initializer_list<FilterEntry> expected) {
    CHECK(set.size() == expected.size());
    std::size_t i = 0;
    for (const FilterEntry& entry : expected) {
        if (i < set.size()) {
            CAPTURE(i);
            CHECK(set.entries()[i] == entry);
        }
        ++i;
    }
}

Frame make_frame(std::uint32_t id, std::uint8_t flags) {
    Frame frame;
    frame.id = id;
    frame.flags = flags;
    frame.len = 8;
    return frame;
}

}  // namespace

TEST_CASE("filter entry: factories store what the matcher reads") {
    CHECK(FilterEntry::exact_id(0x123) == FilterEntry{0x123, 0x123, FilterKind::range, false, false});
    CHECK(FilterEntry::exact_id(0x123, extended) == FilterEntry{0x123, 0x123, FilterKind::range, true, false});
    CHECK(FilterEntry::id_range(0x100, 0x1FF) == FilterEntry{0x100, 0x1FF, FilterKind::range, false, false});
    CHECK(FilterEntry::id_mask(0x100, 0x700, extended, true) == FilterEntry{0x100, 0x700, FilterKind::mask, true, true});
    CHECK(FilterEntry::exact_id(0x123) != FilterEntry::exact_id(0x123, extended));
    CHECK(FilterEntry::id_mask(0x123, 0x7FF) != FilterEntry::id_mask(0x123, 0x7FF, standard, true));
}

TEST_CASE("filter entry: matching") {
    SUBCASE("exact") {
        const auto e = FilterEntry::exact_id(0x123);
        CHECK(e.matches(0x123, standard));
        CHECK_FALSE(e.matches(0x122, standard));
        CHECK_FALSE(e.matches(0x124, standard));
    }
    SUBCASE("range bounds are inclusive") {
        const auto e = FilterEntry::id_range(0x100, 0x1FF);
        CHECK_FALSE(e.matches(0x0FF, standard));
        CHECK(e.matches(0x100, standard));
        CHECK(e.matches(0x180, standard));
        CHECK(e.matches(0x1FF, standard));
        CHECK_FALSE(e.matches(0x200, standard));
    }
    SUBCASE("mask compares only the mask bits") {
        const auto e = FilterEntry::id_mask(0x120, 0x7F0);
        CHECK(e.matches(0x120, standard));
        CHECK(e.matches(0x12F, standard));
        CHECK_FALSE(e.matches(0x130, standard));
        CHECK_FALSE(e.matches(0x520, standard));
        // Bits of the value outside the mask do not matter either.
        CHECK(FilterEntry::id_mask(0x12F, 0x7F0).matches(0x120, standard));
        CHECK(FilterEntry::id_mask(0x555, 0).matches(0x2AA, standard));
    }
    SUBCASE("standard and extended never cross-match") {
        CHECK_FALSE(FilterEntry::exact_id(0x123).matches(0x123, extended));
        CHECK_FALSE(FilterEntry::exact_id(0x123, extended).matches(0x123, standard));
        CHECK_FALSE(FilterEntry::id_range(0, 0x7FF).matches(0x100, extended));
        CHECK_FALSE(FilterEntry::id_mask(0, 0).matches(0x100, extended));
        CHECK_FALSE(FilterEntry::id_mask(0, 0, extended).matches(0x100, standard));
        CHECK(FilterEntry::id_mask(0, 0, extended).matches(0x1FFF'FFFF, extended));
    }
    SUBCASE("an entry's match is its pattern; inversion is the set's business") {
        CHECK(FilterEntry::id_mask(0x123, 0x7FF, standard, true).matches(0x123, standard));
        CHECK_FALSE(FilterEntry::id_mask(0x123, 0x7FF, standard, true).matches(0x124, standard));
    }
}

TEST_CASE("filter entry: a reversed range matches nothing") {
    // Not valid, but a set takes it when added by hand: it must not match, alone or in a set.
    const auto reversed = FilterEntry::id_range(0x200, 0x100);
    for (std::uint32_t id = 0; id <= tcpcan::max_standard_id; id += 0x40) {
        CHECK_FALSE(reversed.matches(id, standard));
    }
    CHECK_FALSE(reversed.matches(0x180, standard));
    CHECK_FALSE(reversed.matches(0x200, standard));
    CHECK_FALSE(reversed.matches(0x100, standard));
    FilterSet<2> set;
    REQUIRE(set.add(reversed));
    CHECK_FALSE(set.matches(0x180, standard));  // an allow list whose one entry matches nothing
    FilterEntry reversed_deny = reversed;
    reversed_deny.inverted = true;
    set.clear();
    REQUIRE(set.add(reversed_deny));
    CHECK(set.matches(0x180, standard));
}

TEST_CASE("filter entry: validity follows the wire's limits") {
    CHECK(FilterEntry::exact_id(0x7FF).is_valid());
    CHECK_FALSE(FilterEntry::exact_id(0x800).is_valid());
    CHECK(FilterEntry::exact_id(0x800, extended).is_valid());
    CHECK(FilterEntry::exact_id(0x1FFF'FFFF, extended).is_valid());
    CHECK_FALSE(FilterEntry::exact_id(0x2000'0000, extended).is_valid());
    CHECK_FALSE(FilterEntry::id_range(0x200, 0x100).is_valid());
    CHECK(FilterEntry::id_range(0x100, 0x100).is_valid());
    CHECK_FALSE(FilterEntry::id_mask(0x123, 0xFFF).is_valid());
    CHECK(FilterEntry::id_mask(0x7FF, 0x100).is_valid());  // a mask's value may exceed its mask
}

TEST_CASE("parse entry: canip_peer exact ids") {
    CHECK(parse_ok("123") == FilterEntry::exact_id(0x123));
    CHECK(parse_ok("0") == FilterEntry::exact_id(0));
    CHECK(parse_ok("7FF") == FilterEntry::exact_id(0x7FF));
    CHECK(parse_ok("7ff") == FilterEntry::exact_id(0x7FF));
    CHECK(parse_ok("0x123") == FilterEntry::exact_id(0x123));
    CHECK(parse_ok("0X7fF") == FilterEntry::exact_id(0x7FF));
    CHECK(parse_ok("00000123") == FilterEntry::exact_id(0x123));  // digit count matters only for candump forms
    CHECK(parse_ok("00000000000000000000123") == FilterEntry::exact_id(0x123));  // leading zeros never overflow
    CHECK(parse_ok("1ABx") == FilterEntry::exact_id(0x1AB, extended));
    CHECK(parse_ok("1abX") == FilterEntry::exact_id(0x1AB, extended));
    CHECK(parse_ok("123x") == FilterEntry::exact_id(0x123, extended));
    CHECK(parse_ok("0x1ABx") == FilterEntry::exact_id(0x1AB, extended));
    CHECK(parse_ok("1FFFFFFFx") == FilterEntry::exact_id(0x1FFF'FFFF, extended));
    // "0x" with no digit after it is the id 0 with the extended suffix, not an empty prefix.
    CHECK(parse_ok("0x") == FilterEntry::exact_id(0, extended));
    CHECK(parse_ok("0X") == FilterEntry::exact_id(0, extended));
}

TEST_CASE("parse entry: canip_peer ranges") {
    CHECK(parse_ok("100-1FF") == FilterEntry::id_range(0x100, 0x1FF));
    CHECK(parse_ok("0x100-0x1ff") == FilterEntry::id_range(0x100, 0x1FF));
    CHECK(parse_ok("123-123") == FilterEntry::exact_id(0x123));
    CHECK(parse_ok("0-7FF") == FilterEntry::id_range(0, 0x7FF));
    // Extended when either bound has the suffix...
    CHECK(parse_ok("100x-1FF") == FilterEntry::id_range(0x100, 0x1FF, extended));
    CHECK(parse_ok("100-1FFx") == FilterEntry::id_range(0x100, 0x1FF, extended));
    CHECK(parse_ok("100x-1FFX") == FilterEntry::id_range(0x100, 0x1FF, extended));
    // ...or is above 0x7FF.
    CHECK(parse_ok("100-800") == FilterEntry::id_range(0x100, 0x800, extended));
    CHECK(parse_ok("7FF-800") == FilterEntry::id_range(0x7FF, 0x800, extended));
    CHECK(parse_ok("10000-1FFFFFFF") == FilterEntry::id_range(0x10000, 0x1FFF'FFFF, extended));
}

TEST_CASE("parse entry: canip_peer id/mask") {
    CHECK(parse_ok("100/700") == FilterEntry::id_mask(0x100, 0x700));
    CHECK(parse_ok("0x100/0x700") == FilterEntry::id_mask(0x100, 0x700));
    CHECK(parse_ok("100x/700") == FilterEntry::id_mask(0x100, 0x700, extended));
    CHECK(parse_ok("100x/1FFFFF00") == FilterEntry::id_mask(0x100, 0x1FFF'FF00, extended));
    // A standard entry keeps only the 11 mask bits a standard id has.
    CHECK(parse_ok("100/1FFFFFFF") == FilterEntry::id_mask(0x100, 0x7FF));
    CHECK(parse_ok("0/0") == FilterEntry::id_mask(0, 0));
}

TEST_CASE("parse entry: candump id:mask and id~mask") {
    CHECK(parse_ok("123:7FF") == FilterEntry::id_mask(0x123, 0x7FF));
    CHECK(parse_ok("123~7FF") == FilterEntry::id_mask(0x123, 0x7FF, standard, true));
    CHECK(parse_ok("400:700") == FilterEntry::id_mask(0x400, 0x700));
    CHECK(parse_ok("400~7f0") == FilterEntry::id_mask(0x400, 0x7F0, standard, true));
    CHECK(parse_ok("0:0") == FilterEntry::id_mask(0, 0));
    CHECK(parse_ok("0x123:0x7FF") == FilterEntry::id_mask(0x123, 0x7FF));
    // Extended: written with 8 digits (candump's rule), even when the value is small...
    CHECK(parse_ok("12345678:1FFFFFFF") == FilterEntry::id_mask(0x1234'5678, 0x1FFF'FFFF, extended));
    CHECK(parse_ok("00000123:1FFFFFFF") == FilterEntry::id_mask(0x123, 0x1FFF'FFFF, extended));
    CHECK(parse_ok("00000123~1FFFFFFF") == FilterEntry::id_mask(0x123, 0x1FFF'FFFF, extended, true));
    CHECK(parse_ok("0x00000123:7FF") == FilterEntry::id_mask(0x123, 0x7FF, extended));  // prefix not counted
    // ...but 7 digits with a small value stay standard.
    CHECK(parse_ok("0000123:7FF") == FilterEntry::id_mask(0x123, 0x7FF));
    // Extended: above 0x7FF, or with the suffix.
    CHECK(parse_ok("800:7FF") == FilterEntry::id_mask(0x800, 0x7FF, extended));
    CHECK(parse_ok("12345~FFFF") == FilterEntry::id_mask(0x12345, 0xFFFF, extended, true));
    CHECK(parse_ok("123x:7FF") == FilterEntry::id_mask(0x123, 0x7FF, extended));
    // Standard candump masks are cut to 11 bits.
    CHECK(parse_ok("123:1FFFFFFF") == FilterEntry::id_mask(0x123, 0x7FF));
}

TEST_CASE("parse entry: errors name the problem and where it is") {
    SUBCASE("empty") { check_entry_error("", FilterParseError::empty_entry, 0); }
    SUBCASE("not a hex digit") {
        check_entry_error("g12", FilterParseError::not_hex_digit, 0);
        check_entry_error("12g", FilterParseError::not_hex_digit, 2);
        check_entry_error("x", FilterParseError::not_hex_digit, 0);
        check_entry_error(" 123", FilterParseError::not_hex_digit, 0);
        check_entry_error(":7FF", FilterParseError::not_hex_digit, 0);
        check_entry_error("123:g", FilterParseError::not_hex_digit, 4);
        check_entry_error("123::7FF", FilterParseError::not_hex_digit, 4);
        check_entry_error("123:7FG", FilterParseError::not_hex_digit, 6);
        check_entry_error("100-1FZ", FilterParseError::not_hex_digit, 6);
        // A mask is not an id: no 'x' suffix on it.
        check_entry_error("123:7FFx", FilterParseError::not_hex_digit, 7);
        check_entry_error("100/700x", FilterParseError::not_hex_digit, 7);
    }
    SUBCASE("number too large for 29 bits") {
        check_entry_error("20000000x", FilterParseError::number_too_large, 0);
        check_entry_error("0x20000000", FilterParseError::number_too_large, 0);
        check_entry_error("FFFFFFFFFFFFFFFFFFFFFFFF", FilterParseError::number_too_large, 0);
        check_entry_error("10000000000000123", FilterParseError::number_too_large, 0);  // 2^64 + 0x123: no wrap-around
        check_entry_error("123:20000000", FilterParseError::number_too_large, 4);
        check_entry_error("100-0x20000000", FilterParseError::number_too_large, 4);
        check_entry_error("100000000:0", FilterParseError::number_too_large, 0);
    }
    SUBCASE("standard id above 0x7FF") {
        check_entry_error("800", FilterParseError::standard_id_too_large, 0);
        check_entry_error("0x800", FilterParseError::standard_id_too_large, 0);
        check_entry_error("1FFFFFFF", FilterParseError::standard_id_too_large, 0);
        check_entry_error("800/7FF", FilterParseError::standard_id_too_large, 0);
    }
    SUBCASE("range low above high") {
        check_entry_error("1FF-100", FilterParseError::range_reversed, 4);
        check_entry_error("200x-100x", FilterParseError::range_reversed, 5);
        check_entry_error("0x124-0x123", FilterParseError::range_reversed, 6);
    }
    SUBCASE("missing value after a separator") {
        check_entry_error("123:", FilterParseError::missing_value, 4);
        check_entry_error("123~", FilterParseError::missing_value, 4);
        check_entry_error("100/", FilterParseError::missing_value, 4);
        check_entry_error("100-", FilterParseError::missing_value, 4);
        check_entry_error("1ABx-", FilterParseError::missing_value, 5);
    }
    SUBCASE("trailing garbage") {
        check_entry_error("123 456", FilterParseError::trailing_garbage, 3);
        check_entry_error("123 ", FilterParseError::trailing_garbage, 3);
        check_entry_error("123;", FilterParseError::trailing_garbage, 3);
        check_entry_error("123x5", FilterParseError::trailing_garbage, 4);
        check_entry_error("1ABxx", FilterParseError::trailing_garbage, 4);
        check_entry_error("0xx", FilterParseError::trailing_garbage, 2);
        check_entry_error("0xg", FilterParseError::trailing_garbage, 2);  // "0x" is id 0 extended here
        check_entry_error("100-1FF-2FF", FilterParseError::trailing_garbage, 7);
        check_entry_error("100-1FFxg", FilterParseError::trailing_garbage, 8);
        check_entry_error("123:7FF:7FF", FilterParseError::trailing_garbage, 7);
        check_entry_error("123,456", FilterParseError::trailing_garbage, 3);  // lists are parse_filter_list's job
    }
}

TEST_CASE("describe: every parse error has its own message") {
    const FilterParseError all[] = {
        FilterParseError::none,           FilterParseError::empty_entry,      FilterParseError::not_hex_digit,
        FilterParseError::number_too_large, FilterParseError::standard_id_too_large, FilterParseError::range_reversed,
        FilterParseError::missing_value,  FilterParseError::set_full,         FilterParseError::trailing_garbage,
    };
    const char* fallback = tcpcan::describe(static_cast<FilterParseError>(200));
    for (const FilterParseError a : all) {
        CHECK(std::strlen(tcpcan::describe(a)) > 0);
        CHECK(std::strcmp(tcpcan::describe(a), fallback) != 0);
        for (const FilterParseError b : all) {
            if (a != b) {
                CHECK(std::strcmp(tcpcan::describe(a), tcpcan::describe(b)) != 0);
            }
        }
    }
    CHECK(std::string_view(tcpcan::describe(FilterParseError::not_hex_digit)).find("hexadecimal") !=
          std::string_view::npos);
    CHECK(std::string_view(tcpcan::describe(FilterParseError::standard_id_too_large)).find("0x7FF") !=
          std::string_view::npos);
}

TEST_CASE("filter set: capacity, add, clear") {
    FilterSet<2> set;
    CHECK(set.capacity() == 2);
    CHECK(set.empty());
    CHECK_FALSE(set.full());
    CHECK(set.add(FilterEntry::exact_id(1)));
    CHECK(set.add(FilterEntry::exact_id(2)));
    CHECK(set.full());
    CHECK_FALSE(set.add(FilterEntry::exact_id(3)));
    check_entries(set, {FilterEntry::exact_id(1), FilterEntry::exact_id(2)});
    CHECK(set.entries().size() == 2);
    set.clear();
    CHECK(set.empty());
    CHECK(set.entries().empty());
    CHECK(set.add(FilterEntry::exact_id(3)));
    check_entries(set, {FilterEntry::exact_id(3)});
}

TEST_CASE("filter set: copies own their storage") {
    FilterSet<4> a;
    CHECK(a.add(FilterEntry::exact_id(0x123)));
    FilterSet<4> b = a;
    CHECK(a.add(FilterEntry::exact_id(0x456)));
    CHECK(b.size() == 1);
    CHECK(b.entries().data() != a.entries().data());
    CHECK(b.matches(0x123, standard));
    CHECK_FALSE(b.matches(0x456, standard));
    b = a;
    CHECK(b.size() == 2);
    CHECK(b.matches(0x456, standard));
    a.clear();
    CHECK(b.size() == 2);
    const FilterSet<4>& same = b;
    b = same;  // self-assignment keeps the entries
    CHECK(b.size() == 2);
}

TEST_CASE("filter set: matching rules") {
    SUBCASE("an empty set passes everything") {
        const FilterSet<4> set;
        CHECK(passes(set, 0, standard));
        CHECK(passes(set, 0x7FF, standard));
        CHECK(passes(set, 0x1FFF'FFFF, extended));
    }
    SUBCASE("allow list: a frame must match one entry") {
        FilterSet<4> set;
        CHECK(parse_filter_list("123 200-2FF 1ABx", set).ok);
        CHECK(passes(set, 0x123, standard));
        CHECK(passes(set, 0x200, standard));
        CHECK(passes(set, 0x2FF, standard));
        CHECK(passes(set, 0x1AB, extended));
        CHECK_FALSE(passes(set, 0x124, standard));
        CHECK_FALSE(passes(set, 0x300, standard));
        CHECK_FALSE(passes(set, 0x1AB, standard));
        CHECK_FALSE(passes(set, 0x123, extended));  // the standard entry does not admit extended 0x123
        CHECK_FALSE(passes(set, 0x250, extended));
    }
    SUBCASE("deny list alone: everything except the denied") {
        FilterSet<4> set;
        CHECK(parse_filter_list("123~7FF", set).ok);
        CHECK_FALSE(passes(set, 0x123, standard));
        CHECK(passes(set, 0x124, standard));
        CHECK(passes(set, 0x123, extended));
        CHECK(passes(set, 0x1234'5678, extended));
    }
    SUBCASE("several deny entries all deny (unlike SocketCAN's OR)") {
        FilterSet<4> set;
        CHECK(parse_filter_list("123~7FF,456~7FF", set).ok);
        CHECK_FALSE(passes(set, 0x123, standard));
        CHECK_FALSE(passes(set, 0x456, standard));
        CHECK(passes(set, 0x789, standard));
    }
    SUBCASE("mixed: the deny list wins over the allow list") {
        FilterSet<4> set;
        CHECK(parse_filter_list("100-1FF, 150~7FF", set).ok);
        CHECK(passes(set, 0x100, standard));
        CHECK(passes(set, 0x151, standard));
        CHECK_FALSE(passes(set, 0x150, standard));
        CHECK_FALSE(passes(set, 0x200, standard));
        CHECK_FALSE(passes(set, 0x150, extended));  // no extended allow entry
        // Order does not matter.
        FilterSet<4> reversed;
        CHECK(parse_filter_list("150~7FF 100-1FF", reversed).ok);
        CHECK_FALSE(passes(reversed, 0x150, standard));
        CHECK(passes(reversed, 0x151, standard));
    }
    SUBCASE("an inverted range denies the range") {
        FilterSet<4> set;
        CHECK(set.add(FilterEntry{0x100, 0x1FF, FilterKind::range, false, true}));
        CHECK_FALSE(passes(set, 0x100, standard));
        CHECK_FALSE(passes(set, 0x1FF, standard));
        CHECK(passes(set, 0x200, standard));
    }
    SUBCASE("id/mask admits the masked block") {
        FilterSet<4> set;
        CHECK(parse_filter_list("100/700", set).ok);
        CHECK(passes(set, 0x100, standard));
        CHECK(passes(set, 0x1FF, standard));
        CHECK_FALSE(passes(set, 0x0FF, standard));
        CHECK_FALSE(passes(set, 0x200, standard));
        CHECK_FALSE(passes(set, 0x500, standard));
    }
}

TEST_CASE("filter set: frames, and error frames always pass") {
    constexpr std::uint8_t error = tcpcan::frame_flag::error;
    constexpr std::uint8_t ext = tcpcan::frame_flag::extended;
    FilterSet<4> allow;
    CHECK(parse_filter_list("123", allow).ok);
    CHECK(allow.matches(make_frame(0x123, 0)));
    CHECK_FALSE(allow.matches(make_frame(0x123, ext)));
    CHECK_FALSE(allow.matches(make_frame(0x004, 0)));
    CHECK(allow.matches(make_frame(0x004, error)));  // error class in the id, not an identifier

    FilterSet<4> deny_all;  // every standard and every extended data frame denied
    CHECK(parse_filter_list("0~0 0x~0", deny_all).ok);
    CHECK_FALSE(deny_all.matches(make_frame(0x123, 0)));
    CHECK_FALSE(deny_all.matches(make_frame(0x1234'5678, ext)));
    CHECK(deny_all.matches(make_frame(0x123, error)));
}

TEST_CASE("parse list: separators, comments, files") {
    SUBCASE("commas and whitespace") {
        FilterSet<8> set;
        const auto result = parse_filter_list("123,456 1ABx ,\t100-1FF,\n123~7FF", set);
        CHECK(result.ok);
        CHECK(result.error == FilterParseError::none);
        CHECK(result.added == 5);
        check_entries(set, {
            FilterEntry::exact_id(0x123),
            FilterEntry::exact_id(0x456),
            FilterEntry::exact_id(0x1AB, extended),
            FilterEntry::id_range(0x100, 0x1FF),
            FilterEntry::id_mask(0x123, 0x7FF, standard, true),
        });
    }
    SUBCASE("empty text and comment-only text add nothing") {
        FilterSet<2> set;
        for (const std::string_view text : {"", "   ", "\n\n", "# nothing here\n", "  # a\n\t# b"}) {
            INFO("text: ", std::string(text));
            const auto result = parse_filter_list(text, set);
            CHECK(result.ok);
            CHECK(result.added == 0);
            CHECK(set.empty());
        }
    }
    SUBCASE("a filter file") {
        constexpr std::string_view file =
            "# engine ECUs\r\n"
            "100-1FF   # whole block\r\n"
            "\r\n"
            "   18FEF100x, 18FEF200x\n"
            "#123 commented out\n"
            "7DF#no space before the comment\n"
            "7E8~7FF";  // no final newline
        FilterSet<8> set;
        const auto result = parse_filter_list(file, set);
        CHECK(result.ok);
        CHECK(result.added == 5);
        check_entries(set, {
            FilterEntry::id_range(0x100, 0x1FF),
            FilterEntry::exact_id(0x18FE'F100, extended),
            FilterEntry::exact_id(0x18FE'F200, extended),
            FilterEntry::exact_id(0x7DF),
            FilterEntry::id_mask(0x7E8, 0x7FF, standard, true),
        });
    }
    SUBCASE("entries are appended to what the set holds") {
        FilterSet<4> set;
        CHECK(set.add(FilterEntry::exact_id(1)));
        const auto result = parse_filter_list("2 3", set);
        CHECK(result.ok);
        CHECK(result.added == 2);
        check_entries(set, {FilterEntry::exact_id(1), FilterEntry::exact_id(2), FilterEntry::exact_id(3)});
    }
}

TEST_CASE("parse list: errors give the position in the whole text") {
    SUBCASE("entry errors are offset by the entry's start") {
        check_list_error("123, 45g", FilterParseError::not_hex_digit, 7);
        check_list_error("100 800", FilterParseError::standard_id_too_large, 4);
        check_list_error("1 2-1", FilterParseError::range_reversed, 4);
        check_list_error("7FF, 123:", FilterParseError::missing_value, 9);
        check_list_error("7FF 123:\n456", FilterParseError::missing_value, 8);
        check_list_error("1 20000000x", FilterParseError::number_too_large, 2);
        check_list_error("1 100-1FF-2FF", FilterParseError::trailing_garbage, 9);
        check_list_error("1;2", FilterParseError::trailing_garbage, 1);
        check_list_error("# header\n100-1FF\n  12Q\n", FilterParseError::not_hex_digit, 21);
    }
    SUBCASE("a comma needs an entry on both sides") {
        check_list_error(",123", FilterParseError::empty_entry, 0);
        check_list_error("  ,123", FilterParseError::empty_entry, 2);
        check_list_error("123,,456", FilterParseError::empty_entry, 4);
        check_list_error("123, ,456", FilterParseError::empty_entry, 5);
        check_list_error("123,", FilterParseError::empty_entry, 4);
        check_list_error("123, # trailing comma\n", FilterParseError::empty_entry, 22);
        check_list_error(",", FilterParseError::empty_entry, 0);
    }
    SUBCASE("a comma may be followed by a line break and comments") {
        FilterSet<4> set;
        const auto result = parse_filter_list("123, # more below\n\n456", set);
        CHECK(result.ok);
        CHECK(set.size() == 2);
    }
}

TEST_CASE("parse list: too many entries, and errors leave the set unchanged") {
    SUBCASE("overflowing an empty set") {
        FilterSet<2> set;
        const auto result = parse_filter_list("1, 2, 3, 4", set);
        CHECK_FALSE(result.ok);
        CHECK(result.error == FilterParseError::set_full);
        CHECK(result.position == 6);  // the first entry that does not fit
        CHECK(result.added == 0);
        CHECK(set.empty());
    }
    SUBCASE("overflowing a partly filled set") {
        FilterSet<3> set;
        CHECK(set.add(FilterEntry::exact_id(0x7FF)));
        const auto result = parse_filter_list("1 2 3", set);
        CHECK(result.error == FilterParseError::set_full);
        CHECK(result.position == 4);
        check_entries(set, {FilterEntry::exact_id(0x7FF)});
    }
    SUBCASE("exactly full is fine") {
        FilterSet<3> set;
        const auto result = parse_filter_list("1 2 3", set);
        CHECK(result.ok);
        CHECK(result.added == 3);
        CHECK(set.full());
    }
    SUBCASE("a syntax error after good entries adds none of them") {
        FilterSet<4> set;
        CHECK(set.add(FilterEntry::exact_id(0x7FF)));
        const auto result = parse_filter_list("1, 2, zz", set);
        CHECK(result.error == FilterParseError::not_hex_digit);
        CHECK(result.position == 6);
        check_entries(set, {FilterEntry::exact_id(0x7FF)});
    }
    SUBCASE("the first problem in text order is the one reported") {
        FilterSet<1> set;
        const auto result = parse_filter_list("1 2 zz", set);
        CHECK(result.error == FilterParseError::set_full);
        CHECK(result.position == 2);
    }
}

// The whole path runs at compile time.
namespace {
constexpr bool compile_time_check() {
    FilterSet<4> set;
    if (!parse_filter_list("100-1FF 150~7FF 1ABx", set).ok) {
        return false;
    }
    const FilterSet<4> copy = set;
    return copy.size() == 3 && copy.matches(0x100, false) && !copy.matches(0x150, false) &&
           copy.matches(0x1AB, true) && !copy.matches(0x1AC, true) && !copy.matches(0x200, false);
}
}  // namespace
static_assert(compile_time_check());
static_assert(parse_filter_entry("1ABx").entry == FilterEntry::exact_id(0x1AB, true));
static_assert(parse_filter_entry("12g").position == 2);
