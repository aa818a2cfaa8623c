#include "message_text.hpp"

#include <cstdio>

#include <tcpcan/detail/endian.hpp>

namespace tcpcan::test {

std::string to_hex(const std::uint8_t* data, std::size_t size) {
    std::string s;
    char buf[3];
    for (std::size_t i = 0; i < size; ++i) {
        std::snprintf(buf, sizeof buf, "%02X", data[i]);
        s += buf;
    }
    return s;
}

std::vector<std::uint8_t> from_hex(const std::string& text) {
    std::vector<std::uint8_t> out;
    std::string digits;
    for (char c : text) {
        if (c != ' ') {
            digits += c;
        }
    }
    for (std::size_t i = 0; i + 1 < digits.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
    }
    return out;
}

static std::string hex32(std::uint32_t v, const char* format = "%08X") {
    char buf[16];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

static std::string describe_frame(const Message& m) {
    const Frame& f = m.frame;
    std::string s = std::string(1, static_cast<char>(m.prefix)) + " id=" + hex32(f.id, "%X");
    const char* names[] = {"ext", "rtr", "err", "fd", "brs", "esi"};
    for (int bit = 0; bit < 6; ++bit) {
        if (f.flags & (1u << bit)) {
            s += std::string(" ") + names[bit];
        }
    }
    s += " len=" + std::to_string(f.len);
    if (m.has_sequence) {
        s += " seq=" + std::to_string(m.sequence);
    }
    if (m.has_timestamp) {
        s += " ts=" + std::to_string(f.timestamp_us);
    }
    if (!f.is_remote() && f.len > 0) {
        s += " data=" + to_hex(f.data.data(), f.len);
    }
    return s;
}

std::string describe_message(const Message& m) {
    switch (m.type) {
    case MessageType::version: return "v " + std::to_string(m.value);
    case MessageType::features: return "h " + hex32(m.value);
    case MessageType::ping: return "p " + hex32(m.value);
    case MessageType::pong: return "q " + hex32(m.value);
    case MessageType::data_v1:
    case MessageType::frame: return describe_frame(m);
    case MessageType::subscribe: {
        std::string s = m.payload[0] == 0 ? "s replace" : "s append";
        for (std::size_t at = 1; at + 9 <= m.payload_size; at += 9) {
            const std::uint8_t kind = m.payload[at];
            s += " ";
            s += (kind & wire_filter::inverted) ? "!" : "";
            s += hex32(detail::load_be32(&m.payload[at + 1]), "%X");
            s += (kind & wire_filter::mask_form) ? "/" : "-";
            s += hex32(detail::load_be32(&m.payload[at + 5]), "%X");
            s += (kind & wire_filter::extended) ? "x" : "";
        }
        return s;
    }
    case MessageType::close:
        return "c " + std::to_string(m.payload[0]) + " \"" + std::string(m.close_text()) + "\"";
    case MessageType::bus:
        return "b " + std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload_size);
    case MessageType::ack: return "k " + std::to_string(m.value);
    case MessageType::resume_accepted: return "a " + std::to_string(m.value);
    case MessageType::resume_request: return "r " + hex32(static_cast<std::uint32_t>(m.token() >> 32)) + hex32(static_cast<std::uint32_t>(m.token())) + " " + std::to_string(m.value);
    case MessageType::session_token: return "t " + hex32(static_cast<std::uint32_t>(m.token() >> 32)) + hex32(static_cast<std::uint32_t>(m.token()));
    case MessageType::skipped:
        return "skip " + std::string(1, static_cast<char>(m.prefix)) + " " + std::to_string(m.payload_size);
    }
    return "?";
}

}  // namespace tcpcan::test
