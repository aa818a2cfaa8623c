// Fuzzes cannelloni's TCP stream decoder (include/tcpcan/dialect/cannelloni.hpp).
//
// Input: byte 0 = how the stream is split (0 = whole, else pieces of that many bytes);
// the rest is the stream. The handshake is not prepended: the fuzzer finds it from the
// seeds and the dictionary.
//
// Invariants: no crash or over-read (ASan); consumed never exceeds the input; the split
// changes nothing (same frames, same error at the same offset); the decoder holds at most
// one frame; every frame passes check_frame, takes exactly encoded_size() bytes of the
// stream, and encodes and decodes back to itself; an error offset lies inside the stream.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <tcpcan/dialect/cannelloni.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;
namespace cn = tcpcan::cannelloni;

struct Outcome {
    std::vector<Frame> frames;
    bool handshake = false;
    cn::Error error = cn::Error::none;
    std::uint64_t error_offset = 0;
};

Outcome run(std::span<const std::uint8_t> stream, std::size_t piece) {
    cn::StreamDecoder d;
    Outcome o;
    std::size_t at = 0;
    std::size_t frame_start = 0;  // stream offset of the next frame
    const std::size_t step = piece == 0 ? stream.size() : piece;
    while (at < stream.size() && o.error == cn::Error::none) {
        const std::size_t end = at + step < stream.size() ? at + step : stream.size();
        std::span<const std::uint8_t> in = stream.subspan(at, end - at);
        std::size_t in_at = at;
        // Each call consumes at least one byte or reports need_more/error: bounded by the piece size + 1.
        for (std::size_t calls = 0; calls <= step + 1 && !in.empty(); ++calls) {
            Frame f;
            const cn::StreamResult r = d.decode(in, f);
            FUZZ_CHECK(r.consumed <= in.size());
            FUZZ_CHECK(d.partial_bytes() <= cn::max_frame_size);
            in = in.subspan(r.consumed);
            in_at += r.consumed;
            if (r.status == cn::StreamStatus::handshake_done) {
                FUZZ_CHECK(!o.handshake && in_at == cn::handshake.size());
                o.handshake = true;
                frame_start = in_at;
            } else if (r.status == cn::StreamStatus::frame) {
                FUZZ_CHECK(o.handshake);
                FUZZ_CHECK(check_frame(f) == FrameProblem::none);
                FUZZ_CHECK(in_at - frame_start == cn::encoded_size(f));
                std::uint8_t bytes[cn::max_frame_size];
                const std::size_t n = cn::encode_frame(f, bytes);
                FUZZ_CHECK(n == cn::encoded_size(f));
                Frame back;
                FUZZ_CHECK(cn::decode_frame(std::span<const std::uint8_t>(bytes, n), back) == cn::Error::none);
                FUZZ_CHECK(back == f);
                frame_start = in_at;
                o.frames.push_back(f);
            } else if (r.status == cn::StreamStatus::error) {
                o.error = d.error();
                o.error_offset = d.error_offset();
                FUZZ_CHECK(o.error != cn::Error::none);
                FUZZ_CHECK(o.error_offset < stream.size());
                Frame again;
                FUZZ_CHECK(d.decode(in, again).status == cn::StreamStatus::error);  // sticky
                break;
            } else {
                FUZZ_CHECK(in.empty());
            }
        }
        FUZZ_CHECK(in.empty() || o.error != cn::Error::none);
        at = end;
    }
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::size_t piece = data[0];
    const std::span<const std::uint8_t> stream(data + 1, size - 1);
    const Outcome whole = run(stream, 0);
    const Outcome split = run(stream, piece == 0 ? 1 : piece);
    FUZZ_CHECK(whole.handshake == split.handshake);
    FUZZ_CHECK(whole.error == split.error);
    FUZZ_CHECK(whole.error_offset == split.error_offset);
    FUZZ_CHECK(whole.frames == split.frames);
    return 0;
}
