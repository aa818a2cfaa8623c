#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <string>

#include <tcpcan/frame.hpp>
#include <tcpcan/linux_frame.hpp>

using namespace tcpcan;

TEST_CASE("DLC and length map both ways") {
    const std::array<std::uint8_t, 16> lengths{0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};
    for (std::uint8_t dlc = 0; dlc < 16; ++dlc) {
        CHECK(dlc_to_length(dlc) == lengths[dlc]);
        CHECK(length_to_dlc(lengths[dlc]) == dlc);
    }
    CHECK(length_to_dlc(9) == 9);    // rounds up to 12
    CHECK(length_to_dlc(33) == 14);  // rounds up to 48
    CHECK(is_valid_fd_length(12));
    CHECK_FALSE(is_valid_fd_length(13));
    CHECK_FALSE(is_valid_fd_length(65));
    static_assert(dlc_to_length(15) == 64 && length_to_dlc(64) == 15);
    // Every byte value against the definition: the smallest DLC whose length holds len, and
    // a length is valid when that DLC's length is exactly it.
    for (unsigned len = 0; len <= 255; ++len) {
        std::uint8_t smallest = 15;
        for (std::uint8_t dlc = 0; dlc < 16; ++dlc) {
            if (lengths[dlc] >= len) {
                smallest = dlc;
                break;
            }
        }
        CAPTURE(len);
        CHECK(length_to_dlc(static_cast<std::uint8_t>(len)) == smallest);
        CHECK(is_valid_fd_length(static_cast<std::uint8_t>(len)) == (len <= 64 && lengths[smallest] == len));
    }
}

TEST_CASE("check_frame names each problem") {
    Frame f;
    f.id = 0x7FF;
    CHECK(check_frame(f) == FrameProblem::none);
    f.id = 0x800;
    CHECK(check_frame(f) == FrameProblem::standard_id_too_large);
    f.flags = frame_flag::extended;
    CHECK(check_frame(f) == FrameProblem::none);
    f.id = 0x2000'0000;
    CHECK(check_frame(f) == FrameProblem::extended_id_too_large);
    f = Frame{};
    f.len = 9;
    CHECK(check_frame(f) == FrameProblem::classic_too_long);
    f.flags = frame_flag::fd;
    CHECK(check_frame(f) == FrameProblem::bad_fd_length);
    f.len = 12;
    CHECK(check_frame(f) == FrameProblem::none);
    f.flags = frame_flag::fd | frame_flag::remote;
    CHECK(check_frame(f) == FrameProblem::remote_fd);
    f = Frame{};
    f.flags = frame_flag::brs;
    CHECK(check_frame(f) == FrameProblem::brs_esi_without_fd);
    f.flags = 0x40;
    CHECK(check_frame(f) == FrameProblem::unknown_flags);
    f = Frame{};
    f.flags = frame_flag::error;
    f.len = 8;
    f.id = 0x1FFF'FFFF;
    CHECK(check_frame(f) == FrameProblem::none);
    f.len = 7;
    CHECK(check_frame(f) == FrameProblem::bad_error_frame);
    f.len = 8;
    f.flags = frame_flag::error | frame_flag::extended;  // Linux has no EFF on error frames
    CHECK(check_frame(f) == FrameProblem::bad_error_frame);
    CHECK(std::string(describe(FrameProblem::bad_fd_length)).find("64") != std::string::npos);
}

TEST_CASE("Linux can_frame bytes: little-endian can_id with flags, exact layout") {
    Frame f;
    f.id = 0x1ABCDE0F;
    f.flags = frame_flag::extended;
    f.len = 3;
    f.data[0] = 0x11;
    f.data[1] = 0x22;
    f.data[2] = 0x33;
    f.data[3] = 0x99;  // beyond len: must not reach the wire
    std::array<std::uint8_t, 72> out{};
    out.fill(0xEE);
    REQUIRE(to_linux_bytes(f, out) == 16);
    const std::array<std::uint8_t, 16> expected{0x0F, 0xDE, 0xBC, 0x9A, 3, 0, 0, 0, 0x11, 0x22, 0x33, 0, 0, 0, 0, 0};
    CHECK(std::equal(expected.begin(), expected.end(), out.begin()));
    CHECK(out[16] == 0xEE);  // nothing written past the struct

    const LinuxFrameResult back = from_linux_bytes(std::span<const std::uint8_t>(out.data(), 16));
    CHECK(back.problem == FrameProblem::none);
    CHECK(back.frame == f);
}

TEST_CASE("Linux canfd_frame bytes: flags byte, 64 data bytes, round trip") {
    Frame f;
    f.id = 0x123;
    f.flags = frame_flag::fd | frame_flag::brs | frame_flag::esi;
    f.len = 64;
    for (int i = 0; i < 64; ++i) {
        f.data[i] = static_cast<std::uint8_t>(i * 3);
    }
    std::array<std::uint8_t, 72> out{};
    REQUIRE(to_linux_bytes(f, out) == 72);
    CHECK(out[0] == 0x23);
    CHECK(out[1] == 0x01);
    CHECK(out[4] == 64);
    CHECK(out[5] == 0x07);  // BRS | ESI | FDF
    CHECK(out[8 + 63] == static_cast<std::uint8_t>(63 * 3));
    const LinuxFrameResult back = from_linux_bytes(out);
    CHECK(back.problem == FrameProblem::none);
    CHECK(back.frame == f);
    std::array<std::uint8_t, 71> small{};
    CHECK(to_linux_bytes(f, small) == 0);
}

