// Every test vector in PROTOCOL.md, checked byte for byte: decoded whole and one
// byte at a time, compared with its description, and encoded back to the same bytes.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <tcpcan/decoder.hpp>
#include <tcpcan/encoder.hpp>

#include "message_text.hpp"

using namespace tcpcan;

namespace {

struct Vector {
    bool good;
    DecoderMode mode;
    std::vector<std::uint8_t> bytes;
    std::string expected;
    std::string line;
};

const char* error_name(ProtocolError e) {
    switch (e) {
#define NAME(x) \
    case ProtocolError::x: return #x;
        NAME(none) NAME(unknown_prefix) NAME(not_allowed_before_agreement) NAME(not_allowed_in_version_1)
        NAME(not_allowed_after_agreement) NAME(bad_version_length) NAME(bad_data_length) NAME(bad_frame_length)
        NAME(bad_features_length) NAME(bad_ping_length) NAME(bad_subscribe_length) NAME(bad_close_length)
        NAME(invalid_frame) NAME(bad_subscribe_op) NAME(bad_filter_entry) NAME(bad_bus_length) NAME(bad_bus_name)
        NAME(bad_ack_length) NAME(bad_resume_length) NAME(bad_token_length) NAME(zero_token)
#undef NAME
    default: return "session-level";
    }
}

std::vector<Vector> load_vectors() {
    std::ifstream file(TCPCAN_PROTOCOL_MD);
    REQUIRE_MESSAGE(file.good(), "cannot open PROTOCOL.md at " TCPCAN_PROTOCOL_MD);
    std::vector<Vector> vectors;
    std::string line;
    bool in_block = false;
    while (std::getline(file, line)) {
        if (line.rfind("```", 0) == 0) {
            in_block = line == "```vectors";
            continue;
        }
        if (!in_block || line.empty()) {
            continue;
        }
        std::istringstream in(line);
        std::string kind, mode;
        in >> kind >> mode;
        const auto bar = line.find(" | ");
        REQUIRE_MESSAGE(bar != std::string::npos, line);
        const std::size_t hex_start = line.find(mode, kind.size()) + mode.size();
        Vector v;
        v.good = kind == "good";
        REQUIRE_MESSAGE((kind == "good" || kind == "bad"), line);
        v.mode = mode == "neg" ? DecoderMode::negotiating : mode == "v1" ? DecoderMode::version1 : DecoderMode::version2;
        v.bytes = test::from_hex(line.substr(hex_start, bar - hex_start));
        v.expected = line.substr(bar + 3);
        v.line = line;
        vectors.push_back(v);
    }
    return vectors;
}

// Feeds bytes in chunks of `chunk` and returns a description of the outcome.
std::string run(const Vector& v, std::size_t chunk, std::vector<std::uint8_t>* reencoded) {
    Decoder decoder(v.mode);
    Message m;
    std::size_t at = 0;
    while (at < v.bytes.size()) {
        const std::size_t n = std::min(chunk, v.bytes.size() - at);
        const DecodeResult r = decoder.decode(std::span<const std::uint8_t>(v.bytes.data() + at, n), m);
        REQUIRE(r.consumed <= n);
        at += r.consumed;
        if (r.status == DecodeStatus::error) {
            // Errors stick.
            const DecodeResult again = decoder.decode(std::span<const std::uint8_t>(v.bytes.data(), 1), m);
            CHECK(again.status == DecodeStatus::error);
            CHECK(again.consumed == 0);
            return std::string(error_name(decoder.error())) + " @" + std::to_string(decoder.error_offset());
        }
        if (r.status == DecodeStatus::complete) {
            CHECK_MESSAGE(at == v.bytes.size(), "message ended early: " << v.line);
            std::vector<std::uint8_t> out(max_message_size);
            out.resize(encode_message(out, m));
            *reencoded = out;
            return test::describe_message(m);
        }
        REQUIRE(r.consumed == n);  // need_more must have taken everything
    }
    return "incomplete";
}

}  // namespace

TEST_CASE("PROTOCOL.md test vectors, whole and byte by byte") {
    const std::vector<Vector> vectors = load_vectors();
    CHECK(vectors.size() >= 50);
    std::size_t good = 0, bad = 0;
    for (const Vector& v : vectors) {
        CAPTURE(v.line);
        for (std::size_t chunk : {v.bytes.size(), std::size_t{1}, std::size_t{3}}) {
            std::vector<std::uint8_t> reencoded;
            CHECK(run(v, chunk, &reencoded) == v.expected);
            if (v.good) {
                CHECK(test::to_hex(reencoded.data(), reencoded.size()) == test::to_hex(v.bytes.data(), v.bytes.size()));
            }
        }
        (v.good ? good : bad)++;
    }
    CHECK(good >= 25);
    CHECK(bad >= 25);
}

TEST_CASE("all vectors of a mode back to back in one stream") {
    // Consecutive good messages in one buffer must split exactly at their boundaries.
    const std::vector<Vector> vectors = load_vectors();
    for (DecoderMode mode : {DecoderMode::version1, DecoderMode::version2}) {
        std::vector<std::uint8_t> stream;
        std::vector<std::string> expected;
        for (const Vector& v : vectors) {
            if (v.good && v.mode == mode) {
                stream.insert(stream.end(), v.bytes.begin(), v.bytes.end());
                expected.push_back(v.expected);
            }
        }
        Decoder decoder(mode);
        Message m;
        std::size_t at = 0;
        std::vector<std::string> got;
        while (at < stream.size()) {
            const DecodeResult r = decoder.decode(std::span<const std::uint8_t>(stream.data() + at, stream.size() - at), m);
            REQUIRE(r.status == DecodeStatus::complete);
            at += r.consumed;
            got.push_back(test::describe_message(m));
        }
        CHECK(got == expected);
    }
}
