// Fuzzes canip_peer's wire format (include/tcpcan/dialect/canip.hpp) and the first-bytes
// rule (first_bytes.hpp).
//
// Input: byte 0 = features (bits 0-1) and whether a hello line comes first (bit 2);
// byte 1 = read size (1 + b % 32); the rest is the stream from the peer.
//
// Invariants: no crash or over-read (ASan); every decode consumes no more than it was given
// and makes progress until an error; the stream gives the same frames, error and error
// offset whole and in reads of any size; the partial buffer stays under one frame; every
// decoded frame is a valid classic frame and encodes back to its wire bytes (padding
// zeroed); a hello's features are known bits and our own hello parses back to them; the
// first-bytes verdict agrees with the first byte.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <tcpcan/dialect/canip.hpp>
#include <tcpcan/dialect/first_bytes.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

struct Outcome {
    std::vector<canip::WireFrame> frames;
    canip::Error error = canip::Error::none;
    std::uint64_t error_offset = 0;
};

Outcome decode_in_reads(std::span<const std::uint8_t> stream, std::uint8_t features, std::size_t read_size) {
    Outcome out;
    canip::FrameDecoder decoder(features);
    const std::size_t size = canip::frame_size(features);
    std::size_t at = 0;
    while (at < stream.size() && out.error == canip::Error::none) {
        std::span<const std::uint8_t> piece = stream.subspan(at, std::min(read_size, stream.size() - at));
        at += piece.size();
        while (!piece.empty()) {
            canip::WireFrame wire;
            const DecodeResult r = decoder.decode(piece, wire);
            FUZZ_CHECK(r.consumed <= piece.size());
            FUZZ_CHECK(decoder.buffered() < size);
            if (r.status == DecodeStatus::error) {
                out.error = decoder.error();
                out.error_offset = decoder.error_offset();
                FUZZ_CHECK(out.error != canip::Error::none);
                FUZZ_CHECK(out.error_offset == out.frames.size() * size);
                canip::WireFrame again;
                FUZZ_CHECK(decoder.decode(piece, again).status == DecodeStatus::error);  // errors stick
                break;
            }
            FUZZ_CHECK(r.consumed > 0);
            piece = piece.subspan(r.consumed);
            if (r.status == DecodeStatus::complete) {
                out.frames.push_back(wire);
            }
        }
    }
    return out;
}

void check_frames(const Outcome& o, std::span<const std::uint8_t> stream, std::uint8_t features) {
    const std::size_t size = canip::frame_size(features);
    for (std::size_t k = 0; k < o.frames.size(); ++k) {
        const canip::WireFrame& w = o.frames[k];
        FUZZ_CHECK(check_frame(w.frame) == FrameProblem::none);
        FUZZ_CHECK(!w.frame.is_fd() && !w.frame.is_remote() && !w.frame.is_error());
        FUZZ_CHECK(w.frame.len <= 8);
        std::array<std::uint8_t, canip::max_frame_size> bytes{};
        FUZZ_CHECK(canip::encode_frame(w.frame, features, w.sequence, w.frame.timestamp_us, bytes) == size);
        for (std::size_t i = 0; i < size; ++i) {
            const bool padding = i >= std::size_t{6} + w.frame.len && i < canip::base_frame_size;
            FUZZ_CHECK(bytes[i] == (padding ? 0 : stream[k * size + i]));
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const std::uint8_t features = data[0] & canip::feature::all;
    const bool hello_first = (data[0] & 0x04) != 0;
    const std::size_t read_size = 1 + data[1] % 32;
    std::span<const std::uint8_t> stream(data + 2, size - 2);

    const FirstBytes kind = classify_first_bytes(stream);
    if (!stream.empty()) {
        const std::uint8_t b = stream[0];
        FUZZ_CHECK((kind == FirstBytes::tcpcan) == (b == 'v'));
        FUZZ_CHECK(kind != FirstBytes::canip_hello || (b == 'C' && stream.size() >= first_bytes_needed));
        FUZZ_CHECK(kind != FirstBytes::canip_legacy || (b <= 1 && stream[1] <= 8));
    } else {
        FUZZ_CHECK(kind == FirstBytes::need_more);
    }

    std::uint8_t agreed = features;
    if (hello_first) {
        canip::HelloReader hello;
        std::size_t at = 0;
        DecodeResult r{DecodeStatus::need_more, 0};
        while (at < stream.size() && r.status == DecodeStatus::need_more) {
            const auto piece = stream.subspan(at, std::min(read_size, stream.size() - at));
            r = hello.feed(piece);
            FUZZ_CHECK(r.consumed <= piece.size());
            at += r.consumed;
        }
        FUZZ_CHECK(at <= canip::max_hello_size + 1);
        if (r.status != DecodeStatus::complete) {
            FUZZ_CHECK(r.status == DecodeStatus::need_more || hello.error() != canip::Error::none);
            return 0;
        }
        FUZZ_CHECK((hello.features() & ~canip::feature::all) == 0);
        agreed = features & hello.features();
        stream = stream.subspan(at);
    }

    std::array<std::uint8_t, 32> ours{};
    const std::size_t n = canip::encode_hello(agreed, ours);
    FUZZ_CHECK(n > 0 && ours[n - 1] == '\n');
    std::uint8_t parsed = 0xFF;
    FUZZ_CHECK(canip::parse_hello(std::span<const std::uint8_t>(ours.data(), n - 1), parsed) == canip::Error::none);
    FUZZ_CHECK(parsed == agreed);

    const Outcome whole = decode_in_reads(stream, agreed, stream.size() + 1);
    const Outcome split = decode_in_reads(stream, agreed, read_size);
    FUZZ_CHECK(whole.frames.size() == split.frames.size());
    FUZZ_CHECK(whole.error == split.error);
    FUZZ_CHECK(whole.error_offset == split.error_offset);
    for (std::size_t i = 0; i < whole.frames.size(); ++i) {
        FUZZ_CHECK(whole.frames[i].frame == split.frames[i].frame);
        FUZZ_CHECK(whole.frames[i].sequence == split.frames[i].sequence);
    }
    check_frames(whole, stream, agreed);
    return 0;
}
