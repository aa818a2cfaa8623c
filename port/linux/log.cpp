#include "log.hpp"

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>

namespace tcpcan::linux_port {

namespace {
LogLevel current_level = LogLevel::info;
const char* const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
std::uint64_t dropped_lines = 0;
std::uint64_t dropped_reported = 0;

// Writes one whole line to stderr if it can be done without blocking. journald's
// stderr is a socket (MSG_DONTWAIT); a pipe or terminal is asked with poll() first:
// a pipe that polls writable has a free page, more than a line needs.
bool write_without_blocking(const char* data, std::size_t size) {
    const ssize_t sent = ::send(STDERR_FILENO, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) {
        return static_cast<std::size_t>(sent) == size;
    }
    if (errno != ENOTSOCK) {
        return false;
    }
    pollfd p{STDERR_FILENO, POLLOUT, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & POLLOUT) == 0) {
        return false;
    }
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(STDERR_FILENO, data + done, size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

std::size_t format_line(char* line, std::size_t capacity, LogLevel level, const char* format, va_list args) {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    tm local{};
    localtime_r(&tv.tv_sec, &local);
    int n = static_cast<int>(strftime(line, capacity, "%Y-%m-%d %H:%M:%S", &local));
    n += std::snprintf(line + n, capacity - static_cast<std::size_t>(n), ".%06ld %-7s ", static_cast<long>(tv.tv_usec),
                       level_names[static_cast<int>(level)]);
    const int body = std::vsnprintf(line + n, capacity - static_cast<std::size_t>(n) - 1, format, args);
    std::size_t total = static_cast<std::size_t>(n) + (body > 0 ? static_cast<std::size_t>(body) : 0);
    total = std::min(total, capacity - 2);
    line[total++] = '\n';
    return total;
}

void vemit(LogLevel level, const char* format, va_list args) {
    char line[1024];
    const std::size_t size = format_line(line, sizeof line, level, format, args);
    if (!write_without_blocking(line, size)) {
        ++dropped_lines;
    }
}

void emit(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));
void emit(LogLevel level, const char* format, ...) {
    va_list args;
    va_start(args, format);
    vemit(level, format, args);
    va_end(args);
}
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

std::uint64_t log_lines_dropped() { return dropped_lines; }

void log(LogLevel level, const char* format, ...) {
    if (dropped_lines != dropped_reported) {
        const std::uint64_t before = dropped_lines;
        emit(LogLevel::warning, "%llu log lines dropped: stderr was not taking them",
             static_cast<unsigned long long>(before - dropped_reported));
        if (dropped_lines == before) {
            dropped_reported = before;
        }
    }
    va_list args;
    va_start(args, format);
    vemit(level, format, args);
    va_end(args);
}

std::string escape_text(std::string_view text, std::size_t max) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    const std::size_t n = std::min(text.size(), max);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c < 0x7F) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    if (text.size() > max) {
        out += "...";
    }
    return out;
}

bool LogLimiter::allow(std::string_view key, std::uint64_t now) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [key](const Entry& e) { return e.key == key; });
    if (it == entries_.end()) {
        if (entries_.size() >= max_keys_) {
            // Forget the key whose window started longest ago.
            auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                           [](const Entry& a, const Entry& b) { return a.window_start < b.window_start; });
            report(*oldest);
            entries_.erase(oldest);
        }
        entries_.push_back(Entry{std::string(key), now, 0, 0});
        it = entries_.end() - 1;
    }
    if (now - it->window_start >= window_us_) {
        report(*it);
        it->window_start = now;
        it->count = 0;
        it->suppressed = 0;
    }
    if (it->count < burst_) {
        ++it->count;
        return true;
    }
    ++it->suppressed;
    return false;
}

void LogLimiter::flush(std::uint64_t now) {
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (now - it->window_start >= window_us_) {
            report(*it);
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
}

void LogLimiter::release(std::string_view prefix) {
    for (auto it = entries_.begin(); it != entries_.end();) {
        const std::string_view key = it->key;
        if (key.size() > prefix.size() && key.substr(0, prefix.size()) == prefix && key[prefix.size()] == ' ') {
            report(*it);
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
}

void LogLimiter::report(const Entry& e) {
    if (e.suppressed > 0) {
        LOG_WARNING("%s: %llu similar messages suppressed", e.key.c_str(), static_cast<unsigned long long>(e.suppressed));
    }
}

}  // namespace tcpcan::linux_port
