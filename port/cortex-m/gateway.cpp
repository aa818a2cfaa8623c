// The reference tcpcan gateway: one classic CAN bus on one side, one version-2 peer over
// a byte stream (here a UART; on your board perhaps a TCP socket of lwIP or a modem) on
// the other. Copy this folder to start a board: replace the UART and the CAN port with
// your peripherals, keep the loop.
//
// Build (one command; see README.md here for the M4 board and for checking the size):
//   arm-none-eabi-g++ -mcpu=cortex-m0plus -mthumb -std=c++20 -Os -ffreestanding
//       -fno-exceptions -fno-rtti -ffunction-sections -fdata-sections
//       -DGATEWAY_BOARD_MICROBIT -I include -I port/cortex-m
//       port/cortex-m/startup.cpp port/cortex-m/gateway.cpp
//       -nostartfiles --specs=nano.specs -Wl,--gc-sections
//       -L port/cortex-m -T microbit.ld -o gateway.elf
//
// Behaviour: the gateway is the server side of the protocol. A peer proposes a version
// (2 is the only one this profile speaks), both send 'h', frames flow both ways; the
// gateway pings every second and ends a session after 3 s of silence (reason 3, peer
// dead), then waits for the next peer on the same line. There is no heap: the session
// lives in .bss and is rebuilt in place.
#include <cstdint>
#include <optional>

#include <tcpcan/filter.hpp>
#include <tcpcan/interfaces.hpp>

#include "board.hpp"
#include "can_loopback.hpp"
#include "gateway_config.hpp"

namespace {

// In .bss; emplace() builds a session in place, so no 2 KB temporary ever sits on the stack.
std::optional<gateway::GatewaySession> session;
volatile gateway::CanRegisters can_registers;  // at the controller's address on a real board
gateway::RegisterCanPort can(can_registers);
gateway::BoardUart uart;
const tcpcan::FilterSet<1> forward_everything;  // this side's forwarding filter: none

// A 64-bit microsecond clock from the 32-bit millisecond tick (differences survive the wrap).
std::uint64_t now_us() {
    static std::uint32_t last_ms = 0;
    static std::uint64_t now = 0;
    const std::uint32_t ms = gateway::gateway_milliseconds;
    now += std::uint64_t{ms - last_ms} * 1000;
    last_ms = ms;
    return now;
}

}  // namespace

int main() {
    gateway::start_millisecond_tick();
    uart.start();
    session.emplace(gateway::session_options(), now_us());
    for (;;) {
        const std::uint64_t now = now_us();
        (void)tcpcan::bridge_step(*session, can, uart, forward_everything, now, 4);
        gateway::run_loopback_controller(can_registers);
        tcpcan::Event event;
        while (session->poll_event(event)) {
            // A board would log these or light an LED; every drop is in session->stats().
        }
        if (session->is_closed() && session->output().empty()) {
            session.emplace(gateway::session_options(), now);  // the close went out: wait for the next peer
        }
    }
}
