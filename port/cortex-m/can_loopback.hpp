// The CAN side of the reference gateway: a CanPort over the registers of a small CAN
// controller (one transmit mailbox, a receive FIFO in message RAM), in loopback mode so
// that what the gateway puts on the bus comes back as received. qemu models no CAN
// controller, so the registers live in RAM and run_loopback_controller() plays the
// hardware; on a real board, point the port at the peripheral and drop that function.
#pragma once

#include <cstdint>

#include <tcpcan/frame.hpp>
#include <tcpcan/interfaces.hpp>

namespace gateway {

// Identifier word as most controllers (and Linux) pack it.
inline constexpr std::uint32_t can_id_extended = 1u << 31;
inline constexpr std::uint32_t can_id_remote = 1u << 30;
inline constexpr std::uint32_t can_id_error = 1u << 29;
inline constexpr std::uint32_t can_id_mask = 0x1FFF'FFFF;

struct CanMailbox {
    std::uint32_t id;       // can_id_* flags | identifier
    std::uint32_t dlc;      // 0..8
    std::uint32_t data[2];  // bytes 0-3 and 4-7, little-endian
};

// Message RAM with put/get indices, as FDCAN-style controllers have: the controller
// writes received frames at rx_put and advances it; software reads at rx_get and
// advances that. Indices run freely; the slot is index % can_rx_fifo_size.
inline constexpr std::uint32_t can_rx_fifo_size = 4;

struct CanRegisters {
    CanMailbox tx;              // written by software
    std::uint32_t tx_request;   // software writes 1 to send; the controller clears it when sent
    CanMailbox rx_fifo[can_rx_fifo_size];
    std::uint32_t rx_put;       // written by the controller
    std::uint32_t rx_get;       // written by software
};

// The controller's side of the registers, for qemu: in loopback mode every frame sent is
// received (when the FIFO has room; otherwise the mailbox stays busy, as on a bus that
// cannot take the frame yet).
inline void run_loopback_controller(volatile CanRegisters& regs) {
    if (regs.tx_request == 0 || regs.rx_put - regs.rx_get >= can_rx_fifo_size) {
        return;
    }
    volatile CanMailbox& slot = regs.rx_fifo[regs.rx_put % can_rx_fifo_size];
    slot.id = regs.tx.id;
    slot.dlc = regs.tx.dlc;
    slot.data[0] = regs.tx.data[0];
    slot.data[1] = regs.tx.data[1];
    regs.rx_put = regs.rx_put + 1;
    regs.tx_request = 0;
}

// The port a gateway writes for its controller: frames in and out of the registers.
class RegisterCanPort final : public tcpcan::CanPort {
public:
    constexpr explicit RegisterCanPort(volatile CanRegisters& regs) : regs_(regs) {}

    bool read(tcpcan::Frame& frame) override {
        const std::uint32_t get = regs_.rx_get;
        if (get == regs_.rx_put) {
            return false;
        }
        const volatile CanMailbox& rx = regs_.rx_fifo[get % can_rx_fifo_size];
        const std::uint32_t id = rx.id;
        frame.flags = static_cast<std::uint8_t>(((id & can_id_extended) ? tcpcan::frame_flag::extended : 0) |
                                                ((id & can_id_remote) ? tcpcan::frame_flag::remote : 0) |
                                                ((id & can_id_error) ? tcpcan::frame_flag::error : 0));
        frame.id = id & can_id_mask;
        const std::uint32_t dlc = rx.dlc;
        frame.len = static_cast<std::uint8_t>(dlc <= tcpcan::max_classic_length ? dlc : tcpcan::max_classic_length);
        frame.timestamp_us = 0;
        for (std::uint32_t i = 0; i < tcpcan::max_classic_length; ++i) {
            frame.data[i] = static_cast<std::uint8_t>(rx.data[i / 4] >> (8 * (i % 4)));
        }
        regs_.rx_get = get + 1;
        return true;
    }

    bool write(const tcpcan::Frame& frame) override {
        if (regs_.tx_request != 0 || frame.is_fd()) {
            return false;  // mailbox busy (a classic controller never gets FD: the session refuses it)
        }
        std::uint32_t words[2] = {0, 0};
        for (std::uint32_t i = 0; i < frame.len && i < tcpcan::max_classic_length; ++i) {
            words[i / 4] |= std::uint32_t{frame.data[i]} << (8 * (i % 4));
        }
        regs_.tx.id = (frame.id & can_id_mask) | (frame.is_extended() ? can_id_extended : 0) |
                      (frame.is_remote() ? can_id_remote : 0) | (frame.is_error() ? can_id_error : 0);
        regs_.tx.dlc = frame.len;
        regs_.tx.data[0] = words[0];
        regs_.tx.data[1] = words[1];
        regs_.tx_request = 1;
        return true;
    }

private:
    volatile CanRegisters& regs_;
};

}  // namespace gateway
