// The files TLS and least privilege read at start: pre-shared keys (--tls-psk-file) and the
// permission check every secret file passes. Each parser names the file and line of the
// first problem; nothing here keeps a file open.
//
// PSK file: one `IDENTITY:HEXKEY` per line; blank lines and lines starting with '#' are
// ignored; spaces around either part are trimmed. The identity is 1-128 printable ASCII
// characters (it appears in logs); the key is 16-64 bytes written as 32-128 hex digits
// (`openssl rand -hex 32` makes one). The identity ends at the last ':' of the line. A server
// accepts every entry; a client uses the first one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tcpcan::linux_port {

inline constexpr std::size_t min_psk_bytes = 16;   // 128 bits
inline constexpr std::size_t max_psk_bytes = 64;
inline constexpr std::size_t max_identity_length = 128;
inline constexpr std::size_t max_config_file_bytes = 1 << 20;  // bounds what a start reads

struct PskEntry {
    std::string identity;
    std::vector<std::uint8_t> key;
};

struct PskFileResult {
    bool ok = false;
    std::vector<PskEntry> entries;  // file order; never empty when ok
    std::string error;              // "FILE line N: what is wrong", when !ok
};

// Parses PSK text; `source` names it in errors (the file name).
[[nodiscard]] PskFileResult parse_psk_text(std::string_view text, std::string_view source);

// Checks the file's permissions (see check_secret_file), reads and parses it.
[[nodiscard]] PskFileResult load_psk_file(const std::string& path);

// Empty when `path` is a regular file that neither group nor others may read, write or
// execute; otherwise a sentence saying what is wrong (e.g. "...is readable by group or
// others (mode 0644); run chmod 600 ..."). For key files and private keys.
[[nodiscard]] std::string check_secret_file(const std::string& path);

// Reads a whole file of at most max_config_file_bytes; false with `error` set otherwise.
[[nodiscard]] bool read_small_file(const std::string& path, std::string& contents, std::string& error);

// The line numbered lines of `text` (1-based), without their '\r\n' or '\n'; for parsers.
struct TextLine {
    std::size_t number;
    std::string_view text;
};
[[nodiscard]] std::vector<TextLine> split_lines(std::string_view text);
[[nodiscard]] std::string_view trim(std::string_view text);

}  // namespace tcpcan::linux_port
