// socketcand's text protocol (linux-can/socketcand, doc/protocol.md), server side, without
// I/O or allocation: a scanner that finds `< … >` messages in a byte stream however it is cut
// into reads, a parser for the commands clients send, and formatters for what a server says.
//
// What the real clients send and expect (python-can 4.1's `socketcand` interface, SavvyCAN),
// and the choices made here where they disagree with each other or with socketcand:
// - Messages are `<` … `>` with blank-separated tokens. Any number of blanks separates tokens
//   (python-can 4.1 writes `< send 123 0  >` for an empty frame). Blanks between messages are
//   ignored; any other byte outside a message is an error (socketcand throws such bytes away
//   and hangs up when a read has nothing else). A message is at most 8,290 bytes from `<` to
//   `>`, socketcand's own buffer (MAXLEN, 2 * 4095 + 100).
// - A command split over any number of reads is put together (socketcand hangs up instead).
// - `< send ID LEN B… >`:
//   ID: 1 to 8 hex digits. Extended when it has more than 3 digits or is above 0x7FF
//   (socketcand: exactly 8 digits; python-can 4.1 writes `{:X}`, so an extended 0x1234 arrives
//   as `1234`). An extended identifier of 0x7FF or below written in 3 digits or fewer cannot
//   be told from a standard one: it is standard. Bit 31 set (SavvyCAN under Qt 5 writes an
//   extended id as `8xxxxxxx`) means extended and is stripped; a leading '-' (the same number
//   formatted by Qt 6) is read as the 32-bit two's complement. Bits 29 and 30 are refused.
//   LEN: the number of byte tokens that follow, in decimal (socketcand, SavvyCAN) or in hex
//   (python-can writes `{:X}`); either reading that matches the count is accepted, so `20`
//   with 32 bytes and `20` with 20 bytes are both right. For 0..8 the two agree.
//   Bytes: 1 or 2 hex digits, any case. SavvyCAN under Qt 5 sign-extends bytes from 0x80 up
//   (`ffffff80`): an 8-digit token from ffffff80 to ffffffff is its low 8 bits; `-80` .. `-1`
//   (Qt 6) are read the same way. Anything else is refused.
//   More than 8 bytes only after `< fdmode >` (see below); then a valid CAN FD length makes an
//   FD frame (without BRS), and up to 8 bytes stay a classic frame.
// - Remote (RTR) frames are not carried in either direction (socketcand drops them too):
//   `< sendrtr … >` is refused with a reason.
// - `< fdmode >` (a tcpcan extension; socketcand answers it `< error unknown command >`):
//   the client asks for CAN FD as socketcand's open proposal carries it, in `< frame >` and
//   `< send >` with up to 64 bytes. It cannot mark an FD frame of 8 bytes or fewer, BRS or
//   ESI: such frames reach the client as plain `< frame >` messages.
// - Server output follows socketcand byte for byte: `< frame ID SEC.USEC HEX >` with ID
//   `%03X` (standard) or `%08X` (extended), seconds without padding, six microsecond digits,
//   data as uppercase hex without spaces; an empty frame is `< frame 123 1.000000  >` (two
//   spaces: python-can 4.1 splits on single spaces and needs the empty data field).
//   Error frames are `< error CLASS SEC.USEC >` with CLASS `%03X` (socketcand since 2025;
//   python-can from 4.6 reads it, 4.1 logs and skips it, SavvyCAN ignores it); their data
//   bytes are not carried.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "../candump_text.hpp"  // detail::candump: hex digits and decimal output, one copy
#include "../frame.hpp"

