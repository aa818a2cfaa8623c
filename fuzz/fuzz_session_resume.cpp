// Fuzzes feature::resume: a client and a server session (with small replay buffers) over an
// in-memory link that the fuzzer cuts at any point; the client then reconnects and the
// server's suspended session adopts the new connection, as the Linux port does.
//
// Input: a 2-byte header, then operations until the input ends.
//   header: dead-after of the server (x 5 ms, 0 = never), max frame age of both (x 5 ms, 0 = none)
//   operation byte b, (b & 7):
//     0 side (b >> 3 & 1) sends 1 + n % 16 frames (n next byte)
//     1 move up to 4n bytes client -> server     2 move up to 4n bytes server -> client
//     3 side (b >> 3 & 1) puts up to n frames on its bus
//     4 time passes: n ms, both ticked           5 the link is cut (bytes in flight are lost);
//                                                   with bit 3 set the server restarts as well
//     6 the client reconnects and resumes (or, after a restart, starts afresh)
//     7 everything moves until quiet
//   At the end the link comes back, everything is delivered and acknowledged, and one
//   last frame goes each way so every gap is seen.
//
// Invariants: neither side sees a protocol error; per direction, the frames on the
// receiver's bus are the frames the sender took, in order, each at most once, and the
// frames missing are exactly the drops counted (sender: replay buffer full, expired,
// undeliverable; receiver: bus-side drops other than duplicates). The receiver's lost
// count equals the sender's replay-full and expired drops (the gaps agree). Without a server
// restart resumes never fail, so nothing is undeliverable. After restarts (a new server
// knows no token, the old one's sessions are given up) delivery is at most once: frames
// still come in order and at most once, none is missing uncounted, and what is counted
// beyond the frames missing is at most what the sender called undeliverable (frames whose
// fate it could not know).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <tcpcan/session.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

constexpr std::size_t replay_frames = 24;
using ResumeSession = Session<2048, 64, 64, 16, FullProfile, replay_frames>;

struct Direction {
    std::uint32_t next = 0;               // number of the next frame this side's bus gives
    std::vector<std::uint32_t> to_bus;    // numbers the other side put on its bus
    std::vector<std::uint8_t> in_flight;  // bytes written, not yet delivered
};

Frame numbered(std::uint32_t n) {
    Frame f;
    f.id = 0x100 + (n & 0xFF);
    f.len = 4;
    f.data[0] = static_cast<std::uint8_t>(n >> 24);
    f.data[1] = static_cast<std::uint8_t>(n >> 16);
    f.data[2] = static_cast<std::uint8_t>(n >> 8);
    f.data[3] = static_cast<std::uint8_t>(n);
    return f;
}

std::uint32_t number_of(const Frame& f) {
    return std::uint32_t{f.data[0]} << 24 | std::uint32_t{f.data[1]} << 16 | std::uint32_t{f.data[2]} << 8 | f.data[3];
}

class Harness {
public:
    Harness(std::uint64_t dead_after_us, std::uint64_t max_age_us) {
        SessionOptions c;
        c.role = Role::client;
        c.features = feature::sequence | feature::resume;
        c.max_frame_age_us = max_age_us;
        client_options_ = c;
        SessionOptions s = c;
        s.role = Role::server;
        s.dead_after_us = dead_after_us;
        server_options_ = s;
        client_.emplace(client_options_, now_);
        client_->set_resume_options({.token = 0, .ack_every_frames = 4, .ack_delay_us = 3000});
        server_.emplace(new_server());
        settle();
        FUZZ_CHECK(client_->resume_phase() == ResumePhase::running);
        FUZZ_CHECK(server_->resume_phase() == ResumePhase::running);
    }

    void send(int side, std::size_t count) {
        if (!server_) {
            return;  // the server is down: its bus has nobody to give frames to
        }
        ResumeSession& s = side == 0 ? *client_ : *server_;
        Direction& d = dir_[side];
        for (std::size_t i = 0; i < count; ++i) {
            const SendResult r = s.send_frame(numbered(d.next), now_);
            FUZZ_CHECK(r == SendResult::queued || r == SendResult::output_full);
            ++d.next;
        }
    }

