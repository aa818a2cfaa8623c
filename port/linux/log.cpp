#include "log.hpp"

#include <cstdio>
#include <ctime>
#include <strings.h>
#include <sys/time.h>

namespace tcpcan::linux_port {

namespace {
LogLevel current_level = LogLevel::info;
const char* const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
}  // namespace

bool parse_log_level(std::string_view text, LogLevel& level) {
    for (int i = 0; i < 4; ++i) {
        const std::string_view name = level_names[i];
        if (text.size() == name.size() && strncasecmp(text.data(), name.data(), name.size()) == 0) {
            level = static_cast<LogLevel>(i);
            return true;
        }
    }
    return false;
}

void set_log_level(LogLevel level) { current_level = level; }

bool log_enabled(LogLevel level) { return level >= current_level; }

void log(LogLevel level, const char* format, ...) {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    tm local{};
    localtime_r(&tv.tv_sec, &local);
    char line[1024];
    int n = static_cast<int>(strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &local));
    n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), ".%06ld %-7s ", static_cast<long>(tv.tv_usec),
                       level_names[static_cast<int>(level)]);
    va_list args;
    va_start(args, format);
    const int body = std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n) - 1, format, args);
    va_end(args);
    std::size_t total = static_cast<std::size_t>(n) + (body > 0 ? static_cast<std::size_t>(body) : 0);
    if (total > sizeof line - 2) {
        total = sizeof line - 2;
    }
    line[total++] = '\n';
    // One write per line keeps lines whole when several processes share stderr.
    std::fwrite(line, 1, total, stderr);
    std::fflush(stderr);
}

}  // namespace tcpcan::linux_port
