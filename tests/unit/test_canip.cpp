// canip_peer's wire format (include/tcpcan/dialect/canip.hpp) and the first-bytes rule
// (first_bytes.hpp). The vectors are README's "canip_peer wire vectors", written from
// canip_peer's documented layout, not from our encoder.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tcpcan/dialect/canip.hpp>
#include <tcpcan/dialect/first_bytes.hpp>

using namespace tcpcan;

namespace {

std::vector<std::uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

struct Vector {
    std::uint8_t features;
    std::vector<std::uint8_t> wire;
    Frame frame;
    std::uint32_t sequence;
};

Frame make(std::uint32_t id, bool extended, std::vector<std::uint8_t> data, std::uint64_t ts = 0) {
    Frame f;
    f.id = id;
    f.flags = extended ? frame_flag::extended : 0;
    f.len = static_cast<std::uint8_t>(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) {
        f.data[i] = data[i];
    }
    f.timestamp_us = ts;
    return f;
}

// README "canip_peer wire vectors".
std::vector<Vector> vectors() {
    return {
        // 4.0 / no features: standard 0x123, 4 bytes.
        {0,
         {0x00, 0x04, 0x23, 0x01, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00},
         make(0x123, false, {0x11, 0x22, 0x33, 0x44}),
         0},
        // FEAT=SEQ: extended 0x18DAF110, 8 bytes, sequence 7.
        {canip::feature::seq,
         {0x01, 0x08, 0x10, 0xF1, 0xDA, 0x18, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x00, 0x00, 0x07},
         make(0x18DAF110, true, {1, 2, 3, 4, 5, 6, 7, 8}),
         7},
        // FEAT=SEQ,TS: standard 0x7FF, no data, sequence 0x01020304, TS 1700000000.123456 s.
        {canip::feature::seq | canip::feature::ts,
         {0x00, 0x00, 0xFF, 0x07, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x00, 0x06, 0x0A, 0x24,
          0x18, 0x20, 0x22, 0x40},
         make(0x7FF, false, {}, 1700000000123456),
         0x01020304},
        // FEAT=TS alone (a peer may offer only TS): 22 bytes.
        {canip::feature::ts,
         {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0xAB, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
          0x01},
         make(0x0, true, {0xAB}, 1),
         0},
    };
}

}  // namespace

TEST_CASE("canip: frame sizes are 14, 18, 22 and 26 bytes") {
    static_assert(canip::frame_size(0) == 14);
    static_assert(canip::frame_size(canip::feature::seq) == 18);
    static_assert(canip::frame_size(canip::feature::ts) == 22);
    static_assert(canip::frame_size(canip::feature::all) == 26);
}

