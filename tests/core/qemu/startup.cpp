// Vector table and reset handler for the qemu mps2 boards (see mps2.ld).
//
// Reset copies .data from its load address in CODE to RAM and enters newlib's _start
// (rdimon crt0), which clears .bss, runs constructors and calls main; main's return value
// reaches qemu's exit status through semihosting. A fault ends the run with status 99
// instead of hanging until the timeout.
#include <cstdint>

extern "C" {
extern std::uint32_t __data_load__[];
extern std::uint32_t __data_start__[];
extern std::uint32_t __data_end__[];
extern std::uint32_t __stack_top__[];
[[noreturn]] void _start();
[[noreturn]] void _exit(int status);

[[noreturn]] void Reset_Handler() {
    const std::uint32_t* from = __data_load__;
    for (std::uint32_t* to = __data_start__; to < __data_end__;) {
        *to++ = *from++;
    }
    _start();
}

[[noreturn]] void Fault_Handler() { _exit(99); }
}

using Handler = void (*)();

// Word 0 is the initial stack pointer; the rest are handlers (the linker sets the Thumb bit).
__attribute__((section(".vectors"), used)) const Handler vector_table[16] = {
    reinterpret_cast<Handler>(__stack_top__),
    Reset_Handler,
    Fault_Handler,  // NMI
    Fault_Handler,  // HardFault
    Fault_Handler,  // MemManage
    Fault_Handler,  // BusFault
    Fault_Handler,  // UsageFault
    nullptr, nullptr, nullptr, nullptr,
    Fault_Handler,  // SVCall
    Fault_Handler,  // DebugMonitor
    nullptr,
    Fault_Handler,  // PendSV
    Fault_Handler,  // SysTick
};