TEST_CASE("Linux bytes: every data length both ways, zero padding, remote and over-long frames") {
    for (const bool fd : {false, true}) {
        const std::size_t size = fd ? 72 : 16;
        const std::size_t room = size - 8;
        for (std::size_t len = 0; len <= room; ++len) {
            Frame f;
            f.id = 0x321;
            f.flags = fd ? frame_flag::fd : 0;
            f.len = static_cast<std::uint8_t>(len);
            for (std::size_t i = 0; i < max_fd_length; ++i) {
                f.data[i] = static_cast<std::uint8_t>(0xA0 + i);  // bytes past len too: must not leak
            }
            std::array<std::uint8_t, 80> out{};
            out.fill(0xEE);
            REQUIRE(to_linux_bytes(f, out) == size);
            for (std::size_t i = 0; i < room; ++i) {
                CHECK(out[8 + i] == (i < len ? static_cast<std::uint8_t>(0xA0 + i) : 0));
            }
            CHECK(out[size] == 0xEE);  // nothing past the struct
            const LinuxFrameResult back = from_linux_bytes(std::span<const std::uint8_t>(out.data(), size));
            // An FD length between the DLC steps (e.g. 9) is refused as the frame itself is.
            CHECK(back.problem == check_frame(f));
            CHECK(back.frame.len == f.len);
            for (std::size_t i = 0; i < len; ++i) {
                CHECK(back.frame.data[i] == f.data[i]);
            }
            for (std::size_t i = len; i < max_fd_length; ++i) {
                CHECK(back.frame.data[i] == 0);  // the result's bytes past len are zero
            }
        }
    }
    // A remote frame carries a length but no data: the data bytes go out as zero.
    Frame remote;
    remote.id = 0x100;
    remote.flags = frame_flag::remote;
    remote.len = 8;
    remote.data.fill(0x55);
    std::array<std::uint8_t, 16> out{};
    REQUIRE(to_linux_bytes(remote, out) == 16);
    for (std::size_t i = 8; i < 16; ++i) {
        CHECK(out[i] == 0);
    }
    // An invalid classic frame with len above 8 is still written within its 16 bytes.
    Frame too_long;
    too_long.len = 12;
    too_long.data.fill(0x77);
    std::array<std::uint8_t, 24> guarded{};
    guarded.fill(0xEE);
    REQUIRE(to_linux_bytes(too_long, guarded) == 16);
    CHECK(guarded[15] == 0x77);
    CHECK(guarded[16] == 0xEE);
    // Read side: a classic can_frame saying 12 takes at most its 8 bytes and is refused.
    std::array<std::uint8_t, 16> in{};
    in.fill(0x66);
    in[0] = 0x23;
    in[1] = 0x01;
    in[2] = 0;
    in[3] = 0;
    in[4] = 12;
    const LinuxFrameResult r = from_linux_bytes(in);
    CHECK(r.problem == FrameProblem::classic_too_long);
    CHECK(r.frame.data[7] == 0x66);
    CHECK(r.frame.data[8] == 0);
}

// The conversions stay usable in constant expressions (the core's constexpr promise).
static_assert([] {
    Frame f;
    f.flags = frame_flag::fd;
    f.len = 12;
    f.data[11] = 9;
    std::array<std::uint8_t, 72> out{};
    const std::size_t size = to_linux_bytes(f, out);
    const LinuxFrameResult back = from_linux_bytes(out);
    return size == 72 && out[8 + 11] == 9 && back.problem == FrameProblem::none && back.frame.data[11] == 9;
}());

TEST_CASE("Linux bytes: RTR and error flags, and bad content is refused") {
    std::array<std::uint8_t, 16> rtr{0x23, 0x01, 0x00, 0x40, 5};
    const LinuxFrameResult r = from_linux_bytes(rtr);
    CHECK(r.problem == FrameProblem::none);
    CHECK(r.frame.is_remote());
    CHECK(r.frame.id == 0x123);
    CHECK(r.frame.len == 5);

    std::array<std::uint8_t, 16> err{0x04, 0x00, 0x00, 0x20, 8, 0, 0, 0, 0, 0, 0x80};
    const LinuxFrameResult e = from_linux_bytes(err);
    CHECK(e.problem == FrameProblem::none);
    CHECK(e.frame.is_error());
    CHECK(e.frame.id == 0x4);  // CAN_ERR_CRTL
    CHECK(e.frame.data[2] == 0x80);

    std::array<std::uint8_t, 16> long_classic{0x23, 0x01, 0, 0, 9};
    CHECK(from_linux_bytes(long_classic).problem == FrameProblem::classic_too_long);
    std::array<std::uint8_t, 16> big_std{0x00, 0x08, 0, 0, 0};  // 0x800 without EFF
    CHECK(from_linux_bytes(big_std).problem == FrameProblem::standard_id_too_large);
    std::array<std::uint8_t, 20> wrong_size{};
    CHECK(from_linux_bytes(wrong_size).problem != FrameProblem::none);
}
