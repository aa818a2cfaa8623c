#include "tls_options.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <tcpcan/filter.hpp>

namespace tcpcan::linux_port {

namespace {

// One hex digit's value, or -1: the same rule as the filter syntax.
constexpr int hex_value(char c) { return tcpcan::detail::filter_hex_value(c); }

std::string at_line(std::string_view source, std::size_t line) {
    return std::string(source) + " line " + std::to_string(line) + ": ";
}

bool printable_identity(std::string_view identity) {
    for (const char c : identity) {
        if (c < 0x20 || c > 0x7E) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string_view trim(std::string_view text) {
    const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!text.empty() && is_space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

std::vector<TextLine> split_lines(std::string_view text) {
    std::vector<TextLine> lines;
    std::size_t number = 1;
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        lines.push_back({number++, line});
        if (end == std::string_view::npos) {
            break;
        }
        text.remove_prefix(end + 1);
    }
    return lines;
}

PskFileResult parse_psk_text(std::string_view text, std::string_view source) {
    PskFileResult result;
    for (const TextLine& line : split_lines(text)) {
        const std::string_view content = trim(line.text);
        if (content.empty() || content.front() == '#') {
            continue;
        }
        const auto fail = [&](const std::string& what) {
            result.entries.clear();
            result.error = at_line(source, line.number) + what;
            return result;
        };
        const std::size_t colon = content.rfind(':');
        if (colon == std::string_view::npos) {
            return fail("expected IDENTITY:HEXKEY (no ':' on the line)");
        }
        const std::string_view identity = trim(content.substr(0, colon));
        const std::string_view hex = trim(content.substr(colon + 1));
        if (identity.empty()) {
            return fail("empty identity before ':'");
        }
        if (identity.size() > max_identity_length) {
            return fail("identity longer than " + std::to_string(max_identity_length) + " characters");
        }
        if (!printable_identity(identity)) {
            return fail("identity holds a character that is not printable ASCII");
        }
        if (hex.empty()) {
            return fail("empty key after ':'");
        }
        PskEntry entry{std::string(identity), {}};
        for (std::size_t i = 0; i < hex.size(); ++i) {
            if (hex_value(hex[i]) < 0) {
                return fail("key character " + std::to_string(i + 1) + " ('" + std::string(1, hex[i]) +
                            "') is not a hexadecimal digit");
            }
        }
        if (hex.size() % 2 != 0) {
            return fail("key has an odd number of hex digits (" + std::to_string(hex.size()) + ")");
        }
        const std::size_t bytes = hex.size() / 2;
        if (bytes < min_psk_bytes || bytes > max_psk_bytes) {
            return fail("key is " + std::to_string(bytes) + " bytes; keys are " + std::to_string(min_psk_bytes) +
                        " to " + std::to_string(max_psk_bytes) + " bytes (make one with: openssl rand -hex 32)");
        }
        for (std::size_t i = 0; i < hex.size(); i += 2) {
            entry.key.push_back(static_cast<std::uint8_t>(hex_value(hex[i]) * 16 + hex_value(hex[i + 1])));
        }
        for (const PskEntry& earlier : result.entries) {
            if (earlier.identity == entry.identity) {
                return fail("identity '" + entry.identity + "' appears twice");
            }
        }
        result.entries.push_back(std::move(entry));
    }
    if (result.entries.empty()) {
        result.error = std::string(source) + ": no IDENTITY:HEXKEY line";
        return result;
    }
    result.ok = true;
    return result;
}

std::string check_secret_file(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        return "cannot read " + path + ": " + std::strerror(errno);
    }
    if (!S_ISREG(info.st_mode)) {
        return path + " is not a regular file";
    }
    const unsigned mode = info.st_mode & 07777u;
    if ((mode & (S_IRWXG | S_IRWXO)) != 0) {
        char octal[8];
        std::snprintf(octal, sizeof octal, "%04o", mode);
        return path + " holds secret keys but is readable or writable by group or others (mode " + octal +
               "); refusing it: run chmod 600 " + path;
    }
    return {};
}

bool read_small_file(const std::string& path, std::string& contents, std::string& error) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = "cannot open " + path + ": " + std::strerror(errno);
        return false;
    }
    contents.clear();
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error = "cannot read " + path + ": " + std::strerror(errno);
            ::close(fd);
            return false;
        }
        if (contents.size() + static_cast<std::size_t>(n) > max_config_file_bytes) {
            error = path + " is larger than " + std::to_string(max_config_file_bytes) + " bytes";
            ::close(fd);
            return false;
        }
        contents.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return true;
}

PskFileResult load_psk_file(const std::string& path) {
    PskFileResult result;
    result.error = check_secret_file(path);
    if (!result.error.empty()) {
        return result;
    }
    std::string text;
    if (!read_small_file(path, text, result.error)) {
        return result;
    }
    return parse_psk_text(text, path);
}

}  // namespace tcpcan::linux_port
