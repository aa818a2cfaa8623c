// cannelloni's frame encoding, TCP stream and UDP packets. The byte vectors are written
// from cannelloni's documents (doc/tcp_protocol.md, doc/udp_format.md) and <linux/can.h>,
// not from our encoder.
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <tcpcan/dialect/cannelloni.hpp>
#include <tcpcan/dialect/cannelloni_udp.hpp>

using namespace tcpcan;
namespace cn = tcpcan::cannelloni;

namespace {

using Bytes = std::vector<std::uint8_t>;

Frame make(std::uint32_t id, std::uint8_t flags, std::initializer_list<std::uint8_t> data, std::uint8_t len = 0xFF) {
    Frame f;
    f.id = id;
    f.flags = flags;
    std::size_t i = 0;
    for (std::uint8_t b : data) {
        f.data[i++] = b;
    }
    f.len = len == 0xFF ? static_cast<std::uint8_t>(data.size()) : len;
    return f;
}

Bytes encode(const Frame& f) {
    Bytes out(cn::max_frame_size + 4, 0xAA);
    const std::size_t n = cn::encode_frame(f, out);
    out.resize(n);
    return out;
}

Bytes fd_vector() {  // FD, id 0x100, 12 bytes 0..11, BRS
    Bytes v{0x00, 0x00, 0x01, 0x00, 0x8C, 0x01};
    for (std::uint8_t i = 0; i < 12; ++i) {
        v.push_back(i);
    }
    return v;
}

struct Vector {
    Frame frame;
    Bytes wire;
};

std::vector<Vector> vectors() {
    return {
        {make(0x123, 0, {0xDE, 0xAD, 0xBE, 0xEF}), {0x00, 0x00, 0x01, 0x23, 0x04, 0xDE, 0xAD, 0xBE, 0xEF}},
        {make(0x0, 0, {}), {0x00, 0x00, 0x00, 0x00, 0x00}},
        {make(0x12345678, frame_flag::extended, {0x01, 0x02}), {0x92, 0x34, 0x56, 0x78, 0x02, 0x01, 0x02}},
        // RTR: the len byte is the requested length, and no data bytes follow.
        {make(0x7FF, frame_flag::remote, {}, 3), {0x40, 0x00, 0x07, 0xFF, 0x03}},
        {make(0x1ABCDEF, frame_flag::extended | frame_flag::remote, {}, 8), {0xC1, 0xAB, 0xCD, 0xEF, 0x08}},
        {make(0x100, frame_flag::fd | frame_flag::brs, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}), fd_vector()},
        {make(0x1FFFFFFF, frame_flag::extended | frame_flag::fd | frame_flag::esi, {0x55}),
         {0x9F, 0xFF, 0xFF, 0xFF, 0x81, 0x02, 0x55}},
        // An FD frame may be short: 0x80 | 0, flags byte present, no data.
        {make(0x001, frame_flag::fd, {}), {0x00, 0x00, 0x00, 0x01, 0x80, 0x00}},
    };
}

struct Decoded {
    std::vector<Frame> frames;
    bool handshake = false;
    cn::Error error = cn::Error::none;
    std::uint64_t error_offset = 0;
};

// Feeds the stream in pieces of `piece` bytes (0 = whole).
Decoded feed(const Bytes& stream, std::size_t piece) {
    cn::StreamDecoder d;
    Decoded r;
    std::size_t at = 0;
    const std::size_t step = piece == 0 ? stream.size() : piece;
    for (std::size_t rounds = 0; at < stream.size() && rounds < 100000; ++rounds) {
        const std::size_t end = std::min(stream.size(), at + step);
        std::span<const std::uint8_t> in(stream.data() + at, end - at);
        while (!in.empty()) {
            Frame f;
            const cn::StreamResult res = d.decode(in, f);
            REQUIRE(res.consumed <= in.size());
            in = in.subspan(res.consumed);
            if (res.status == cn::StreamStatus::handshake_done) {
                r.handshake = true;
            } else if (res.status == cn::StreamStatus::frame) {
                r.frames.push_back(f);
            } else if (res.status == cn::StreamStatus::error) {
                r.error = d.error();
                r.error_offset = d.error_offset();
                return r;
            } else {
                CHECK(in.empty());
            }
        }
        at = end;
    }
    return r;
}