    // Writes up to `n` bytes of `from`'s output into the link, then delivers up to `n`.
    void move(int from, std::size_t n) {
        if (cut_) {
            return;
        }
        ResumeSession& sender = from == 0 ? *client_ : *server_;
        ResumeSession& receiver = from == 0 ? *server_ : *client_;
        Direction& d = dir_[from];
        const auto out = sender.output();
        const std::size_t take = std::min(n, out.size());
        d.in_flight.insert(d.in_flight.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(take));
        sender.consume_output(take);
        const std::size_t give = std::min(n, d.in_flight.size());
        const ReceiveResult r = receiver.receive(std::span<const std::uint8_t>(d.in_flight.data(), give), now_);
        FUZZ_CHECK(r.ok);
        d.in_flight.erase(d.in_flight.begin(), d.in_flight.begin() + static_cast<std::ptrdiff_t>(r.consumed));
        follow_suspension();
    }

    void to_bus(int side, std::size_t n) {
        if (!server_) {
            return;
        }
        ResumeSession& s = side == 0 ? *client_ : *server_;
        Direction& d = dir_[1 - side];  // frames the other side sent
        for (std::size_t i = 0; i < n; ++i) {
            const Frame* f = s.peek_bus_frame(now_);
            if (f == nullptr) {
                break;
            }
            d.to_bus.push_back(number_of(*f));
            s.pop_bus_frame();
        }
    }

    void pass_time(std::uint64_t us) {
        now_ += us;
        client_->tick(now_);
        if (server_) {
            server_->tick(now_);
        }
        follow_suspension();
    }

    // The transport breaks under both: what is in flight is gone.
    void cut() {
        if (cut_) {
            return;
        }
        cut_ = true;
        dir_[0].in_flight.clear();
        dir_[1].in_flight.clear();
        client_->transport_closed(now_);
        server_->transport_closed(now_);
        FUZZ_CHECK(client_->is_suspended());
        FUZZ_CHECK(server_->is_suspended());
    }

    // The server process ends: its session's queues are gone (counted), and the next one
    // knows no token.
    void restart_server() {
        cut();
        if (!server_) {
            return;
        }
        server_->discard_bus_queue();
        (void)server_->abandon(now_);
        const auto& st = server_->stats();
        retired_.bus_drops += st.dropped_towards_bus() - st.drop_duplicate;
        retired_.lost += st.sequence.lost;
        retired_.replay_drops += std::uint64_t{st.drop_replay_full} + st.drop_replay_expired;
        retired_.undeliverable += st.undeliverable;
        server_.reset();
        ++restarts_;
    }

    // A new connection: a fresh server session hears the client's token, the suspended one adopts it.
    void reconnect() {
        if (!cut_) {
            return;
        }
        cut_ = false;
        const std::uint64_t held = client_->resume_token();
        client_->reconnect(now_);
        ResumeSession fresh = new_server();
        const std::uint64_t fresh_token = server_token_;
        for (int round = 0; round < 50 && fresh.requested_resume_token() == 0; ++round) {
            exchange(*client_, fresh);
        }
        FUZZ_CHECK(fresh.requested_resume_token() == held);
        const bool known = server_.has_value();
        if (known) {
            FUZZ_CHECK(server_->adopt(fresh, now_));
            FUZZ_CHECK(fresh.is_closed());
        } else {
            fresh.refuse_resume(now_);  // a restarted server: a new session
            server_.emplace(fresh);
        }
        settle();
        FUZZ_CHECK(client_->resume_token() == (known ? held : fresh_token));
        FUZZ_CHECK(client_->resume_phase() == ResumePhase::running);
    }

    void settle() {
        for (int round = 0; round < 10000 && !cut_; ++round) {
            if (!exchange(*client_, *server_)) {
                return;
            }
            follow_suspension();
        }
    }

    void finish() {
        if (!cut_ && (client_->is_suspended() || server_->is_suspended())) {
            cut();
        }
        reconnect();
        for (int round = 0; round < 200; ++round) {
            to_bus(0, 1000);
            to_bus(1, 1000);
            pass_time(5000);
            if (cut_) {
                reconnect();
            }
            settle();
            if (client_->replay_size() == 0 && server_->replay_size() == 0 && client_->bus_queue_size() == 0 &&
                server_->bus_queue_size() == 0) {
                break;
            }
        }
        FUZZ_CHECK(client_->replay_size() == 0 && server_->replay_size() == 0);
        // One last frame each way: every earlier gap shows.
        send(0, 1);
        send(1, 1);
        settle();
        to_bus(0, 1000);
        to_bus(1, 1000);
        check(0);
        check(1);
    }

private:
    ResumeSession new_server() {
        ResumeSession s(server_options_, now_);
        server_token_ = 0xC0FFEE + restarts_;  // a restarted server gives other tokens
        s.set_resume_options({.token = server_token_, .ack_every_frames = 4, .ack_delay_us = 3000});
        return s;
    }

