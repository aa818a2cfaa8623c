// Fuzzes the incremental Decoder with the stream split where the fuzzer says.
//
// Input: mode byte, 4 split bytes, then the byte stream.
//   mode bits 0-1: DecoderMode (0 negotiating, 1 version1, 2 version2, 3 = version2 too)
//   mode bit 2:    follow negotiation: after 'v' 1 or 2 in negotiating mode, switch to that
//                  version as a session does (so one input reaches every mode)
//   split bytes:   chunk sizes, used in turn; 0 = call decode with no input first, then 1
//                  byte; 255 = all the rest at once
//
// Invariants: consumed <= available; need_more takes everything it was given; no progress
// without input; the stream offset is the sum of what was consumed; errors stick (then
// every call returns error and consumes 0) and point into the failed message; a decoded
// message is legal in the mode, re-encodes to as many bytes as it came from (byte for byte
// except 'd', whose padding is not kept) and those bytes decode to the same message, whole
// and one byte at a time.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include <tcpcan/decoder.hpp>
#include <tcpcan/encoder.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

bool allowed_in(DecoderMode mode, MessageType type) {
    switch (mode) {
    case DecoderMode::negotiating: return type == MessageType::version;
    case DecoderMode::version1: return type == MessageType::data_v1;
    case DecoderMode::version2: return type != MessageType::version && type != MessageType::data_v1;
    }
    return false;
}

// A call with no bytes changes nothing and reports need_more (or the stuck error).
void check_no_progress(Decoder& decoder, Message& message) {
    const std::uint64_t offset = decoder.stream_offset();
    const DecodeResult r = decoder.decode({}, message);
    FUZZ_CHECK(r.consumed == 0);
    FUZZ_CHECK(r.status == (decoder.error() == ProtocolError::none ? DecodeStatus::need_more : DecodeStatus::error));
    FUZZ_CHECK(decoder.stream_offset() == offset);
}

// `wire` is the exact bytes the message was decoded from.
void check_round_trip(DecoderMode mode, const Message& message, std::span<const std::uint8_t> wire) {
    if (message.type == MessageType::data_v1 || message.type == MessageType::frame) {
        FUZZ_CHECK(check_frame(message.frame) == FrameProblem::none);
    }
    std::uint8_t encoded[max_message_size + 16];
    const std::size_t size = encode_message(encoded, message);
    FUZZ_CHECK(size == wire.size());
    if (message.type != MessageType::data_v1) {
        FUZZ_CHECK(std::memcmp(encoded, wire.data(), size) == 0);
    }

    Decoder whole(mode);
    Message again;
    const DecodeResult r = whole.decode(std::span<const std::uint8_t>(encoded, size), again);
    FUZZ_CHECK(r.status == DecodeStatus::complete && r.consumed == size);
    FUZZ_CHECK(fuzz::same_message(message, again));

    Decoder bytewise(mode);
    Message third;
    for (std::size_t i = 0; i < size; ++i) {
        const DecodeResult b = bytewise.decode(std::span<const std::uint8_t>(encoded + i, 1), third);
        FUZZ_CHECK(b.consumed == 1);
        FUZZ_CHECK(b.status == (i + 1 == size ? DecodeStatus::complete : DecodeStatus::need_more));
    }
    FUZZ_CHECK(fuzz::same_message(message, third));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::FuzzInput in(data, size);
    const std::uint8_t mode_byte = in.u8();
    const std::uint8_t splits[4] = {in.u8(), in.u8(), in.u8(), in.u8()};
    const std::span<const std::uint8_t> stream = in.rest();

    const DecoderMode modes[4] = {DecoderMode::negotiating, DecoderMode::version1, DecoderMode::version2,
                                  DecoderMode::version2};
    const bool follow = (mode_byte & 4) != 0;
    Decoder decoder(modes[mode_byte & 3]);
    Message message;  // reused, as the session does
    std::uint64_t consumed_total = 0;
    std::uint64_t message_start = 0;  // stream offset of the message being decoded
    std::size_t pos = 0;

    for (std::size_t turn = 0; pos < stream.size(); ++turn) {
        std::size_t chunk_size = splits[turn % 4];
        if (chunk_size == 0) {
            check_no_progress(decoder, message);
            chunk_size = 1;
        }
        if (chunk_size == 255 || chunk_size > stream.size() - pos) {
            chunk_size = stream.size() - pos;
        }
        const std::span<const std::uint8_t> chunk = stream.subspan(pos, chunk_size);
        pos += chunk_size;

        std::size_t used = 0;
        while (used < chunk.size()) {
            const std::span<const std::uint8_t> part = chunk.subspan(used);
            const DecoderMode mode = decoder.mode();
            const DecodeResult r = decoder.decode(part, message);
            FUZZ_CHECK(r.consumed <= part.size());
            used += r.consumed;
            consumed_total += r.consumed;
            FUZZ_CHECK(decoder.stream_offset() == consumed_total);

            if (r.status == DecodeStatus::need_more) {
                FUZZ_CHECK(r.consumed == part.size());
                break;
            }
            if (r.status == DecodeStatus::error) {
                FUZZ_CHECK(decoder.error() != ProtocolError::none);
                // The prefix, the length byte or the first payload byte of this message.
                FUZZ_CHECK(decoder.error_offset() >= message_start);
                FUZZ_CHECK(decoder.error_offset() <= message_start + 2);
                FUZZ_CHECK(decoder.error_offset() < consumed_total);
                // Errors stick: more input, or none, changes nothing.
                const ProtocolError error = decoder.error();
                const std::uint64_t at = decoder.error_offset();
                const DecodeResult again = decoder.decode(stream.subspan(pos - chunk.size() + used), message);
                FUZZ_CHECK(again.status == DecodeStatus::error && again.consumed == 0);
                check_no_progress(decoder, message);
                FUZZ_CHECK(decoder.error() == error && decoder.error_offset() == at);
                FUZZ_CHECK(decoder.stream_offset() == consumed_total);
                return 0;
            }

            // complete
            FUZZ_CHECK(r.consumed > 0);
            FUZZ_CHECK(decoder.last_message_offset() == message_start);
            const std::span<const std::uint8_t> wire =
                stream.subspan(message_start, static_cast<std::size_t>(consumed_total - message_start));
            FUZZ_CHECK(wire.size() >= header_size && wire.size() == header_size + wire[1]);
            FUZZ_CHECK(message.prefix == wire[0]);
            FUZZ_CHECK(allowed_in(mode, message.type));
            check_round_trip(mode, message, wire);
            message_start = consumed_total;

            if (follow && mode == DecoderMode::negotiating && (message.value == 1 || message.value == 2)) {
                decoder.set_mode(message.value == 1 ? DecoderMode::version1 : DecoderMode::version2);
            }
        }
    }
    check_no_progress(decoder, message);
    return 0;
}
