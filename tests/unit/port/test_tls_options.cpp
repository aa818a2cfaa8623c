// The PSK file: good files, every refusal naming its line, and the permission check.
#include <doctest/doctest.h>

#include "temp_files.hpp"
#include "tls_options.hpp"

using namespace tcpcan::linux_port;

namespace {
const std::string key32 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
const std::string key16 = "000102030405060708090a0b0c0d0e0f";
}  // namespace

TEST_CASE("a PSK file with comments, blank lines, CRLF and spaces parses in order") {
    const std::string text = "# keys for the bench\n\n  pi-bench : " + key32 + "  \r\ndesktop:" + key16 +
                             "\n   # indented comment\nhost:with:colons:" + key16;
    const PskFileResult parsed = parse_psk_text(text, "keys.psk");
    REQUIRE(parsed.ok);
    CHECK(parsed.error.empty());
    REQUIRE(parsed.entries.size() == 3);
    CHECK(parsed.entries[0].identity == "pi-bench");
    REQUIRE(parsed.entries[0].key.size() == 32);
    CHECK(parsed.entries[0].key[0] == 0x00);
    CHECK(parsed.entries[0].key[1] == 0x11);
    CHECK(parsed.entries[0].key[15] == 0xFF);
    CHECK(parsed.entries[0].key[31] == 0xFF);
    CHECK(parsed.entries[0].key[26] == 0xAA);
    CHECK(parsed.entries[1].identity == "desktop");
    CHECK(parsed.entries[1].key.size() == 16);
    CHECK(parsed.entries[1].key[15] == 0x0F);
    CHECK(parsed.entries[2].identity == "host:with:colons");  // the key follows the last ':'
}

TEST_CASE("every bad PSK line is refused with the file, the line and the reason") {
    struct Case {
        std::string text;
        std::string expected;
    };
    const Case cases[] = {
        {"# only a comment\n\n", "keys.psk: no IDENTITY:HEXKEY line"},
        {"", "keys.psk: no IDENTITY:HEXKEY line"},
        {"\n\nno-colon-here\n", "keys.psk line 3: expected IDENTITY:HEXKEY (no ':' on the line)"},
        {":" + key16, "keys.psk line 1: empty identity before ':'"},
        {"id:", "keys.psk line 1: empty key after ':'"},
        {"id:" + key16.substr(0, 30), "keys.psk line 1: key is 15 bytes; keys are 16 to 64 bytes"},
        {"id:" + key32 + key32 + "00", "keys.psk line 1: key is 65 bytes; keys are 16 to 64 bytes"},
        {"id:" + key16 + "0", "keys.psk line 1: key has an odd number of hex digits (33)"},
        {"id:" + key16.substr(0, 10) + "g" + key16.substr(11), "keys.psk line 1: key character 11 ('g') is not a hexadecimal digit"},
        {"a:" + key16 + "\nb:" + key16 + "\na:" + key16, "keys.psk line 3: identity 'a' appears twice"},
        {std::string(129, 'i') + ":" + key16, "keys.psk line 1: identity longer than 128 characters"},
        {"tab\there:" + key16, "keys.psk line 1: identity holds a character that is not printable ASCII"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        const PskFileResult parsed = parse_psk_text(c.text, "keys.psk");
        CHECK_FALSE(parsed.ok);
        CHECK(parsed.entries.empty());
        CHECK(parsed.error.rfind(c.expected, 0) == 0);  // starts with the expected sentence
    }
}

TEST_CASE("a key file readable by group or others is refused, saying so") {
    TempDir dir;
    const std::string text = "pi:" + key16 + "\n";
    const std::string good = dir.write("good.psk", text, 0600);
    const std::string owner_only = dir.write("owner-read.psk", text, 0400);
    const std::string group = dir.write("group.psk", text, 0640);
    const std::string others = dir.write("others.psk", text, 0604);
    const std::string group_write = dir.write("group-write.psk", text, 0620);

    CHECK(check_secret_file(good).empty());
    CHECK(load_psk_file(good).ok);
    CHECK(load_psk_file(owner_only).ok);
    for (const std::string& path : {group, others, group_write}) {
        CAPTURE(path);
        const PskFileResult loaded = load_psk_file(path);
        CHECK_FALSE(loaded.ok);
        CHECK(loaded.entries.empty());
        CHECK(loaded.error.find("readable or writable by group or others") != std::string::npos);
        CHECK(loaded.error.find("chmod 600") != std::string::npos);
    }
    CHECK(load_psk_file(group).error.find("mode 0640") != std::string::npos);

    const PskFileResult missing = load_psk_file(good + ".missing");
    CHECK_FALSE(missing.ok);
    CHECK(missing.error.find("No such file") != std::string::npos);
}

TEST_CASE("a bad line in a key file on disk names the file") {
    TempDir dir;
    const std::string path = dir.write("bad.psk", "pi:" + key16 + "\nbroken\n");
    const PskFileResult loaded = load_psk_file(path);
    CHECK_FALSE(loaded.ok);
    CHECK(loaded.error == path + " line 2: expected IDENTITY:HEXKEY (no ':' on the line)");
}
