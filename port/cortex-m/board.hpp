// What differs between the boards the reference gateway runs on: the UART and the CPU
// clock. Pick one with -DGATEWAY_BOARD_MICROBIT or -DGATEWAY_BOARD_MPS2_AN386; a new board
// adds its UART header and a branch here.
#pragma once

#include <cstdint>

#if defined(GATEWAY_BOARD_MICROBIT)
#include "uart_nrf51.hpp"
namespace gateway {
using BoardUart = Nrf51Uart;
inline constexpr std::uint32_t cpu_hz = 16'000'000;
}  // namespace gateway
#elif defined(GATEWAY_BOARD_MPS2_AN386)
#include "uart_cmsdk.hpp"
namespace gateway {
using BoardUart = CmsdkUart;
inline constexpr std::uint32_t cpu_hz = 25'000'000;
}  // namespace gateway
#else
#error "define GATEWAY_BOARD_MICROBIT or GATEWAY_BOARD_MPS2_AN386"
#endif

namespace gateway {

// Milliseconds since start, counted by SysTick_Handler (startup.cpp). 32 bits wrap after
// 49 days; main() turns differences into a 64-bit microsecond clock.
extern "C" volatile std::uint32_t gateway_milliseconds;

// SysTick (Armv6-M/v7-M System Control Space): an interrupt every millisecond.
inline void start_millisecond_tick() {
    auto* const systick = reinterpret_cast<volatile std::uint32_t*>(0xE000'E010);
    systick[1] = cpu_hz / 1000 - 1;  // LOAD
    systick[2] = 0;                  // VAL
    systick[0] = 0b111;              // CTRL: processor clock, interrupt, enable
}

}  // namespace gateway