Bytes with_handshake(const Bytes& frames) {
    Bytes s(cn::handshake.begin(), cn::handshake.end());
    s.insert(s.end(), frames.begin(), frames.end());
    return s;
}

}  // namespace

TEST_CASE("cannelloni: the handshake is the 12 bytes CANNELLONIv1 without a terminator") {
    const std::string text(cn::handshake.begin(), cn::handshake.end());
    CHECK(text == "CANNELLONIv1");
    CHECK(cn::handshake.size() == 12);
}

TEST_CASE("cannelloni: frames encode to the documented bytes and decode back") {
    for (const Vector& v : vectors()) {
        CAPTURE(v.frame.id);
        CHECK(encode(v.frame) == v.wire);
        CHECK(cn::encoded_size(v.frame) == v.wire.size());
        Frame back;
        CHECK(cn::decode_frame(v.wire, back) == cn::Error::none);
        CHECK(back == v.frame);
    }
}

TEST_CASE("cannelloni: the stream decoder takes every split of the stream") {
    Bytes frames;
    std::vector<Frame> expected;
    for (const Vector& v : vectors()) {
        frames.insert(frames.end(), v.wire.begin(), v.wire.end());
        expected.push_back(v.frame);
    }
    const Bytes stream = with_handshake(frames);
    for (std::size_t piece : {0, 1, 2, 3, 5, 6, 7, 13, 64}) {
        CAPTURE(piece);
        const Decoded r = feed(stream, piece);
        CHECK(r.error == cn::Error::none);
        CHECK(r.handshake);
        CHECK(r.frames == expected);
    }
}

TEST_CASE("cannelloni: the FDF flag bit (newer kernels) is accepted; BRS and ESI are kept") {
    Frame f;
    const Bytes wire{0x00, 0x00, 0x02, 0x00, 0x88, 0x07, 1, 2, 3, 4, 5, 6, 7, 8};
    REQUIRE(cn::decode_frame(wire, f) == cn::Error::none);
    CHECK(f.is_fd());
    CHECK(f.len == 8);
    CHECK(f.flags == (frame_flag::fd | frame_flag::brs | frame_flag::esi));
}

