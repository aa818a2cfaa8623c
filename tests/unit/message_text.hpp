// Test helpers: messages as the one-line descriptions PROTOCOL.md's vectors use,
// and hex text to bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <tcpcan/message.hpp>

namespace tcpcan::test {

std::string describe_message(const Message& m);
std::vector<std::uint8_t> from_hex(const std::string& text);  // ignores spaces
std::string to_hex(const std::uint8_t* data, std::size_t size);

}  // namespace tcpcan::test