    // Moves everything each way once; false when nothing moved.
    bool exchange(ResumeSession& a, ResumeSession& b) {
        bool moved = false;
        for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
            const auto out = from->output();
            if (out.empty() || to->is_suspended() || to->is_closed()) {
                continue;
            }
            const ReceiveResult r = to->receive(out, now_);
            FUZZ_CHECK(r.ok);
            from->consume_output(r.consumed);
            moved = moved || r.consumed > 0;
        }
        a.tick(now_);
        b.tick(now_);
        return moved;
    }

    // A side that declared the other dead has closed its transport: so has the other's.
    void follow_suspension() {
        if (!server_) {
            return;
        }
        FUZZ_CHECK(!client_->is_closed() && !server_->is_closed());
        if (!cut_ && (client_->is_suspended() || server_->is_suspended())) {
            cut();
        }
    }

    void check(int from) {
        const auto& sender = (from == 0 ? *client_ : *server_).stats();
        const auto& receiver = (from == 0 ? *server_ : *client_).stats();
        const Direction& d = dir_[from];
        // In order, each at most once, only frames that were sent.
        for (std::size_t i = 0; i < d.to_bus.size(); ++i) {
            FUZZ_CHECK(d.to_bus[i] < d.next);
            FUZZ_CHECK(i == 0 || d.to_bus[i] > d.to_bus[i - 1]);
        }
        // The retired servers' counters belong to the server's side of each direction.
        const std::uint64_t retired_sender_drops = from == 1 ? retired_.replay_drops + retired_.undeliverable : 0;
        const std::uint64_t retired_receiver_drops = from == 0 ? retired_.bus_drops : 0;
        const std::uint64_t undeliverable = sender.undeliverable + (from == 1 ? retired_.undeliverable : 0);
        const std::uint64_t replay_drops = std::uint64_t{sender.drop_replay_full} + sender.drop_replay_expired +
                                           (from == 1 ? retired_.replay_drops : 0);
        const std::uint64_t receiver_lost = receiver.sequence.lost + (from == 0 ? retired_.lost : 0);
        const std::uint64_t sender_drops = std::uint64_t{sender.drop_replay_full} + sender.drop_replay_expired +
                                           sender.undeliverable + retired_sender_drops;
        const std::uint64_t receiver_drops = receiver.dropped_towards_bus() - receiver.drop_duplicate + retired_receiver_drops;
        const std::uint64_t accounted = d.to_bus.size() + sender_drops + receiver_drops;
        if (restarts_ == 0) {
            FUZZ_CHECK(accounted == d.next);
            FUZZ_CHECK(receiver_lost == replay_drops);
            FUZZ_CHECK(undeliverable == 0);
        } else {
            FUZZ_CHECK(accounted >= d.next);                  // nothing missing uncounted
            FUZZ_CHECK(accounted - d.next <= undeliverable);  // over-counted only where the fate was unknown
            FUZZ_CHECK(receiver_lost <= replay_drops);
        }
        FUZZ_CHECK(receiver.sequence.reordered == 0);
    }

    std::uint64_t now_ = 1'000'000;
    SessionOptions client_options_{};
    SessionOptions server_options_{};
    std::optional<ResumeSession> client_;
    std::optional<ResumeSession> server_;  // empty while a restarted server is down
    struct {
        std::uint64_t bus_drops = 0, lost = 0, replay_drops = 0, undeliverable = 0;
    } retired_;  // counters of server sessions that ended with a restart
    std::uint32_t restarts_ = 0;
    std::uint64_t server_token_ = 0xC0FFEE;
    Direction dir_[2];  // [0]: client -> server, [1]: server -> client
    bool cut_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::FuzzInput in(data, size);
    const std::uint64_t dead_after = in.u8() * std::uint64_t{5'000};
    const std::uint64_t max_age = in.u8() * std::uint64_t{5'000};
    Harness h(dead_after, max_age);
    for (int ops = 0; ops < 4000 && !in.empty(); ++ops) {
        const std::uint8_t b = in.u8();
        const int side = (b >> 3) & 1;
        switch (b & 7) {
        case 0: h.send(side, 1 + in.u8() % 16); break;
        case 1: h.move(0, std::size_t{4} * in.u8()); break;
        case 2: h.move(1, std::size_t{4} * in.u8()); break;
        case 3: h.to_bus(side, in.u8()); break;
        case 4: h.pass_time(std::uint64_t{1000} * in.u8()); break;
        case 5:
            if (side == 0) {
                h.cut();
            } else {
                h.restart_server();
            }
            break;
        case 6: h.reconnect(); break;
        case 7: h.settle(); break;
        }
    }
    h.finish();
    return 0;
}