TEST_CASE("canip: hellos are encoded as canip_peer writes them") {
    std::array<std::uint8_t, 32> out{};
    auto text = [&](std::uint8_t features) {
        const std::size_t n = canip::encode_hello(features, out);
        return std::string(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
    };
    CHECK(text(0) == "CANIP/4.1\n");
    CHECK(text(canip::feature::seq) == "CANIP/4.1 FEAT=SEQ\n");
    CHECK(text(canip::feature::ts) == "CANIP/4.1 FEAT=TS\n");
    CHECK(text(canip::feature::all) == "CANIP/4.1 FEAT=SEQ,TS\n");
    std::array<std::uint8_t, 8> small{};
    CHECK(canip::encode_hello(0, small) == 0);
}

TEST_CASE("canip: hello lines parse to features; unknown ones are ignored; bad ones are named") {
    auto parse = [](std::string_view line, std::uint8_t& features) {
        const auto b = bytes_of(line);
        return canip::parse_hello(b, features);
    };
    std::uint8_t f = 0xFF;
    CHECK(parse("CANIP/4.1", f) == canip::Error::none);
    CHECK(f == 0);
    CHECK(parse("CANIP/4.1 FEAT=SEQ,TS", f) == canip::Error::none);
    CHECK(f == canip::feature::all);
    CHECK(parse("CANIP/4.1 FEAT=ts\r", f) == canip::Error::none);
    CHECK(f == canip::feature::ts);
    CHECK(parse("CANIP/4.1  NAME=pi FEAT=CRC,SEQ,,XTS", f) == canip::Error::none);
    CHECK(f == canip::feature::seq);
    CHECK(parse("CANIP/4.1 feat=SEQ", f) == canip::Error::none);  // canip_peer matches "FEAT=" exactly
    CHECK(f == 0);
    CHECK(parse("CANIP/4.2 FEAT=SEQ", f) == canip::Error::hello_unsupported_version);
    CHECK(parse("CANIP/4.10", f) == canip::Error::hello_unsupported_version);
    CHECK(parse("CANIP/", f) == canip::Error::hello_unsupported_version);
    CHECK(parse("HELLO 4.1", f) == canip::Error::hello_not_canip);
    CHECK(parse("", f) == canip::Error::hello_not_canip);
    CHECK(parse("CANIP/4.1 FEAT=SEQ\x01", f) == canip::Error::hello_bad_character);
    CHECK(std::string(canip::describe(canip::Error::hello_unsupported_version)).find("4.1") != std::string::npos);
}

TEST_CASE("canip: the hello reader takes a line split anywhere and leaves what follows") {
    const auto stream = bytes_of("CANIP/4.1 FEAT=SEQ,TS\nXYZ");
    SUBCASE("whole") {
        canip::HelloReader r;
        const DecodeResult res = r.feed(stream);
        CHECK(res.status == DecodeStatus::complete);
        CHECK(res.consumed == stream.size() - 3);
        CHECK(r.features() == canip::feature::all);
    }
    SUBCASE("one byte at a time") {
        canip::HelloReader r;
        std::size_t at = 0;
        DecodeResult res{DecodeStatus::need_more, 0};
        while (at < stream.size() && res.status == DecodeStatus::need_more) {
            res = r.feed(std::span<const std::uint8_t>(&stream[at], 1));
            at += res.consumed;
        }
        CHECK(res.status == DecodeStatus::complete);
        CHECK(at == stream.size() - 3);
        CHECK(r.features() == canip::feature::all);
    }
    SUBCASE("a line without an end is refused at the bound, and the error sticks") {
        canip::HelloReader r;
        const std::vector<std::uint8_t> endless(canip::max_hello_size + 10, 'A');
        const DecodeResult res = r.feed(endless);
        CHECK(res.status == DecodeStatus::error);
        CHECK(res.consumed == canip::max_hello_size);
        CHECK(r.error() == canip::Error::hello_too_long);
        CHECK(r.feed(bytes_of("\n")).status == DecodeStatus::error);
    }
    SUBCASE("a line of exactly the bound is still read") {
        canip::HelloReader r;
        std::string line = "CANIP/4.1 FEAT=SEQ ";
        line.resize(canip::max_hello_size, 'X');
        line += '\n';
        const auto b = bytes_of(line);
        CHECK(r.feed(b).status == DecodeStatus::complete);
        CHECK(r.features() == canip::feature::seq);
    }
}

TEST_CASE("canip: vectors decode and encode byte for byte") {
    for (const Vector& v : vectors()) {
        CAPTURE(v.features);
        canip::WireFrame wire;
        REQUIRE(v.wire.size() == canip::frame_size(v.features));
        CHECK(canip::decode_frame(v.wire.data(), v.features, wire) == canip::Error::none);
        CHECK(wire.frame == v.frame);
        CHECK(wire.sequence == v.sequence);

        std::array<std::uint8_t, canip::max_frame_size> out{};
        const std::size_t n = canip::encode_frame(v.frame, v.features, v.sequence, v.frame.timestamp_us, out);
        CHECK(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)) == v.wire);
    }
}

TEST_CASE("canip: a stream of frames decodes the same whole, byte by byte and split at every point") {
    for (const Vector& v : vectors()) {
        CAPTURE(v.features);
        std::vector<std::uint8_t> stream;
        for (int i = 0; i < 3; ++i) {
            stream.insert(stream.end(), v.wire.begin(), v.wire.end());
        }
        for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
            CAPTURE(chunk);
            canip::FrameDecoder decoder(v.features);
            int frames = 0;
            for (std::size_t at = 0; at < stream.size();) {
                const std::size_t n = std::min(chunk, stream.size() - at);
                std::span<const std::uint8_t> piece(&stream[at], n);
                at += n;
                while (!piece.empty()) {
                    canip::WireFrame wire;
                    const DecodeResult r = decoder.decode(piece, wire);
                    REQUIRE(r.status != DecodeStatus::error);
                    REQUIRE(r.consumed > 0);
                    piece = piece.subspan(r.consumed);
                    if (r.status == DecodeStatus::complete) {
                        CHECK(wire.frame == v.frame);
                        CHECK(wire.sequence == v.sequence);
                        ++frames;
                    }
                }
            }
            CHECK(frames == 3);
            CHECK(decoder.buffered() == 0);
        }
    }
}

