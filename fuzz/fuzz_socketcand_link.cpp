// Fuzzes the socketcand server side as the bridge drives it (port/linux/socketcand_link.hpp):
// client bytes, bus frames, time and a transport that takes some of the output, in any order.
//
// Input: a script of operations, one byte each, then its arguments:
//   0 receive: u8 length, then that many client bytes (at most read_budget(), as the bridge)
//   1 the transport takes u16 bytes of output()      2 time advances u16 * 100 µs, then tick()
//   3 a bus frame (fuzz_common.hpp read_frame, made valid) is offered
//   4 a frame for the bus is taken (peek + pop)      5 close(overload)   6 transport_closed
// Each script starts with a canned handshake prefix chosen by the first byte (none, open,
// open + rawmode, open + rawmode + fdmode) so the deep states are reached at once.
//
// Invariants: no crash or over-read (ASan); output() is whole `< ... >` messages only, and
// while the link is open an `< ok >` in it is the last message (it leaves alone); output and
// the bus queue stay within their capacities; every frame for the bus is valid (check_frame),
// classic unless fdmode was asked for; read_budget() is 0 once closed; frames reach the
// client only in raw mode; the drop counters add up (drops() is their sum).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "socketcand_link.hpp"

namespace {

using namespace tcpcan;
using namespace tcpcan::linux_port;

// `taken`: bytes the transport took since the last whole message (a write may end mid-message).
void check_output(const SocketcandLink& link, const std::string& taken) {
    const auto out = link.output();
    FUZZ_CHECK(out.size() <= SocketcandLink::output_capacity);
    const std::string text = taken + std::string(reinterpret_cast<const char*>(out.data()), out.size());
    std::size_t at = 0;
    std::string last;
    while (at < text.size()) {
        FUZZ_CHECK(text[at] == '<');
        const std::size_t end = text.find('>', at);
        FUZZ_CHECK(end != std::string_view::npos);
        last = text.substr(at, end + 1 - at);
        FUZZ_CHECK(last.find('<', 1) == std::string_view::npos);
        if (!link.closed() && last == "< ok >") {
            FUZZ_CHECK(end + 1 == text.size());  // nothing follows an ok in the same write
        }
        at = end + 1;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::FuzzInput in(data, size);
    static LogLimiter limiter(0, 1'000'000);  // no log lines: the fuzzer's output stays clean
    set_log_level(LogLevel::error);
    const BusDirectory buses{{"can0", "-"}};
    std::uint64_t now = 1'000'000;
    SocketcandLink link("fuzz", buses, SocketcandOptions{}, limiter, now);

    static constexpr std::string_view prefixes[] = {"", "< open can0 >", "< open - >< rawmode >",
                                                     "< open can0 >< rawmode >< fdmode >"};
    const std::string_view prefix = prefixes[in.u8() % 4];
    link.receive({reinterpret_cast<const std::uint8_t*>(prefix.data()), prefix.size()}, now);

    std::string taken;
    for (int step = 0; step < 4096 && !in.empty(); ++step) {
        switch (in.u8() % 7) {
        case 0: {
            std::size_t n = in.u8();
            n = n < link.read_budget() ? n : link.read_budget();
            link.receive(in.bytes(n), now);
            break;
        }
        case 1: {
            const auto out = link.output();
            std::size_t n = in.u16();
            n = n < out.size() ? n : out.size();
            taken.append(reinterpret_cast<const char*>(out.data()), n);
            taken.erase(0, taken.rfind('>') == std::string::npos ? 0 : taken.rfind('>') + 1);
            link.consume_output(n);
            break;
        }
        case 2:
            now += std::uint64_t{in.u16()} * 100u;
            link.tick(now);
            break;
        case 3: {
            const std::uint64_t sent_before = link.counters().frames_to_client;
            link.offer(fuzz::make_valid(fuzz::read_frame(in)), now);
            if (link.mode() != SocketcandLink::Mode::raw) {
                FUZZ_CHECK(link.counters().frames_to_client == sent_before);
            }
            break;
        }
        case 4:
            if (const Frame* f = link.peek_for_bus(now, 0)) {
                FUZZ_CHECK(check_frame(*f) == FrameProblem::none);
                FUZZ_CHECK(!f->is_remote() && !f->is_error());
                FUZZ_CHECK(link.fd() || !f->is_fd());
                link.pop_for_bus();
            }
            break;
        case 5:
            link.close(CloseReason::overload, "", now);
            break;
        case 6:
            link.transport_closed(now);
            break;
        }
        check_output(link, taken);
        if (link.closed()) {
            FUZZ_CHECK(link.read_budget() == 0);
        }
        const auto& c = link.counters();
        FUZZ_CHECK(link.drops() == c.drop_remote + c.drop_fd + c.drop_output_full + c.drop_bus_queue_full);
    }
    return 0;
}
