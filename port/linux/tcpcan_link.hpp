// A tcpcan protocol session (versions 1 and 2) as a Link. Until it has agreed, the
// session lives in small storage (a few KiB), so connections that never agree cost
// little; once established it moves into full-size storage (64 KiB towards the peer,
// 2,048 frames towards the bus) with nothing lost.
#pragma once

#include <functional>
#include <memory>

#include <tcpcan/filter.hpp>
#include <tcpcan/session.hpp>

#include "link.hpp"
#include "log.hpp"

namespace tcpcan::linux_port {

class TcpcanLink final : public Link {
public:
    // 64 KiB of encoded frames towards the peer (~3,000 frames: a fraction of a second of
    // a full bus), 2,048 frames waiting for the bus and 2,048 frames kept until the peer
    // acknowledges them (feature::resume: 0.2 s of a full bus, about 200 KiB).
    static constexpr std::size_t replay_frames = 8192;
    using FullSession = Session<65536, 2048, 64, 64, FullProfile, replay_frames>;
    // While negotiating: room for the handshake and the first frames that follow it.
    using PendingSession = Session<2048, 16, 64, 16, FullProfile, 16>;
    // Server: finds the suspended session a reconnecting client's token names (nullptr: none).
    using ResumeLookup = std::function<TcpcanLink*(std::uint64_t token, const TcpcanLink& asking)>;

    // `subscription` (client, may be empty) is asked of the server once agreed.
    TcpcanLink(std::string name, const SessionOptions& options, const FilterSetBase& subscription, LogLimiter& limiter,
               std::uint64_t now);
    ~TcpcanLink() override;

    // Peer
    bool ready() const override;
    // Agreed, and the bus settled where the client names one (feature::bus).
    bool agreed() const override;
    void offer(const Frame& frame, std::uint64_t now) override;
    bool has_room(std::size_t frames) const override;
    const Frame* peek_for_bus(std::uint64_t now, std::uint64_t wall_clock_us) override;
    void pop_for_bus() override;

    // Link
    std::size_t read_budget() const override;
    void receive(std::span<const std::uint8_t> bytes, std::uint64_t now) override;
    std::span<const std::uint8_t> output() const override;
    void consume_output(std::size_t n) override;
    void tick(std::uint64_t now) override;
    std::uint64_t next_deadline() const override;
    void close(CloseReason reason, std::string_view text, std::uint64_t now) override;
    void transport_closed(std::uint64_t now) override;
    bool closed() const override;
    TcpcanLink* tcpcan_session() override { return this; }
    std::uint64_t last_received_us() const override { return last_rx_us_; }
    std::size_t bus() const override { return bus_; }
    void log_events(std::uint64_t now) override;
    void discard() override;
    void add_totals(LinkTotals& totals) const override;
    std::uint64_t drops() const override;
    std::string describe_drops() const override;

    // Client side, after the transport ended before agreement: the server hung up on a
    // proposal above 1 (as the original tcpcan does).
    [[nodiscard]] bool hung_up_on_proposal() const;
    [[nodiscard]] bool retry_with_version_1() const;
    [[nodiscard]] std::uint32_t version() const;
    [[nodiscard]] const SessionStats& stats() const;
    // The bus this link's frames belong to (a listener's, or the one the peer asked for).
    void tie_to_bus(std::size_t bus) { bus_ = bus; }
    // Server: a client's bus request ('b') is answered from `buses` (which outlives the link).
    void serve_buses(const BusDirectory* buses) { buses_ = buses; }
    // Client, before agreement: join the server's bus by name; false for a name the
    // protocol cannot carry (1 to 64 printable ASCII characters, no spaces).
    [[nodiscard]] bool request_bus(std::string_view name);

    // ---- resume (feature::resume) ----
    // Before agreement: the token a server gives a new session, how often to acknowledge.
    void set_resume(const ResumeOptions& options);
    // Server: how a client's resume token finds its suspended session.
    void set_resume_lookup(ResumeLookup lookup) { resume_lookup_ = std::move(lookup); }
    // The transport ended but the session is kept for a resume (park it, don't discard it).
    [[nodiscard]] bool suspended() const;
    [[nodiscard]] std::uint64_t resume_token() const;
    // Server: the suspended session that took over this link's connection; the bridge then
    // serves the connection with that link and drops this one.
    [[nodiscard]] TcpcanLink* adopted_by() const { return adopted_by_; }
    // Client: a new transport for a suspended session.
    void reconnect(std::uint64_t now);
    // Gives a suspended session up; returns the frames counted undeliverable.
    std::uint64_t abandon(std::uint64_t now);

private:
    template <class F>
    decltype(auto) visit(F&& f) const {
        return full_ ? f(*full_) : f(*pending_);
    }
    template <class F>
    decltype(auto) visit(F&& f) {
        return full_ ? f(*full_) : f(*pending_);
    }
    void grow_when_established();
    void answer_bus_request(std::uint64_t now);

    std::unique_ptr<PendingSession> pending_;
    std::unique_ptr<FullSession> full_;
    LogLimiter& limiter_;
    SessionOptions options_;
    bool subscribing_ = false;
    std::uint64_t last_rx_us_ = 0;
    std::size_t bus_ = 0;
    const BusDirectory* buses_ = nullptr;
    std::string remote_bus_;  // client: the bus asked for
    ResumeLookup resume_lookup_;
    std::uint32_t deferred_features_ = 0;  // client: logged once the resume exchange is answered
    bool features_deferred_ = false;
    TcpcanLink* adopted_by_ = nullptr;
};

}  // namespace tcpcan::linux_port
