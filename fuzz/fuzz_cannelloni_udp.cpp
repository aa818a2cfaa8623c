// Fuzzes cannelloni's UDP packet parser and packer (include/tcpcan/dialect/cannelloni_udp.hpp).
//
// Input: one UDP packet.
//
// Invariants: no crash or over-read (ASan); a refused packet names an error at an offset
// inside the packet; an accepted packet yields exactly `count` valid frames, and packing
// them again (same sequence number) gives a packet of the same size that parses to the same
// frames; the default 1,472-byte packer never writes more than its limit and loses no frame
// (every frame lands in exactly one finished packet, in order).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <tcpcan/dialect/cannelloni_udp.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;
namespace cn = tcpcan::cannelloni;

std::vector<Frame> read_all(std::span<const std::uint8_t> packet, std::size_t count) {
    std::vector<Frame> frames;
    cn::PacketReader reader(packet);
    Frame f;
    for (std::size_t i = 0; i <= count && reader.next(f); ++i) {
        frames.push_back(f);
    }
    return frames;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> packet(data, size);
    const cn::PacketCheck c = cn::check_packet(packet);
    if (c.error != cn::Error::none) {
        FUZZ_CHECK(c.error_offset <= size);
        return 0;
    }
    const std::vector<Frame> frames = read_all(packet, c.count);
    FUZZ_CHECK(frames.size() == c.count);
    for (const Frame& f : frames) {
        FUZZ_CHECK(check_frame(f) == FrameProblem::none);
    }

    // Packed again in one (large) packet with the same sequence number.
    static cn::PacketPacker<65536> big;
    big = cn::PacketPacker<65536>(65536, 0);
    for (std::uint8_t s = 0; s != c.seq; ++s) {
        (void)big.finish();
    }
    for (const Frame& f : frames) {
        FUZZ_CHECK(big.add(f, 0));
    }
    const auto again = big.finish();
    FUZZ_CHECK(again.size() == size);
    const cn::PacketCheck c2 = cn::check_packet(again);
    FUZZ_CHECK(c2.error == cn::Error::none && c2.seq == c.seq && c2.count == c.count);
    FUZZ_CHECK(read_all(again, c2.count) == frames);

    // Packed at the default size: bounded, nothing lost, order kept.
    cn::PacketPacker<> small;
    std::vector<Frame> out;
    auto drain = [&]() {
        const auto p = small.finish();
        FUZZ_CHECK(p.size() <= small.payload_limit());
        const cn::PacketCheck pc = cn::check_packet(p);
        FUZZ_CHECK(pc.error == cn::Error::none);
        for (const Frame& f : read_all(p, pc.count)) {
            out.push_back(f);
        }
    };
    for (const Frame& f : frames) {
        if (!small.fits(f)) {
            drain();
        }
        FUZZ_CHECK(small.add(f, 0));
        if (small.full()) {
            drain();
        }
    }
    if (!small.empty()) {
        drain();
    }
    FUZZ_CHECK(out == frames);
    return 0;
}