namespace tcpcan::socketcand {

namespace text = ::tcpcan::detail::candump;  // hex digits and blanks, as candump text reads them

inline constexpr std::uint16_t default_port = 29536;
inline constexpr std::uint16_t beacon_port = 42000;
// socketcand's receive buffer (MAXLEN): the longest message, `<` and `>` included.
inline constexpr std::size_t max_message_size = 2 * 4095 + 100;
// `< frame ` + 8 id digits + ' ' + 14 second digits (2^64 us) + '.' + 6 + ' ' + 128 hex digits + ` >`.
inline constexpr std::size_t max_frame_text = 8 + 8 + 1 + 14 + 1 + 6 + 1 + 2 * max_fd_length + 2;
// The longest reply formatted from a text of ours (error reasons are short constants).
inline constexpr std::size_t max_reply_text = 160;

// ---------------------------------------------------------------------------------------
// Scanner: finds whole messages in the stream.

enum class ScanStatus : std::uint8_t {
    message,    // message() holds one whole message, `<` to `>`
    need_more,  // every byte was taken; the message goes on in the next input
    error,      // error() and error_offset() say what is wrong; sticky
};

enum class ScanError : std::uint8_t {
    none,
    text_outside_message,
    message_too_long,
};

[[nodiscard]] constexpr const char* describe(ScanError error) {
    switch (error) {
    case ScanError::none: return "no error";
    case ScanError::text_outside_message: return "text outside the angle brackets of a message";
    case ScanError::message_too_long: return "message longer than 8290 bytes without its closing '>'";
    }
    return "unknown error";
}

struct ScanResult {
    ScanStatus status;
    std::size_t consumed;  // bytes of the input taken (a message ends at its '>')
};

/// Finds `<` … `>` messages in a byte stream cut into reads anywhere. Holds at most one
/// partial message (max_message_size bytes). Call scan() on the input, act on a `message`,
/// then call it again on the rest of the input (after `consumed` bytes) until `need_more`.
class MessageScanner {
public:
    [[nodiscard]] constexpr ScanResult scan(std::span<const std::uint8_t> input) {
        if (error_ != ScanError::none) {
            return {ScanStatus::error, 0};
        }
        std::size_t pos = 0;
        if (!in_message_) {
            while (pos < input.size() && text::is_blank(static_cast<char>(input[pos]))) {
                ++pos;
            }
            if (pos == input.size()) {
                offset_ += pos;
                return {ScanStatus::need_more, pos};
            }
            if (input[pos] != '<') {
                return fail(ScanError::text_outside_message, pos);
            }
            in_message_ = true;
        }
        const std::size_t start = pos;
        // The message may take max_message_size bytes in all, its '>' included.
        const std::size_t room = max_message_size - length_;
        const std::size_t limit = input.size() - start < room ? input.size() : start + room;
        while (pos < limit && input[pos] != '>') {
            ++pos;
        }
        if (pos == start + room) {
            return fail(ScanError::message_too_long, pos);
        }
        if (pos == input.size()) {
            append(input.subspan(start, pos - start));
            offset_ += pos;
            return {ScanStatus::need_more, pos};
        }
        ++pos;  // the '>'
        if (length_ == 0) {
            message_ = std::string_view(reinterpret_cast<const char*>(input.data() + start), pos - start);
        } else {
            append(input.subspan(start, pos - start));
            message_ = std::string_view(buffer_.data(), length_);
            length_ = 0;
        }
        in_message_ = false;
        offset_ += pos;
        return {ScanStatus::message, pos};
    }

    /// The message the last scan() found; it points into that input or into the scanner,
    /// valid until the next scan().
    [[nodiscard]] constexpr std::string_view message() const { return message_; }
    [[nodiscard]] constexpr ScanError error() const { return error_; }
    /// Offset in the whole stream of the byte where the error was found.
    [[nodiscard]] constexpr std::uint64_t error_offset() const { return error_offset_; }
    /// Bytes of an unfinished message held.
    [[nodiscard]] constexpr std::size_t pending() const { return in_message_ ? length_ : 0; }

private:
    constexpr void append(std::span<const std::uint8_t> bytes) {
        for (std::uint8_t b : bytes) {
            buffer_[length_++] = static_cast<char>(b);
        }
    }
    constexpr ScanResult fail(ScanError error, std::size_t pos) {
        error_ = error;
        error_offset_ = offset_ + pos;
        length_ = 0;
        return {ScanStatus::error, pos};
    }

