// Log lines on stderr, each with a wall-clock timestamp and a level, so stdout can
// carry frames only.
#pragma once

#include <cstdarg>
#include <string_view>

namespace tcpcan::linux_port {

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3 };

// Parses DEBUG|INFO|WARNING|ERROR (any case); false for anything else.
bool parse_log_level(std::string_view text, LogLevel& level);

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

#define TCPCAN_LOG(level, ...)                                   \
    do {                                                         \
        if (::tcpcan::linux_port::log_enabled(level)) {          \
            ::tcpcan::linux_port::log(level, __VA_ARGS__);       \
        }                                                        \
    } while (0)
#define LOG_DEBUG(...) TCPCAN_LOG(::tcpcan::linux_port::LogLevel::debug, __VA_ARGS__)
#define LOG_INFO(...) TCPCAN_LOG(::tcpcan::linux_port::LogLevel::info, __VA_ARGS__)
#define LOG_WARNING(...) TCPCAN_LOG(::tcpcan::linux_port::LogLevel::warning, __VA_ARGS__)
#define LOG_ERROR(...) TCPCAN_LOG(::tcpcan::linux_port::LogLevel::error, __VA_ARGS__)

}  // namespace tcpcan::linux_port
