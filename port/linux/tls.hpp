// TLS 1.3 (OpenSSL 3) around a non-blocking TCP socket, as a Transport. Two modes:
//  - pre-shared keys (--tls-psk-file): TLS 1.3 external PSK, no certificates. A server
//    accepts every identity of its file; a client offers the first entry of its file.
//  - certificates (--tls-cert, --tls-key, --tls-ca): mutual TLS. A server presents its
//    certificate and requires a client certificate signed by the CA; a client verifies the
//    server's certificate against the CA and its name (the host it connects to, or
//    --tls-server-name), and presents its own.
// Only TLS 1.3; no session tickets (every connection authenticates afresh); no threads.
// The identity a transport reports is the PSK identity, or the certificate subject's CN
// (the RFC 2253 one-line subject when it has no CN).
//
// Usage:
//   TlsOptions options{.role = TlsRole::server, .psk_file = "keys.psk"};
//   TlsContextResult made = TlsContext::create(options);
//   if (!made.context) { log made.error; exit 1; }
//   ... on accept: auto transport = make_tls_transport(*made.context, fd);
//   ... on connect: make_tls_transport(*made.context, fd, host);  (name to verify)
// The context must outlive its transports.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tls_options.hpp"
#include "transport.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX, kept out of this header

namespace tcpcan::linux_port {

enum class TlsRole { server, client };

struct TlsOptions {
    TlsRole role = TlsRole::server;
    std::string psk_file;     // PSK mode when set (then no certificate option may be)
    std::string cert_file;    // certificate mode: our certificate chain (PEM)
    std::string key_file;     //   its private key (PEM; group/others may not read it)
    std::string ca_file;      //   the CA that signs the peer's certificate (PEM)
    std::string server_name;  // client: the name to verify instead of the host connected to

    [[nodiscard]] bool enabled() const { return !psk_file.empty() || !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
};

class TlsContext;

struct TlsContextResult {
    std::unique_ptr<TlsContext> context;  // null on failure
    std::string error;                    // names the option or file that is wrong
};

class TlsContext {
public:
    // Reads the key or certificate files and builds the OpenSSL context.
    [[nodiscard]] static TlsContextResult create(const TlsOptions& options);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    [[nodiscard]] TlsRole role() const { return options_.role; }
    [[nodiscard]] bool uses_psk() const { return !keys_.empty(); }
    [[nodiscard]] const TlsOptions& options() const { return options_; }
    // "TLS 1.3, pre-shared keys (3 identities)" or "TLS 1.3, certificates (CN ...)", for logs.
    [[nodiscard]] const std::string& summary() const { return summary_; }

    // The key for `identity`, or nullptr (server PSK lookup).
    [[nodiscard]] const PskEntry* find_key(std::string_view identity) const;
    // The client's entry (the first of its file); nullptr in certificate mode.
    [[nodiscard]] const PskEntry* client_key() const { return keys_.empty() ? nullptr : &keys_.front(); }

    [[nodiscard]] ssl_ctx_st* native() const { return ctx_; }

private:
    TlsContext() = default;
    TlsOptions options_;
    std::vector<PskEntry> keys_;
    std::string summary_;
    ssl_ctx_st* ctx_ = nullptr;
};

// A TLS transport on a connected non-blocking socket (does not own the fd). `host` is the
// name a client verifies the server's certificate against when the context has no
// server_name (a DNS name or an IP address); a server ignores it.
[[nodiscard]] std::unique_ptr<Transport> make_tls_transport(const TlsContext& context, int fd,
                                                            std::string_view host = {});

}  // namespace tcpcan::linux_port
