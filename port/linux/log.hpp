// Log lines on stderr, each with a wall-clock timestamp and a level, so stdout can
// carry frames only. Logging never blocks the loop: a line stderr cannot take at once
// is dropped and counted (and the count reported once stderr drains). Anything a peer
// can trigger goes through a LogLimiter, and text from a peer through escape_text().
#pragma once

#include <cstdarg>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tcpcan::linux_port {

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3 };

// Parses DEBUG|INFO|WARNING|ERROR (any case); false for anything else.
bool parse_log_level(std::string_view text, LogLevel& level);

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));
// Lines dropped because stderr could not take them without blocking.
std::uint64_t log_lines_dropped();

// Text from a peer, made safe for one log line: printable ASCII stays, a backslash
// becomes "\\", anything else "\xNN"; at most `max` bytes of input are shown.
std::string escape_text(std::string_view text, std::size_t max = 255);

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

// At most `burst` lines per key in each window; the rest are counted, and the next line
// allowed for that key (or flush()) first says how many similar messages were suppressed.
// Keys name a peer and a kind of message ("127.0.0.1:5000 seq-gap"). Bounded: beyond
// `max_keys` the key used least recently is forgotten (its count reported first).
class LogLimiter {
public:
    explicit LogLimiter(std::uint32_t burst = 5, std::uint64_t window_us = 10'000'000, std::size_t max_keys = 512)
        : burst_(burst), window_us_(window_us), max_keys_(max_keys) {}

    // True when a line for `key` may be logged now.
    [[nodiscard]] bool allow(std::string_view key, std::uint64_t now);
    // Reports every suppressed count whose window has ended (call about once a second),
    // and forgets keys idle for a whole window.
    void flush(std::uint64_t now);
    // Reports and forgets every key that starts with `prefix` and a space (a peer that left).
    void release(std::string_view prefix);

private:
    struct Entry {
        std::string key;
        std::uint64_t window_start = 0;
        std::uint32_t count = 0;
        std::uint64_t suppressed = 0;
    };
    static void report(const Entry& e);

    std::uint32_t burst_;
    std::uint64_t window_us_;
    std::size_t max_keys_;
    std::vector<Entry> entries_;
};

}  // namespace tcpcan::linux_port
