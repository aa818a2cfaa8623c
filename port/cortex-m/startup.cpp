// Vector table and reset for the reference gateway: copy .data, clear .bss, paint the
// free RAM below the stack, run main. No C library start-up code and no static
// constructors (the gateway has none; the link fails on an .init_array, see sections.ld).
// A fault stops the CPU in a loop that a debugger (or the test's timeout) finds.
#include <cstdint>

extern "C" {
extern std::uint32_t __data_load__[];
extern std::uint32_t __data_start__[];
extern std::uint32_t __data_end__[];
extern std::uint32_t __bss_start__[];
extern std::uint32_t __bss_end__[];
extern std::uint32_t __stack_top__[];
int main();

volatile std::uint32_t gateway_milliseconds = 0;

// The free RAM between .bss and the stack holds this word until the stack reaches it, so
// a debugger shows how deep the stack ever went (tests/core/run_gateway_e2e.py reads it
// through qemu's monitor and compares it with the computed worst case).
const std::uint32_t gateway_stack_paint = 0x5AC4'5AC4;

[[noreturn]] void Reset_Handler() {
    const std::uint32_t* from = __data_load__;
    for (std::uint32_t* to = __data_start__; to < __data_end__;) {
        *to++ = *from++;
    }
    for (std::uint32_t* to = __bss_start__; to < __bss_end__;) {
        *to++ = 0;
    }
    std::uint32_t* sp = nullptr;
    asm volatile("mov %0, sp" : "=r"(sp));
    for (std::uint32_t* to = __bss_end__; to < sp - 16;) {  // 64 bytes spare for this frame
        *to++ = gateway_stack_paint;
    }
    main();
    for (;;) {
    }
}

[[noreturn]] void Fault_Handler() {
    for (;;) {
    }
}

void SysTick_Handler() { gateway_milliseconds = gateway_milliseconds + 1; }
}

using Handler = void (*)();

// Word 0 is the initial stack pointer; the rest are handlers (the linker sets the Thumb bit).
__attribute__((section(".vectors"), used)) const Handler vector_table[16] = {
    reinterpret_cast<Handler>(__stack_top__),
    Reset_Handler,
    Fault_Handler,  // NMI
    Fault_Handler,  // HardFault
    Fault_Handler,  // MemManage (v7-M)
    Fault_Handler,  // BusFault (v7-M)
    Fault_Handler,  // UsageFault (v7-M)
    nullptr, nullptr, nullptr, nullptr,
    Fault_Handler,  // SVCall
    Fault_Handler,  // DebugMonitor (v7-M)
    nullptr,
    Fault_Handler,  // PendSV
    SysTick_Handler,
};