TEST_CASE("cannelloni: bad input is named, with the offset of the wrong byte") {
    SUBCASE("wrong handshake") {
        Bytes s{'C', 'A', 'N', 'N', 'E', 'L', 'L', 'O', 'N', 'I', 'v', '2'};
        for (std::size_t piece : {0, 1}) {
            const Decoded r = feed(s, piece);
            CHECK(r.error == cn::Error::bad_handshake);
            CHECK(r.error_offset == 11);
            CHECK_FALSE(r.handshake);
        }
        CHECK(feed(Bytes{'v', 0, 0, 0, 4}, 0).error == cn::Error::bad_handshake);  // a tcpcan peer
    }
    SUBCASE("classic len above 8") {
        const Decoded r = feed(with_handshake({0x00, 0x00, 0x01, 0x23, 0x09}), 1);
        CHECK(r.error == cn::Error::classic_too_long);
        CHECK(r.error_offset == 12 + 4);
    }
    SUBCASE("FD len above 64 is refused from the header alone, before any data") {
        for (std::size_t piece : {0, 1}) {
            const Decoded r = feed(with_handshake({0x00, 0x00, 0x01, 0x23, 0xC1}), piece);
            CHECK(r.error == cn::Error::fd_too_long);
            CHECK(r.error_offset == 16);
        }
        CHECK(feed(with_handshake({0x00, 0x00, 0x01, 0x23, 0xFF}), 0).error == cn::Error::fd_too_long);
    }
    SUBCASE("FD len that is no CAN FD length") {
        Bytes b{0x00, 0x00, 0x01, 0x23, 0x8A, 0x00};
        b.resize(b.size() + 10, 0x11);
        const Decoded r = feed(with_handshake(b), 3);
        CHECK(r.error == cn::Error::bad_fd_length);
        CHECK(r.error_offset == 12);
    }
    SUBCASE("FD bit on a remote frame") {
        CHECK(feed(with_handshake({0x40, 0x00, 0x01, 0x23, 0x80, 0x00}), 0).error == cn::Error::remote_fd);
    }
    SUBCASE("unknown FD flag bits") {
        CHECK(feed(with_handshake({0x00, 0x00, 0x01, 0x23, 0x80, 0x08}), 0).error == cn::Error::unknown_fd_flags);
    }
    SUBCASE("standard identifier above 0x7FF") {
        CHECK(feed(with_handshake({0x00, 0x00, 0x08, 0x00, 0x00}), 1).error == cn::Error::bad_identifier);
    }
    SUBCASE("error frame with the EFF bit") {
        CHECK(feed(with_handshake({0xA0, 0x00, 0x00, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0}), 0).error ==
              cn::Error::bad_error_frame);
    }
    SUBCASE("frames before the error are delivered; the error sticks") {
        Bytes b{0x00, 0x00, 0x01, 0x23, 0x01, 0x42, 0x00, 0x00, 0x01, 0x23, 0x0F};
        const Decoded r = feed(with_handshake(b), 0);
        CHECK(r.frames.size() == 1);
        CHECK(r.error == cn::Error::classic_too_long);
        CHECK(r.error_offset == 12 + 6 + 4);
        cn::StreamDecoder d;
        Frame f;
        const Bytes s = with_handshake({0x00, 0x00, 0x01, 0x23, 0x0F});
        CHECK(d.decode(s, f).status == cn::StreamStatus::handshake_done);
        CHECK(d.decode(std::span(s).subspan(12), f).status == cn::StreamStatus::error);
        CHECK(d.decode(s, f).status == cn::StreamStatus::error);
        CHECK(d.decode(s, f).consumed == 0);
        d.reset();
        CHECK(d.decode(s, f).status == cn::StreamStatus::handshake_done);
    }
}

TEST_CASE("cannelloni: an error frame decodes as one; the encoder refuses an invalid frame") {
    Frame f;
    const Bytes wire{0x20, 0x00, 0x00, 0x04, 0x08, 0, 0, 0x04, 0, 0, 0, 0, 0};  // CAN_ERR_CRTL
    REQUIRE(cn::decode_frame(wire, f) == cn::Error::none);
    CHECK(f.is_error());
    CHECK(f.id == 0x4);
    CHECK(encode(f) == wire);
    CHECK(encode(make(0x800, 0, {1})).empty());
    CHECK(encode(make(0x100, 0, {}, 9)).empty());
    Bytes small(4);
    CHECK(cn::encode_frame(make(0x100, 0, {1}), small) == 0);
}

