// Fuzzes VersionNegotiator: two of them talking (fuzzer-chosen configs), or one against a
// peer whose every 'v' the fuzzer chooses.
//
// Input: byte 0 bit 0 picks the game.
//   pair (0): per side 3 bytes: min (1 + b%4), max (min + b%4), rounds (2 + b%8). A is the
//     client, B the server. Invariant: they agree on the highest common version exactly
//     when their ranges overlap; otherwise both fail; nobody errs otherwise.
//   peer (1): role bit (byte 0 bit 1), min (b%4), max (max(min,1) + b%4), rounds (any), then peer
//     versions, one byte each: bit 7 set = the next 4 bytes are the version, else b & 7.
//
// Invariants for any peer: the state only moves forward (idle, waiting, then agreed or
// failed; an agreed party that gets another 'v' fails, keeping its version); every 'v' a
// party sends is lower than all it sent before, so it never answers its own proposal; it
// agrees only on a version the peer sent and it supports; a step reports an error exactly
// when it ends in failure; a peer raising the version or exceeding the rounds fails.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <tcpcan/negotiation.hpp>

#include "fuzz_common.hpp"

namespace {

using namespace tcpcan;

// Watches one negotiator through the steps it takes.
class Watched {
public:
    Watched(Role role, NegotiationConfig config) : negotiator_(role, config), role_(role), config_(config) {}

    NegotiationStep start() {
        const NegotiationStep step = negotiator_.start();
        FUZZ_CHECK(negotiator_.state() == NegotiationState::waiting);
        FUZZ_CHECK(step.send == (role_ == Role::client));
        FUZZ_CHECK(step.error == ProtocolError::none);
        after_send(step, 0);
        return step;
    }

    NegotiationStep on_peer_version(std::uint32_t version) {
        const NegotiationState before = negotiator_.state();
        const std::uint32_t proposal_before = negotiator_.last_proposal();
        const NegotiationStep step = negotiator_.on_peer_version(version);
        const NegotiationState after = negotiator_.state();
        peer_sent_.push_back(version);
        if (before == NegotiationState::waiting) {
            ++rounds_;
        }

        // Forward only; only a stray 'v' after agreement turns agreed into failed.
        if (before != NegotiationState::waiting) {
            FUZZ_CHECK(after == NegotiationState::failed && !step.send);
            FUZZ_CHECK(step.error == ProtocolError::not_allowed_after_agreement);
        }
        FUZZ_CHECK((after == NegotiationState::failed) == (step.error != ProtocolError::none));
        if (before == NegotiationState::waiting && rounds_ > config_.max_rounds) {
            FUZZ_CHECK(after == NegotiationState::failed && !step.send);
        }
        if (before == NegotiationState::waiting && proposal_before != 0 && version > proposal_before) {
            FUZZ_CHECK(after == NegotiationState::failed && !step.send);
        }
        if (before == NegotiationState::agreed) {
            FUZZ_CHECK(negotiator_.agreed_version() == agreed_);
        }
        if (before == NegotiationState::waiting && after == NegotiationState::agreed) {
            // Agreed on what the peer just said, which this side supports.
            agreed_ = negotiator_.agreed_version();
            FUZZ_CHECK(agreed_ == version && agreed_ != 0);
            FUZZ_CHECK(agreed_ >= config_.min_version && agreed_ <= config_.max_version);
            // Either the peer acknowledged our proposal (no answer) or we echo theirs.
            FUZZ_CHECK(step.send ? step.send_version == version : version == proposal_before);
        }
        if (step.send && after == NegotiationState::failed) {
            FUZZ_CHECK(step.send_version == 0);
        }
        if (step.send && after == NegotiationState::waiting) {
            FUZZ_CHECK(step.send_version == negotiator_.last_proposal());
        }
        if (role_ == Role::server || after != NegotiationState::waiting) {
            FUZZ_CHECK(!negotiator_.should_retry_with_version_1());
        }
        after_send(step, version);
        return step;
    }

    [[nodiscard]] const VersionNegotiator& negotiator() const { return negotiator_; }

private:
    void after_send(const NegotiationStep& step, std::uint32_t /*answering*/) {
        if (!step.send) {
            return;
        }
        // Strictly lower than everything sent before: a party never repeats (and so never
        // answers) its own proposal, and proposals only go down.
        if (!sent_.empty()) {
            FUZZ_CHECK(step.send_version < sent_.back());
        }
        sent_.push_back(step.send_version);
    }

    VersionNegotiator negotiator_;
    Role role_;
    NegotiationConfig config_;
    std::vector<std::uint32_t> sent_;
    std::vector<std::uint32_t> peer_sent_;
    std::uint32_t rounds_ = 0;
    std::uint32_t agreed_ = 0;
};

void run_pair(fuzz::FuzzInput& in) {
    NegotiationConfig configs[2];
    for (NegotiationConfig& c : configs) {
        c.min_version = 1 + in.u8() % 4;
        c.max_version = c.min_version + in.u8() % 4;
        c.max_rounds = static_cast<std::uint8_t>(2 + in.u8() % 8);
    }
    Watched a(Role::client, configs[0]);
    Watched b(Role::server, configs[1]);
    NegotiationStep step = a.start();
    (void)b.start();
    Watched* to = &b;
    Watched* from = &a;
    int messages = 0;
    while (step.send) {
        FUZZ_CHECK(++messages <= 3);  // proposal, lower proposal, acknowledgement at most
        step = to->on_peer_version(step.send_version);
        FUZZ_CHECK(step.error == ProtocolError::none || step.error == ProtocolError::no_common_version);
        Watched* t = to;
        to = from;
        from = t;
    }
    const std::uint32_t low = configs[0].min_version > configs[1].min_version ? configs[0].min_version
                                                                              : configs[1].min_version;
    const std::uint32_t high = configs[0].max_version < configs[1].max_version ? configs[0].max_version
                                                                               : configs[1].max_version;
    for (const Watched* w : {&a, &b}) {
        if (low <= high) {
            FUZZ_CHECK(w->negotiator().state() == NegotiationState::agreed);
            FUZZ_CHECK(w->negotiator().agreed_version() == high);
        } else {
            FUZZ_CHECK(w->negotiator().state() == NegotiationState::failed);
        }
    }
}

void run_peer(fuzz::FuzzInput& in, Role role) {
    NegotiationConfig config;
    // min 0 behaves as 1 ('v' 0 always means "give up"); max >= min, as Session configures.
    config.min_version = in.u8() % 4;
    config.max_version = (config.min_version > 1 ? config.min_version : 1) + in.u8() % 4;
    config.max_rounds = in.u8();
    Watched w(role, config);
    (void)w.start();
    while (!in.empty()) {
        const std::uint8_t b = in.u8();
        const std::uint32_t version = (b & 0x80) != 0 ? in.u32() : (b & 7u);
        (void)w.on_peer_version(version);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::FuzzInput in(data, size);
    const std::uint8_t game = in.u8();
    if ((game & 1) == 0) {
        run_pair(in);
    } else {
        run_peer(in, (game & 2) != 0 ? Role::server : Role::client);
    }
    return 0;
}