    std::array<char, max_message_size> buffer_{};
    std::size_t length_ = 0;
    bool in_message_ = false;
    std::string_view message_{};
    std::uint64_t offset_ = 0;
    ScanError error_ = ScanError::none;
    std::uint64_t error_offset_ = 0;
};

// ---------------------------------------------------------------------------------------
// Commands a client sends.

enum class CommandKind : std::uint8_t {
    open,         // text = bus name
    rawmode,
    bcmmode,
    controlmode,
    isotpmode,
    fdmode,       // tcpcan extension: CAN FD in < frame > and < send >
    echo,
    send,         // frame
    statistics,   // number = interval in ms, 0 = off
    bcm_command,  // add, update, delete, filter, muxfilter, subscribe, unsubscribe
    isotp_command,  // isotpconf, sendpdu
    send_remote,  // sendrtr
    unknown,      // a word this server does not know
    invalid,      // a known command with bad arguments: error says which
};

enum class CommandError : std::uint8_t {
    none,
    not_a_message,
    empty_message,
    missing_bus_name,
    extra_arguments,
    missing_id,
    bad_id,
    id_too_long,
    id_too_large,
    missing_length,
    bad_length,
    too_many_bytes,
    bad_byte,
    length_mismatch,
    classic_too_long,
    bad_fd_length,
    bad_interval,
};

[[nodiscard]] constexpr const char* describe(CommandError error) {
    switch (error) {
    case CommandError::none: return "no error";
    case CommandError::not_a_message: return "not a message in angle brackets";
    case CommandError::empty_message: return "empty message";
    case CommandError::missing_bus_name: return "open needs a bus name";
    case CommandError::extra_arguments: return "too many arguments";
    case CommandError::missing_id: return "send needs an identifier";
    case CommandError::bad_id: return "identifier is not hex";
    case CommandError::id_too_long: return "identifier has more than 8 hex digits";
    case CommandError::id_too_large: return "identifier above 0x1FFFFFFF";
    case CommandError::missing_length: return "send needs a length";
    case CommandError::bad_length: return "length is not a number";
    case CommandError::too_many_bytes: return "more than 64 data bytes";
    case CommandError::bad_byte: return "data byte is not 1 or 2 hex digits";
    case CommandError::length_mismatch: return "length does not match the number of data bytes";
    case CommandError::classic_too_long: return "more than 8 data bytes (CAN FD needs the fdmode command first)";
    case CommandError::bad_fd_length: return "CAN FD length not one of 0-8, 12, 16, 20, 24, 32, 48, 64";
    case CommandError::bad_interval: return "statistics interval is not a number of milliseconds";
    }
    return "unknown error";
}

struct Command {
    CommandKind kind = CommandKind::invalid;
    CommandError error = CommandError::none;  // set for `invalid`
    std::string_view word{};                  // the command word as sent (for `unknown`)
    std::string_view text{};                  // open: the bus name
    std::uint32_t number = 0;                 // statistics: the interval in ms
    Frame frame{};                            // send
};

struct ParseOptions {
    bool fd = false;  // the client asked for CAN FD (< fdmode >)
};

namespace detail {

using text::nibble;
using text::no_nibble;

// Blank-separated tokens of a message's inside.
class Tokens {
public:
    constexpr explicit Tokens(std::string_view inside) : text_(inside) {}
    [[nodiscard]] constexpr bool next(std::string_view& token) {
        while (pos_ < text_.size() && text::is_blank(text_[pos_])) {
            ++pos_;
        }
        if (pos_ == text_.size()) {
            return false;
        }
        const std::size_t start = pos_;
        while (pos_ < text_.size() && !text::is_blank(text_[pos_])) {
            ++pos_;
        }
        token = text::slice(text_, start, pos_);
        return true;
    }
    [[nodiscard]] constexpr bool at_end() {
        std::string_view ignored;
        const std::size_t saved = pos_;
        const bool more = next(ignored);
        pos_ = saved;
        return !more;
    }

private:
    std::string_view text_;
    std::size_t pos_ = 0;
};

// Up to 8 hex digits; false for anything else.
[[nodiscard]] constexpr bool parse_hex32(std::string_view t, std::uint32_t& value) {
    if (t.empty() || t.size() > 8) {
        return false;
    }
    std::uint32_t v = 0;
    for (char c : t) {
        const std::uint8_t n = nibble(c);
        if (n == no_nibble) {
            return false;
        }
        v = (v << 4) | n;
    }
    value = v;
    return true;
}

[[nodiscard]] constexpr bool parse_decimal32(std::string_view t, std::uint32_t& value) {
    if (t.empty() || t.size() > 9) {
        return false;
    }
    std::uint32_t v = 0;
    for (char c : t) {
        if (!text::is_digit(c)) {
            return false;
        }
        v = v * 10 + static_cast<std::uint32_t>(c - '0');
    }
    value = v;
    return true;
}

[[nodiscard]] constexpr bool parse_byte(std::string_view t, std::uint8_t& byte) {
    std::uint32_t v = 0;
    if (!t.empty() && t[0] == '-') {
        // Qt 6 formats a negative char as "-80": the byte is its two's complement.
        if (t.size() > 3 || !parse_hex32(text::slice(t, 1, t.size()), v) || v == 0 || v > 0x80) {
            return false;
        }
        byte = static_cast<std::uint8_t>(0x100 - v);
        return true;
    }
    if (t.size() <= 2) {
        if (!parse_hex32(t, v)) {
            return false;
        }
        byte = static_cast<std::uint8_t>(v);
        return true;
    }
    // Qt 5 formats a negative char as the 32-bit "ffffff80": only a real sign extension.
    if (t.size() == 8 && parse_hex32(t, v) && v >= 0xFFFF'FF80u) {
        byte = static_cast<std::uint8_t>(v & 0xFF);
        return true;
    }
    return false;
}

[[nodiscard]] constexpr CommandError parse_id(std::string_view t, Frame& frame) {
    std::uint32_t v = 0;
    bool extended = false;
    if (!t.empty() && t[0] == '-') {
        std::uint32_t magnitude = 0;
        if (!parse_hex32(text::slice(t, 1, t.size()), magnitude) || magnitude == 0) {
            return t.size() > 9 ? CommandError::id_too_long : CommandError::bad_id;
        }
        v = ~magnitude + 1;  // Qt 6's "-7ffffedd" is the 32-bit value 0x80000123
        if ((v & 0x8000'0000u) == 0) {
            return CommandError::id_too_large;
        }
    } else if (!parse_hex32(t, v)) {
        for (char c : t) {
            if (nibble(c) == no_nibble) {
                return CommandError::bad_id;
            }
        }
        return CommandError::id_too_long;
    }
    if ((v & 0x8000'0000u) != 0) {
        extended = true;  // SavvyCAN's extended marker, CAN_EFF_FLAG
        v &= 0x7FFF'FFFFu;
    }
    if (v > max_extended_id) {
        return CommandError::id_too_large;
    }
    const std::size_t digits = t[0] == '-' ? 8 : t.size();
    extended = extended || digits > 3 || v > max_standard_id;
    frame.id = v;
    frame.flags = extended ? frame_flag::extended : std::uint8_t{0};
    return CommandError::none;
}

[[nodiscard]] constexpr CommandError parse_send(Tokens& tokens, const ParseOptions& options, Frame& frame) {
    std::string_view id_token;
    std::string_view length_token;
    if (!tokens.next(id_token)) {
        return CommandError::missing_id;
    }
    frame = Frame{};
    if (const CommandError e = parse_id(id_token, frame); e != CommandError::none) {
        return e;
    }
    if (!tokens.next(length_token)) {
        return CommandError::missing_length;
    }
    std::uint32_t as_decimal = 0;
    std::uint32_t as_hex = 0;
    const bool decimal_ok = length_token.size() <= 2 && parse_decimal32(length_token, as_decimal);
    const bool hex_ok = length_token.size() <= 2 && parse_hex32(length_token, as_hex);
    if (!decimal_ok && !hex_ok) {
        return CommandError::bad_length;
    }
    std::size_t count = 0;
    std::string_view byte_token;
    while (tokens.next(byte_token)) {
        if (count == max_fd_length) {
            return CommandError::too_many_bytes;
        }
        if (!parse_byte(byte_token, frame.data[count])) {
            return CommandError::bad_byte;
        }
        ++count;
    }
    const bool matches = (decimal_ok && as_decimal == count) || (hex_ok && as_hex == count);
    const std::uint32_t claimed = decimal_ok ? as_decimal : as_hex;
    if (!options.fd && (count > max_classic_length || (!matches && claimed > max_classic_length))) {
        return CommandError::classic_too_long;
    }
    if (!matches) {
        return CommandError::length_mismatch;
    }
    frame.len = static_cast<std::uint8_t>(count);
    if (count > max_classic_length) {
        if (!is_valid_fd_length(frame.len)) {
            return CommandError::bad_fd_length;
        }
        frame.flags |= frame_flag::fd;
    }
    return CommandError::none;
}

struct Word {
    std::string_view text;
    CommandKind kind;
};

inline constexpr std::array<Word, 19> words{{
    {"open", CommandKind::open},
    {"rawmode", CommandKind::rawmode},
    {"bcmmode", CommandKind::bcmmode},
    {"controlmode", CommandKind::controlmode},
    {"isotpmode", CommandKind::isotpmode},
    {"fdmode", CommandKind::fdmode},
    {"echo", CommandKind::echo},
    {"send", CommandKind::send},
    {"statistics", CommandKind::statistics},
    {"add", CommandKind::bcm_command},
    {"update", CommandKind::bcm_command},
    {"delete", CommandKind::bcm_command},
    {"filter", CommandKind::bcm_command},
    {"muxfilter", CommandKind::bcm_command},
    {"subscribe", CommandKind::bcm_command},
    {"unsubscribe", CommandKind::bcm_command},
    {"isotpconf", CommandKind::isotp_command},
    {"sendpdu", CommandKind::isotp_command},
    {"sendrtr", CommandKind::send_remote},
}};

}  // namespace detail

/// Parses one whole message (as MessageScanner::message() gives it). The result's views
/// point into `message`.
[[nodiscard]] constexpr Command parse_command(std::string_view message, const ParseOptions& options = {}) {
    Command c;
    if (message.size() < 2 || message.front() != '<' || message.back() != '>') {
        c.error = CommandError::not_a_message;
        return c;
    }
    detail::Tokens tokens(text::slice(message, 1, message.size() - 1));
    std::string_view word;
    if (!tokens.next(word)) {
        c.error = CommandError::empty_message;
        return c;
    }
    c.word = word;
    c.kind = CommandKind::unknown;
    for (const detail::Word& w : detail::words) {
        if (w.text == word) {
            c.kind = w.kind;
            break;
        }
    }
    auto fail = [&c](CommandError e) {
        c.kind = CommandKind::invalid;
        c.error = e;
        return c;
    };
    switch (c.kind) {
    case CommandKind::open:
        if (!tokens.next(c.text)) {
            return fail(CommandError::missing_bus_name);
        }
        break;
    case CommandKind::send:
        if (const CommandError e = detail::parse_send(tokens, options, c.frame); e != CommandError::none) {
            return fail(e);
        }
        return c;
    case CommandKind::statistics: {
        std::string_view t;
        if (!tokens.next(t) || !detail::parse_decimal32(t, c.number)) {
            return fail(CommandError::bad_interval);
        }
        break;
    }
    case CommandKind::bcm_command:
    case CommandKind::isotp_command:
    case CommandKind::send_remote:
    case CommandKind::unknown:
        return c;  // refused whatever follows
    default:
        break;
    }
    if (!tokens.at_end()) {
        return fail(CommandError::extra_arguments);
    }
    return c;
}

// ---------------------------------------------------------------------------------------
// What a server sends. Each formatter writes into `out` and returns the bytes written, or 0
// when `out` is too small (or, for frames, when the frame cannot be written this way).

namespace detail {

struct Writer {
    std::span<char> out;
    std::size_t at = 0;
    bool ok = true;

    constexpr void put(char c) {
        if (at < out.size()) {
            out[at++] = c;
        } else {
            ok = false;
        }
    }
    constexpr void put(std::string_view s) {
        for (char c : s) {
            put(c);
        }
    }
    constexpr void put_hex(std::uint32_t value, int digits) {
        for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) {
            put(text::hex_upper(value >> static_cast<unsigned>(shift)));
        }
    }
    // At least `min_digits` digits, zero-padded.
    constexpr void put_decimal(std::uint64_t value, std::size_t min_digits) {
        std::array<char, 20> digits{};
        std::size_t n = 0;
        do {
            digits[n++] = static_cast<char>('0' + value % 10);
            value /= 10;
        } while (value != 0);
        while (n < min_digits) {
            digits[n++] = '0';
        }
        while (n > 0) {
            put(digits[--n]);
        }
    }
    constexpr void put_timestamp(std::uint64_t us) {
        put_decimal(us / 1'000'000u, 1);
        put('.');
        put_decimal(us % 1'000'000u, 6);
    }
    // Text of ours inside a message: '<' and '>' would end it early.
    constexpr void put_text(std::string_view s) {
        for (char c : s) {
            put(c == '<' || c == '>' ? '_' : c);
        }
    }
    [[nodiscard]] constexpr std::size_t done() const { return ok ? at : 0; }
};

}  // namespace detail

/// `< WORD >`: `< hi >`, `< ok >`, `< echo >`.
[[nodiscard]] constexpr std::size_t format_reply(std::string_view word, std::span<char> out) {
    detail::Writer w{out};
    w.put("< ");
    w.put_text(word);
    w.put(" >");
    return w.done();
}

/// `< error TEXT >`.
[[nodiscard]] constexpr std::size_t format_error(std::string_view text, std::span<char> out) {
    detail::Writer w{out};
    w.put("< error ");
    w.put_text(text);
    w.put(" >");
    return w.done();
}

/// `< frame ID SEC.USEC HEX >` for a data frame (classic, or FD when the client asked), or
/// `< error CLASS SEC.USEC >` for an error frame. 0 for a remote frame: not carried.
[[nodiscard]] constexpr std::size_t format_frame(const Frame& frame, std::uint64_t timestamp_us,
                                                 std::span<char> out) {
    detail::Writer w{out};
    if (frame.is_remote()) {
        return 0;
    }
    if (frame.is_error()) {
        w.put("< error ");
        const std::uint32_t error_class = frame.id & max_error_class;
        int digits = 3;
        while (digits < 8 && (error_class >> (4 * digits)) != 0) {
            ++digits;  // %03X: at least 3 digits, more when needed
        }
        w.put_hex(error_class, digits);
        w.put(' ');
        w.put_timestamp(timestamp_us);
        w.put(" >");
        return w.done();
    }
    w.put("< frame ");
    w.put_hex(frame.id, frame.is_extended() ? 8 : 3);
    w.put(' ');
    w.put_timestamp(timestamp_us);
    w.put(' ');
    for (std::size_t i = 0; i < frame.len && i < max_fd_length; ++i) {
        w.put(text::hex_upper(frame.data[i] >> 4u));
        w.put(text::hex_upper(frame.data[i]));
    }
    w.put(" >");
    return w.done();
}

/// `< stat RBYTES RPACKETS TBYTES TPACKETS >`.
[[nodiscard]] constexpr std::size_t format_stat(std::uint64_t rx_bytes, std::uint64_t rx_frames,
                                                std::uint64_t tx_bytes, std::uint64_t tx_frames,
                                                std::span<char> out) {
    detail::Writer w{out};
    w.put("< stat ");
    w.put_decimal(rx_bytes, 1);
    w.put(' ');
    w.put_decimal(rx_frames, 1);
    w.put(' ');
    w.put_decimal(tx_bytes, 1);
    w.put(' ');
    w.put_decimal(tx_frames, 1);
    w.put(" >");
    return w.done();
}

// ---------------------------------------------------------------------------------------
// The discovery beacon (socketcand's beacon.c; python-can's detect_beacon, SavvyCAN): one UDP
// datagram to port 42000 every 3 s,
//   <CANBeacon name="HOST" type="SocketCAN" description="TEXT">
//   <URL>can://IP:PORT</URL><Bus name="can0"/>...</CANBeacon>
// with a newline after the opening tag as socketcand writes it. One URL per listener (the
// protocol document asks for all of them), one Bus per bus. '&', '<', '>' and '"' in names
// are written as XML entities.

inline constexpr std::uint32_t beacon_interval_ms = 3000;

namespace detail {

constexpr void put_xml(Writer& w, std::string_view s) {
    for (char c : s) {
        switch (c) {
        case '&': w.put("&amp;"); break;
        case '<': w.put("&lt;"); break;
        case '>': w.put("&gt;"); break;
        case '"': w.put("&quot;"); break;
        default: w.put(c); break;
        }
    }
}

}  // namespace detail

/// The beacon datagram; `urls` are "can://IP:PORT". 0 when `out` is too small.
[[nodiscard]] constexpr std::size_t format_beacon(std::string_view host, std::string_view description,
                                                  std::span<const std::string_view> urls,
                                                  std::span<const std::string_view> buses, std::span<char> out) {
    detail::Writer w{out};
    w.put("<CANBeacon name=\"");
    detail::put_xml(w, host);
    w.put("\" type=\"SocketCAN\" description=\"");
    detail::put_xml(w, description);
    w.put("\">\n");
    for (std::string_view url : urls) {
        w.put("<URL>");
        detail::put_xml(w, url);
        w.put("</URL>");
    }
    for (std::string_view bus : buses) {
        w.put("<Bus name=\"");
        detail::put_xml(w, bus);
        w.put("\"/>");
    }
    w.put("</CANBeacon>");
    return w.done();
}

// ---------------------------------------------------------------------------------------
// Reading a server's `< frame >` (a client's side; the tests and the fuzzer check that what
// format_frame writes reads back).

enum class FrameTextError : std::uint8_t {
    none,
    not_a_frame,
    bad_id,
    bad_timestamp,
    bad_data,
    too_long,
};

[[nodiscard]] constexpr const char* describe(FrameTextError error) {
    switch (error) {
    case FrameTextError::none: return "no error";
    case FrameTextError::not_a_frame: return "not a < frame ID SEC.USEC HEX > message";
    case FrameTextError::bad_id: return "identifier is not 3 or 8 hex digits in range";
    case FrameTextError::bad_timestamp: return "timestamp is not SECONDS.MICROS with 6 digits";
    case FrameTextError::bad_data: return "data is not an even number of hex digits";
    case FrameTextError::too_long: return "more data bytes than this side allows";
    }
    return "unknown error";
}

/// Parses `< frame ID SEC.USEC HEX >` as socketcand writes it: ID of 3 digits is standard,
/// of 8 digits extended; HEX may be empty. More than 8 bytes only with options.fd.
[[nodiscard]] constexpr FrameTextError parse_frame(std::string_view message, const ParseOptions& options,
                                                   Frame& frame) {
    if (message.size() < 2 || message.front() != '<' || message.back() != '>') {
        return FrameTextError::not_a_frame;
    }
    detail::Tokens tokens(text::slice(message, 1, message.size() - 1));
    std::string_view word;
    std::string_view id;
    std::string_view time;
    std::string_view hex;
    if (!tokens.next(word) || word != "frame" || !tokens.next(id) || !tokens.next(time)) {
        return FrameTextError::not_a_frame;
    }
    (void)tokens.next(hex);  // may be absent: the empty frame
    if (!tokens.at_end()) {
        return FrameTextError::not_a_frame;
    }
    Frame f;
    std::uint32_t v = 0;
    if ((id.size() != 3 && id.size() != 8) || !detail::parse_hex32(id, v) ||
        v > (id.size() == 3 ? max_standard_id : max_extended_id)) {
        return FrameTextError::bad_id;
    }
    f.id = v;
    f.flags = id.size() == 8 ? frame_flag::extended : std::uint8_t{0};
    std::size_t dot = 0;
    while (dot < time.size() && time[dot] != '.') {
        ++dot;
    }
    std::uint64_t seconds = 0;
    if (dot == 0 || dot > 13 || dot + 7 != time.size()) {
        return FrameTextError::bad_timestamp;
    }
    std::uint64_t micros = 0;
    for (std::size_t i = 0; i < time.size(); ++i) {
        if (i == dot) {
            continue;
        }
        if (!text::is_digit(time[i])) {
            return FrameTextError::bad_timestamp;
        }
        (i < dot ? seconds : micros) = (i < dot ? seconds : micros) * 10 + static_cast<std::uint64_t>(time[i] - '0');
    }
    f.timestamp_us = seconds * 1'000'000u + micros;
    if (hex.size() % 2 != 0) {
        return FrameTextError::bad_data;
    }
    const std::size_t count = hex.size() / 2;
    if (count > (options.fd ? max_fd_length : max_classic_length)) {
        return FrameTextError::too_long;
    }
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint8_t hi = detail::nibble(hex[2 * i]);
        const std::uint8_t lo = detail::nibble(hex[2 * i + 1]);
        if (hi == detail::no_nibble || lo == detail::no_nibble) {
            return FrameTextError::bad_data;
        }
        f.data[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    f.len = static_cast<std::uint8_t>(count);
    if (count > max_classic_length) {
        if (!is_valid_fd_length(f.len)) {
            return FrameTextError::too_long;
        }
        f.flags |= frame_flag::fd;
    }
    frame = f;
    return FrameTextError::none;
}

}  // namespace tcpcan::socketcand
