// The byte stream of the reference gateway on a BBC micro:bit (nRF51822, Cortex-M0):
// UART0 polled through its registers (nRF51 Reference Manual, chapter UART). qemu's
// `microbit` board models it and connects it to `-serial`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <tcpcan/interfaces.hpp>

namespace gateway {

class Nrf51Uart final : public tcpcan::ByteStream {
public:
    void start() {
        reg(enable) = 4;               // UART (not UARTE)
        reg(baudrate) = 0x01D7'E000;   // 115200 baud; qemu ignores it, a real link needs it
        reg(events_txdrdy) = 0;
        reg(events_rxdrdy) = 0;
        reg(tasks_starttx) = 1;
        reg(tasks_startrx) = 1;
    }

    tcpcan::StreamRead read(std::span<std::uint8_t> buffer) override {
        std::size_t n = 0;
        while (n < buffer.size() && reg(events_rxdrdy) != 0) {
            reg(events_rxdrdy) = 0;  // cleared before RXD is read: the next byte sets it again
            buffer[n++] = static_cast<std::uint8_t>(reg(rxd));
        }
        return {n, false};  // a serial line never closes; the session's dead-peer timer decides
    }

    std::size_t write(std::span<const std::uint8_t> bytes) override {
        std::size_t n = 0;
        while (n < bytes.size()) {
            if (tx_busy_) {
                if (reg(events_txdrdy) == 0) {
                    break;  // the previous byte is still going out: try again next pass
                }
                reg(events_txdrdy) = 0;
            }
            reg(txd) = bytes[n++];
            tx_busy_ = true;
        }
        return n;
    }

private:
    static constexpr std::uintptr_t base = 0x4000'2000;
    static constexpr std::uintptr_t tasks_startrx = 0x000;
    static constexpr std::uintptr_t tasks_starttx = 0x008;
    static constexpr std::uintptr_t events_rxdrdy = 0x108;
    static constexpr std::uintptr_t events_txdrdy = 0x11C;
    static constexpr std::uintptr_t enable = 0x500;
    static constexpr std::uintptr_t rxd = 0x518;
    static constexpr std::uintptr_t txd = 0x51C;
    static constexpr std::uintptr_t baudrate = 0x524;

    static volatile std::uint32_t& reg(std::uintptr_t offset) {
        return *reinterpret_cast<volatile std::uint32_t*>(base + offset);
    }

    bool tx_busy_ = false;
};

}  // namespace gateway
