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
