// The byte stream of the reference gateway on an Arm MPS2 board (qemu `mps2-an386`,
// Cortex-M4): UART0, an Arm CMSDK APB UART, polled through its registers (CMSDK
// Technical Reference Manual, "APB UART"). qemu connects it to `-serial`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <tcpcan/interfaces.hpp>

namespace gateway {

class CmsdkUart final : public tcpcan::ByteStream {
public:
    void start() {
        reg(bauddiv) = 25'000'000 / 115'200;  // 217; qemu refuses dividers below 16
        reg(ctrl) = ctrl_tx_enable | ctrl_rx_enable;
    }

    tcpcan::StreamRead read(std::span<std::uint8_t> buffer) override {
        std::size_t n = 0;
        while (n < buffer.size() && (reg(state) & state_rx_full) != 0) {
            buffer[n++] = static_cast<std::uint8_t>(reg(data));  // reading empties the buffer
        }
        return {n, false};  // a serial line never closes; the session's dead-peer timer decides
    }

    std::size_t write(std::span<const std::uint8_t> bytes) override {
        std::size_t n = 0;
        while (n < bytes.size() && (reg(state) & state_tx_full) == 0) {
            reg(data) = bytes[n++];
        }
        return n;
    }

private:
    static constexpr std::uintptr_t base = 0x4000'4000;
    static constexpr std::uintptr_t data = 0x00;
    static constexpr std::uintptr_t state = 0x04;
    static constexpr std::uintptr_t ctrl = 0x08;
    static constexpr std::uintptr_t bauddiv = 0x10;
    static constexpr std::uint32_t state_tx_full = 1u << 0;
    static constexpr std::uint32_t state_rx_full = 1u << 1;
    static constexpr std::uint32_t ctrl_tx_enable = 1u << 0;
    static constexpr std::uint32_t ctrl_rx_enable = 1u << 1;

    static volatile std::uint32_t& reg(std::uintptr_t offset) {
        return *reinterpret_cast<volatile std::uint32_t*>(base + offset);
    }
};

}  // namespace gateway