TEST_CASE("canip: bad frames are named, with the offset of the frame, and errors stick") {
    const std::vector<std::uint8_t> good{0x00, 0x01, 0x23, 0x01, 0x00, 0x00, 0x55, 0, 0, 0, 0, 0, 0, 0};
    auto second_frame = [&](std::size_t index, std::uint8_t value) {
        std::vector<std::uint8_t> stream = good;
        std::vector<std::uint8_t> bad = good;
        bad[index] = value;
        stream.insert(stream.end(), bad.begin(), bad.end());
        return stream;
    };
    struct Case {
        std::size_t index;
        std::uint8_t value;
        canip::Error error;
    };
    const Case cases[] = {
        {0, 0x02, canip::Error::bad_flags},           // RTR or anything beyond bit 0
        {0, 0x43, canip::Error::bad_flags},           // a 'C' where a frame belongs
        {1, 9, canip::Error::dlc_too_large},          // dlc above 8
        {3, 0x08, canip::Error::standard_id_too_large},  // 0x823
        {5, 0x20, canip::Error::standard_id_too_large},
    };
    for (const Case& c : cases) {
        CAPTURE(c.index);
        const auto stream = second_frame(c.index, c.value);
        canip::FrameDecoder decoder(0);
        canip::WireFrame wire;
        auto r = decoder.decode(stream, wire);
        CHECK(r.status == DecodeStatus::complete);
        r = decoder.decode(std::span<const std::uint8_t>(stream).subspan(r.consumed), wire);
        CHECK(r.status == DecodeStatus::error);
        CHECK(decoder.error() == c.error);
        CHECK(decoder.error_offset() == 14);
        CHECK(decoder.decode(good, wire).status == DecodeStatus::error);
    }
    std::vector<std::uint8_t> ext = good;
    ext[0] = 0x01;
    ext[5] = 0x20;  // 0x20000123
    canip::WireFrame wire;
    CHECK(canip::decode_frame(ext.data(), 0, wire) == canip::Error::extended_id_too_large);
}

TEST_CASE("canip: what the wire cannot carry is named by cause") {
    Frame f = make(0x123, false, {1, 2});
    CHECK(canip::check_carriable(f) == canip::Uncarried::none);
    Frame fd = f;
    fd.flags = frame_flag::fd;
    fd.len = 12;
    CHECK(canip::check_carriable(fd) == canip::Uncarried::fd);
    Frame rtr = f;
    rtr.flags = frame_flag::remote;
    CHECK(canip::check_carriable(rtr) == canip::Uncarried::remote);
    Frame err = make(0x4, false, {0, 0, 0, 0, 0, 0, 0, 0});
    err.flags = frame_flag::error;
    CHECK(canip::check_carriable(err) == canip::Uncarried::error);
    Frame bad = f;
    bad.id = 0x800;
    CHECK(canip::check_carriable(bad) == canip::Uncarried::invalid);
}

TEST_CASE("first bytes: tcpcan, canip 4.1, canip 4.0 and anything else") {
    auto classify = [](std::vector<std::uint8_t> b) { return classify_first_bytes(b); };
    CHECK(classify({}) == FirstBytes::need_more);
    CHECK(classify({0x76, 0x04, 0x00, 0x00, 0x00, 0x01}) == FirstBytes::tcpcan);  // the original tcpcan's `v 1`
    CHECK(classify({0x76}) == FirstBytes::tcpcan);
    const auto hello = bytes_of("CANIP/4.1 FEAT=SEQ\n");
    for (std::size_t n = 1; n < first_bytes_needed; ++n) {
        CHECK(classify({hello.begin(), hello.begin() + static_cast<std::ptrdiff_t>(n)}) == FirstBytes::need_more);
    }
    CHECK(classify(hello) == FirstBytes::canip_hello);
    CHECK(classify(bytes_of("CANIX/")) == FirstBytes::unknown);
    CHECK(classify(bytes_of("Cx")) == FirstBytes::unknown);
    CHECK(classify({0x00}) == FirstBytes::need_more);
    CHECK(classify({0x00, 0x08}) == FirstBytes::canip_legacy);
    CHECK(classify({0x01, 0x00, 0x10, 0xF1}) == FirstBytes::canip_legacy);
    CHECK(classify({0x01, 0x09}) == FirstBytes::unknown);
    CHECK(classify({0x16, 0x03, 0x01}) == FirstBytes::unknown);  // a TLS ClientHello
    CHECK(classify(bytes_of("GET / HTTP/1.1")) == FirstBytes::unknown);
    CHECK(std::string(describe(FirstBytes::unknown)).find("CANIP/") != std::string::npos);
}