TEST_CASE("cannelloni UDP: packets are checked whole and read frame by frame") {
    Bytes packet{0x02, 0x00, 0x07, 0x00, 0x03};
    for (std::size_t i : {0, 2, 3}) {
        const Bytes w = vectors()[i].wire;
        packet.insert(packet.end(), w.begin(), w.end());
    }
    const cn::PacketCheck c = cn::check_packet(packet);
    CHECK(c.error == cn::Error::none);
    CHECK(c.seq == 7);
    CHECK(c.count == 3);
    cn::PacketReader reader(packet);
    Frame f;
    std::vector<Frame> got;
    for (int guard = 0; guard < 10 && reader.next(f); ++guard) {
        got.push_back(f);
    }
    CHECK(got == std::vector<Frame>{vectors()[0].frame, vectors()[2].frame, vectors()[3].frame});

    CHECK(cn::check_packet(Bytes{0x02, 0x00, 0x00, 0x00, 0x00}).error == cn::Error::none);  // empty: ignored
    CHECK(cn::check_packet(Bytes{0x02, 0x00, 0x00, 0x00}).error == cn::Error::short_packet);
    CHECK(cn::check_packet(Bytes{0x01, 0x00, 0x00, 0x00, 0x00}).error == cn::Error::bad_packet_version);
    CHECK(cn::check_packet(Bytes{0x02, 0x01, 0x00, 0x00, 0x00}).error == cn::Error::bad_op_code);
    // Count says 4, three are there.
    Bytes more = packet;
    more[4] = 4;
    CHECK(cn::check_packet(more).error == cn::Error::truncated_frame);
    CHECK(cn::check_packet(more).error_offset == packet.size());
    // Count says 2: the third frame is left over.
    Bytes fewer = packet;
    fewer[4] = 2;
    CHECK(cn::check_packet(fewer).error == cn::Error::trailing_bytes);
    // FD bit on a frame cut short by the end of the packet (no flags byte, no data).
    const Bytes cut{0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x88};
    CHECK(cn::check_packet(cut).error == cn::Error::truncated_frame);
    const Bytes too_long{0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0xC1};
    CHECK(cn::check_packet(too_long).error == cn::Error::fd_too_long);
    CHECK(cn::check_packet(too_long).error_offset == 9);
}

TEST_CASE("cannelloni UDP: the packer fills to the payload limit, then flushes on the timeout") {
    cn::PacketPacker<> packer;  // 1,472 bytes, 100 ms
    CHECK(packer.payload_limit() == 1472);
    const Frame f = make(0x123, 0, {1, 2, 3, 4, 5, 6, 7, 8});  // 13 bytes on the wire
    REQUIRE(packer.add(f, 1000));
    CHECK_FALSE(packer.due(1000));
    CHECK_FALSE(packer.due(100'999));
    CHECK(packer.due(101'000));
    CHECK(packer.deadline() == 101'000);
    REQUIRE(packer.add(vectors()[3].frame, 50'000));  // a later frame does not move the deadline
    CHECK(packer.deadline() == 101'000);
    const auto p = packer.finish();
    Bytes expect{0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01, 0x23, 0x08, 1, 2, 3, 4, 5, 6, 7, 8,
                 0x40, 0x00, 0x07, 0xFF, 0x03};
    CHECK(Bytes(p.begin(), p.end()) == expect);
    CHECK(packer.empty());
    CHECK(packer.next_sequence() == 1);

    // (1472 − 5) / 13 = 112 frames fill it; the 113th does not fit.
    int added = 0;
    for (int i = 0; i < 200 && packer.fits(f); ++i) {
        REQUIRE(packer.add(f, 0));
        ++added;
    }
    CHECK(added == 112);
    CHECK_FALSE(packer.add(f, 0));
    CHECK_FALSE(packer.full());  // 1,461 bytes: two empty frames (5 bytes each) still fit
    REQUIRE(packer.add(make(0x2, 0, {}), 0));
    REQUIRE(packer.add(make(0x3, 0, {}), 0));
    CHECK(packer.full());  // 1,471 bytes
    CHECK(packer.due(0));  // full packets go at once, before the timeout
}

TEST_CASE("cannelloni UDP: sequence numbers wrap and are read back; loss is counted from gaps") {
    cn::PacketPacker<> packer;
    const Frame f = make(0x1, 0, {});
    for (int i = 0; i < 300; ++i) {
        REQUIRE(packer.add(f, 0));
        const auto p = packer.finish();
        CHECK(cn::check_packet(p).seq == static_cast<std::uint8_t>(i));
    }
    cn::SequenceWatch w;
    for (std::uint8_t s : {250, 251, 252, 255, 0, 1, 4}) {
        w.arrived(s);
    }
    CHECK(w.lost() == 4);  // 253, 254, 2, 3
    CHECK(w.gaps() == 2);
    w.arrived(3);  // late
    CHECK(w.out_of_order() == 1);
    CHECK(w.lost() == 4);
}
