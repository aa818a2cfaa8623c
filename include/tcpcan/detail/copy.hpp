// Short copies (frame data, one 'f' message) as at most two fixed-size block moves.
//
// Why not a byte loop, or std::copy_n or memcpy with a variable length: GCC turns a byte
// loop (and a loop of fixed-size blocks) into memcpy, and at -O3, knowing the length is small
// (a frame holds at most 64 bytes), expands a variable-length memcpy inline as `rep movsq`,
// whose start-up costs about as much as decoding a whole 8-byte frame (bench_core's 8-byte
// decode ran at 0.82 of its -O2 speed). A block of a fixed size compiles to plain loads and
// stores at every level, with GCC and clang: a length between Max/2 and Max is copied as its
// first and its last Max/2 bytes (the two may overlap), a shorter one by halving Max.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace tcpcan::detail {

// memcpy, not std::copy_n: copy_n must allow overlap (memmove), which GCC -O2 calls out of
// line for 32 and 64 bytes where it inlines memcpy. A constant expression takes the loop.
template <std::size_t Size>
constexpr void copy_block(std::uint8_t* to, const std::uint8_t* from) {
    if (std::is_constant_evaluated()) {
        for (std::size_t i = 0; i < Size; ++i) {
            to[i] = from[i];
        }
    } else {
        __builtin_memcpy(to, from, Size);
    }
}

// Zeroes exactly Size bytes: a fixed size, so it compiles to a few stores at every level.
template <std::size_t Size>
constexpr void zero_block(std::uint8_t* to) {
    if (std::is_constant_evaluated()) {
        for (std::size_t i = 0; i < Size; ++i) {
            to[i] = 0;
        }
    } else {
        __builtin_memset(to, 0, Size);
    }
}

// Copies `n` <= Max bytes from `from` to `to` (Max a power of two); the ranges must not overlap.
template <std::size_t Max>
constexpr void copy_bytes(std::uint8_t* to, const std::uint8_t* from, std::size_t n) {
    static_assert(Max > 0 && (Max & (Max - 1)) == 0, "Max must be a power of two");
    if constexpr (Max == 1) {
        if (n == 1) {
            to[0] = from[0];
        }
    } else if (n >= Max / 2) {
        copy_block<Max / 2>(to, from);
        copy_block<Max / 2>(to + n - Max / 2, from + n - Max / 2);
    } else {
        copy_bytes<Max / 2>(to, from, n);
    }
}

}  // namespace tcpcan::detail
