#include "tls.hpp"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tcpcan::linux_port {

namespace {

// The PSK's hash is SHA-256, so both suites that use it may be negotiated.
constexpr const char* psk_ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
constexpr unsigned char tls_aes_128_gcm_sha256[] = {0x13, 0x01};
constexpr unsigned char tls_handshake_record = 0x16;
constexpr unsigned char tls_alert_record = 0x15;

// Every queued OpenSSL error as one line, oldest first; empties the queue.
std::string openssl_errors() {
    std::string text;
    while (const unsigned long code = ERR_get_error()) {
        char line[256];
        ERR_error_string_n(code, line, sizeof line);
        if (!text.empty()) {
            text += "; ";
        }
        text += line;
    }
    return text.empty() ? "no detail from OpenSSL" : text;
}

// Peer-supplied text made safe for one log line.
std::string printable(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, max_identity_length)) {
        out += (c >= 0x20 && c <= 0x7E) ? c : '?';
    }
    if (text.size() > max_identity_length) {
        out += "...";
    }
    return out;
}

std::string one_line_name(const X509_NAME* name) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio == nullptr) {
        return "?";
    }
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string text = size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
    BIO_free(bio);
    return printable(text);
}

// The subject's CN, or the whole subject when it has none.
std::string certificate_identity(X509* certificate) {
    const X509_NAME* name = X509_get_subject_name(certificate);
    const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (index >= 0) {
        const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
        unsigned char* utf8 = nullptr;
        const int length = ASN1_STRING_to_UTF8(&utf8, data);
        if (length > 0) {
            std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
            OPENSSL_free(utf8);
            return printable(cn);
        }
        OPENSSL_free(utf8);
    }
    return one_line_name(name);
}

std::string describe_first_byte(unsigned char byte) {
    const char* meaning = byte == 'v' ? ", a tcpcan version proposal"
                          : byte == '<' ? ", a socketcand message"
                          : byte == 'C' ? ", a cannelloni greeting"
                                        : "";
    char text[96];
    if (byte >= 0x20 && byte <= 0x7E) {
        std::snprintf(text, sizeof text, "0x%02X ('%c'%s)", byte, byte, meaning);
    } else {
        std::snprintf(text, sizeof text, "0x%02X", byte);
    }
    return text;
}

SSL_SESSION* make_psk_session(SSL* ssl, const PskEntry& entry) {
    const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, tls_aes_128_gcm_sha256);
    SSL_SESSION* session = SSL_SESSION_new();
    if (cipher == nullptr || session == nullptr ||
        SSL_SESSION_set1_master_key(session, entry.key.data(), entry.key.size()) != 1 ||
        SSL_SESSION_set_cipher(session, cipher) != 1 ||
        SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) != 1) {
        SSL_SESSION_free(session);
        return nullptr;
    }
    return session;
}

class TlsTransport;
int find_psk_session(SSL* ssl, const unsigned char* identity, std::size_t identity_length, SSL_SESSION** session);
int use_psk_session(SSL* ssl, const EVP_MD* digest, const unsigned char** identity, std::size_t* identity_length,
                    SSL_SESSION** session);
int verify_certificate(int preverify_ok, X509_STORE_CTX* store);

class TlsTransport final : public Transport {
public:
    TlsTransport(const TlsContext& context, int fd, std::string_view host)
        : context_{context}, fd_{fd}, server_{context.role() == TlsRole::server} {
        ssl_ = SSL_new(context.native());
        if (ssl_ == nullptr || SSL_set_fd(ssl_, fd) != 1) {
            fail(IoStatus::error, "cannot set up a TLS connection: " + openssl_errors());
            return;
        }
        SSL_set_app_data(ssl_, this);
        if (server_) {
            SSL_set_accept_state(ssl_);
            return;
        }
        SSL_set_connect_state(ssl_);
        if (context.uses_psk()) {
            return;
        }
        const std::string name = context.options().server_name.empty() ? std::string(host) : context.options().server_name;
        if (name.empty()) {
            fail(IoStatus::error, "no server name to verify the server's certificate against (give --tls-server-name)");
            return;
        }
        unsigned char address[sizeof(in6_addr)];
        const bool is_ip = inet_pton(AF_INET, name.c_str(), address) == 1 || inet_pton(AF_INET6, name.c_str(), address) == 1;
        const bool named = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str()) == 1
                                 : SSL_set1_host(ssl_, name.c_str()) == 1 && SSL_set_tlsext_host_name(ssl_, name.c_str()) == 1;
        if (!named) {
            fail(IoStatus::error, "cannot use '" + name + "' as the server name: " + openssl_errors());
        }
    }

    ~TlsTransport() override { SSL_free(ssl_); }

    int fd() const override { return fd_; }

    bool handshaking() const override { return state_ == State::handshaking; }

    IoStatus handshake() override {
        if (state_ == State::open) {
            return IoStatus::ok;
        }
        if (state_ == State::failed) {
            return failed_status_;
        }
        if (!first_byte_checked_ && (server_ || hello_sent_)) {
            const IoStatus checked = check_first_byte();
            if (checked != IoStatus::ok) {
                return checked;
            }
        }
        ERR_clear_error();
        errno = 0;
        const int result = SSL_do_handshake(ssl_);
        hello_sent_ = true;
        if (result == 1) {
            return finish_handshake();
        }
        const int error = SSL_get_error(ssl_, result);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            handshake_wants_ = error == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
            return IoStatus::would_block;
        }
        return handshake_failed(error);
    }

    IoResult read(std::span<std::uint8_t> into) override {
        if (state_ != State::open) {
            return {state_ == State::handshaking ? IoStatus::would_block : failed_status_, 0};
        }
        ERR_clear_error();
        errno = 0;
        std::size_t n = 0;
        const int result = SSL_read_ex(ssl_, into.data(), into.size(), &n);
        last_read_ok_ = result == 1;
        if (result == 1) {
            read_wants_write_ = false;
            return {IoStatus::ok, n};
        }
        const int error = SSL_get_error(ssl_, result);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            read_wants_write_ = error == SSL_ERROR_WANT_WRITE;
            return {IoStatus::would_block, 0};
        }
        if (error == SSL_ERROR_ZERO_RETURN) {
            return {fail(IoStatus::closed, "the peer closed the TLS session (close_notify)"), 0};
        }
        return {io_failed(error, "read"), 0};
    }

    IoResult write(std::span<const std::uint8_t> bytes) override {
        if (state_ != State::open) {
            return {state_ == State::handshaking ? IoStatus::would_block : failed_status_, 0};
        }
        if (bytes.empty()) {
            return {IoStatus::ok, 0};
        }
        ERR_clear_error();
        errno = 0;
        std::size_t n = 0;
        const int result = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n);
        if (result == 1) {
            return {IoStatus::ok, n};
        }
        const int error = SSL_get_error(ssl_, result);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            return {IoStatus::would_block, 0};
        }
        return {io_failed(error, "write"), 0};
    }

    std::uint32_t wanted_events(bool app_has_output) const override {
        if (state_ == State::handshaking) {
            return handshake_wants_;
        }
        return EPOLLIN | ((app_has_output || read_wants_write_) ? EPOLLOUT : 0u);
    }

    bool has_buffered_input() const override { // After a would_block the socket was drained, so epoll reports what comes next; after
        // an ok, OpenSSL may hold whole records it read ahead (or decrypted bytes).
        return state_ == State::open && last_read_ok_ && SSL_has_pending(ssl_) == 1; }

    const std::string& identity() const override { return identity_; }
    const std::string& last_error() const override { return error_; }

    void shutdown() override {
        if (state_ == State::open) {
            ERR_clear_error();
            (void)SSL_shutdown(ssl_);  // sends close_notify; the answer is not awaited
            ERR_clear_error();
        }
    }

    // Called from OpenSSL's callbacks during the handshake.
    void note_psk_identity(std::string_view identity) {
        psk_offered_ = true;
        psk_identity_ = std::string(identity);
    }
    void note_unknown_identity(std::string_view identity) {
        psk_offered_ = true;
        unknown_identity_ = printable(identity);
    }
    void note_verify_failure(int error, X509* certificate) {
        if (!verify_error_.empty()) {
            return;
        }
        const std::string subject =
            certificate != nullptr ? " (subject " + one_line_name(X509_get_subject_name(certificate)) + ")" : "";
        if (context_.uses_psk()) {
            verify_error_ = "the server presented a certificate instead of accepting our pre-shared key" + subject;
            return;
        }
        verify_error_ = std::string(server_ ? "the client's" : "the server's") + " certificate is not accepted: " +
                        X509_verify_cert_error_string(error) + subject;
    }
    const TlsContext& context() const { return context_; }

private:
    enum class State { handshaking, open, failed };

    IoStatus fail(IoStatus status, std::string why) {
        state_ = State::failed;
        failed_status_ = status;
        error_ = std::move(why);
        return status;
    }

    // Tells a peer that does not speak TLS from one that does, before OpenSSL reads a byte:
    // a server's first byte must start a handshake record, a client's an answer (handshake
    // or alert).
    IoStatus check_first_byte() {
        unsigned char byte = 0;
        const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                handshake_wants_ = EPOLLIN;
                return IoStatus::would_block;
            }
            if (errno == ECONNRESET) {
                return closed_during_handshake();
            }
            return fail(IoStatus::error, std::string("TLS handshake: read failed: ") + std::strerror(errno));
        }
        if (n == 0) {
            return server_ ? fail(IoStatus::closed, "the client closed the connection before its TLS ClientHello")
                           : closed_during_handshake();
        }
        first_byte_checked_ = true;
        if (server_ && byte != tls_handshake_record) {
            return fail(IoStatus::error, "a plaintext client on a TLS port: its first byte is " +
                                             describe_first_byte(byte) + ", not a TLS handshake record");
        }
        if (!server_ && byte != tls_handshake_record && byte != tls_alert_record) {
            return fail(IoStatus::error, "the server does not speak TLS (a plaintext server?): its first byte is " +
                                             describe_first_byte(byte));
        }
        return IoStatus::ok;
    }

    // The peer closed (or reset) the connection before the handshake ended.
    IoStatus closed_during_handshake() {
        return fail(IoStatus::closed, server_ ? "the client closed the connection during the TLS handshake"
                                              : "the server closed the connection during the TLS handshake (a "
                                                "plaintext server closes on a TLS ClientHello; or it refused us)");
    }

    IoStatus finish_handshake() {
        if (context_.uses_psk()) {
            if (SSL_session_reused(ssl_) != 1) {
                return fail(IoStatus::error, "the peer did not authenticate with a pre-shared key");
            }
            identity_ = server_ ? psk_identity_ : context_.client_key()->identity;
        } else {
            X509* peer = SSL_get0_peer_certificate(ssl_);
            if (peer == nullptr) {
                return fail(IoStatus::error, "the peer presented no certificate");
            }
            const long verified = SSL_get_verify_result(ssl_);
            if (verified != X509_V_OK) {
                return fail(IoStatus::error, std::string("the peer's certificate is not accepted: ") +
                                                 X509_verify_cert_error_string(verified));
            }
            identity_ = certificate_identity(peer);
        }
        state_ = State::open;
        last_read_ok_ = true;  // the peer's first bytes may have come in with the handshake
        return IoStatus::ok;
    }

    IoStatus handshake_failed(int ssl_error) {
        const unsigned long first = ERR_peek_error();
        const int reason = first != 0 ? ERR_GET_REASON(first) : 0;
        const std::string detail = openssl_errors();
        if (!unknown_identity_.empty()) {
            return fail(IoStatus::error, "unknown PSK identity '" + unknown_identity_ + "'");
        }
        if (!verify_error_.empty()) {
            return fail(IoStatus::error, verify_error_);
        }
        if (server_ && context_.uses_psk() && !psk_offered_ && received_alert(reason) < 0 &&
            ssl_error == SSL_ERROR_SSL) {
            return fail(IoStatus::error, "the client offered no pre-shared key (is it set up for certificates?)");
        }
        if (ssl_error == SSL_ERROR_SYSCALL && errno != 0 && errno != ECONNRESET && errno != EPIPE) {
            return fail(IoStatus::error, std::string("TLS handshake: ") + std::strerror(errno));
        }
        if (ssl_error == SSL_ERROR_SYSCALL || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            return closed_during_handshake();
        }
        switch (reason) {
        case SSL_R_BINDER_DOES_NOT_VERIFY:
            return fail(IoStatus::error,
                        "wrong pre-shared key for identity '" + printable(psk_identity_) + "' (the binder does not verify)");
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return fail(IoStatus::error, "the client sent no certificate; this server requires one signed by its CA");
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_HTTP_REQUEST:
            return fail(IoStatus::error, "the peer does not speak TLS (" + detail + ")");
        case SSL_R_UNSUPPORTED_PROTOCOL:
            return fail(IoStatus::error, "the peer does not offer TLS 1.3 (" + detail + ")");
        default: break;
        }
        if (const int alert = received_alert(reason); alert >= 0) {
            return fail(IoStatus::error, describe_alert(alert, "handshake"));
        }
        return fail(IoStatus::error, "TLS handshake failed: " + detail);
    }

    // The alert a reason code says the peer sent, or -1.
    static int received_alert(int reason) {
        constexpr int offset = SSL_AD_REASON_OFFSET;
        return reason > offset && reason < offset + 256 ? reason - offset : -1;
    }

    // "the server refused the handshake (alert 'decrypt error'): wrong pre-shared key ...?"
    std::string describe_alert(int alert, const char* what) const {
        const bool psk = context_.uses_psk();
        std::string why = std::string("the ") + (server_ ? "client" : "server") + " refused the " + what + " (alert '" +
                          SSL_alert_desc_string_long(alert) + "')";
        if (server_) {
            return why;
        }
        if (psk && (alert == SSL_AD_DECRYPT_ERROR || alert == SSL_AD_ILLEGAL_PARAMETER)) {
            why += ": wrong pre-shared key for identity '" + context_.client_key()->identity + "'?";
        } else if (psk && alert == SSL_AD_HANDSHAKE_FAILURE) {
            why += ": identity '" + context_.client_key()->identity + "' unknown to the server, or it wants certificates?";
        } else if (alert == SSL_AD_CERTIFICATE_REQUIRED) {
            why += ": the server requires a client certificate";
        } else if (!psk && (alert == SSL_AD_UNKNOWN_CA || alert == SSL_AD_BAD_CERTIFICATE ||
                            alert == SSL_AD_CERTIFICATE_EXPIRED || alert == SSL_AD_DECRYPT_ERROR ||
                            alert == SSL_AD_CERTIFICATE_UNKNOWN)) {
            why += ": the server does not accept our certificate";
        }
        return why;
    }

    IoStatus io_failed(int ssl_error, const char* what) {
        const unsigned long first = ERR_peek_error();
        const int reason = first != 0 ? ERR_GET_REASON(first) : 0;
        const std::string detail = openssl_errors();
        if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING || (ssl_error == SSL_ERROR_SYSCALL && errno == 0)) {
            return fail(IoStatus::closed, "the peer closed the connection without a TLS close_notify");
        }
        if (const int alert = received_alert(reason); alert >= 0) {
            // TLS 1.3: a client's handshake ends before the server has judged its
            // certificate, so that verdict arrives here, on the first read.
            return fail(IoStatus::error, describe_alert(alert, "connection"));
        }
        if (ssl_error == SSL_ERROR_SYSCALL) {
            const bool reset = errno == ECONNRESET || errno == EPIPE;
            return fail(reset ? IoStatus::closed : IoStatus::error, std::string("TLS ") + what + " failed: " + std::strerror(errno));
        }
        return fail(IoStatus::error, std::string("TLS ") + what + " failed: " + detail);
    }

    const TlsContext& context_;
    int fd_;
    bool server_;
    SSL* ssl_ = nullptr;
    State state_ = State::handshaking;
    IoStatus failed_status_ = IoStatus::error;
    std::uint32_t handshake_wants_ = EPOLLIN | EPOLLOUT;
    bool hello_sent_ = false;
    bool first_byte_checked_ = false;
    bool read_wants_write_ = false;
    bool last_read_ok_ = false;
    bool psk_offered_ = false;
    std::string psk_identity_;
    std::string unknown_identity_;
    std::string verify_error_;
    std::string identity_;
    std::string error_;
};

TlsTransport* transport_of(SSL* ssl) { return static_cast<TlsTransport*>(SSL_get_app_data(ssl)); }

int find_psk_session(SSL* ssl, const unsigned char* identity, std::size_t identity_length, SSL_SESSION** session) {
    *session = nullptr;
    TlsTransport* transport = transport_of(ssl);
    const std::string_view name(reinterpret_cast<const char*>(identity), identity_length);
    const PskEntry* entry = transport->context().find_key(name);
    if (entry == nullptr) {
        // Go on without a PSK: with no certificate the handshake then fails, and the
        // transport names the unknown identity.
        transport->note_unknown_identity(name);
        return 1;
    }
    *session = make_psk_session(ssl, *entry);
    if (*session == nullptr) {
        return 0;
    }
    transport->note_psk_identity(entry->identity);
    return 1;
}

int use_psk_session(SSL* ssl, const EVP_MD* digest, const unsigned char** identity, std::size_t* identity_length,
                    SSL_SESSION** session) {
    *session = nullptr;
    *identity = nullptr;
    *identity_length = 0;
    const PskEntry* entry = transport_of(ssl)->context().client_key();
    const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, tls_aes_128_gcm_sha256);
    if (entry == nullptr || cipher == nullptr) {
        return 0;
    }
    // After a HelloRetryRequest OpenSSL asks again with the chosen hash; ours is SHA-256.
    if (digest != nullptr && digest != SSL_CIPHER_get_handshake_digest(cipher)) {
        return 1;
    }
    *session = make_psk_session(ssl, *entry);
    if (*session == nullptr) {
        return 0;
    }
    *identity = reinterpret_cast<const unsigned char*>(entry->identity.data());
    *identity_length = entry->identity.size();
    return 1;
}

int verify_certificate(int preverify_ok, X509_STORE_CTX* store) {
    if (preverify_ok == 1) {
        return 1;
    }
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (ssl != nullptr && transport_of(ssl) != nullptr) {
        transport_of(ssl)->note_verify_failure(X509_STORE_CTX_get_error(store), X509_STORE_CTX_get_current_cert(store));
    }
    return 0;
}

}  // namespace

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

const PskEntry* TlsContext::find_key(std::string_view identity) const {
    for (const PskEntry& entry : keys_) {
        if (entry.identity == identity) {
            return &entry;
        }
    }
    return nullptr;
}

TlsContextResult TlsContext::create(const TlsOptions& options) {
    TlsContextResult result;
    const bool psk = !options.psk_file.empty();
    const bool certificates = !options.cert_file.empty() || !options.key_file.empty() || !options.ca_file.empty();
    if (psk && certificates) {
        result.error = "--tls-psk-file and --tls-cert/--tls-key/--tls-ca exclude each other: choose pre-shared keys or "
                       "certificates";
        return result;
    }
    if (!psk && !certificates) {
        result.error = "TLS needs --tls-psk-file, or --tls-cert, --tls-key and --tls-ca";
        return result;
    }
    if (certificates) {
        std::string missing;
        for (const auto& [value, name] : {std::pair{&options.cert_file, "--tls-cert"},
                                          std::pair{&options.key_file, "--tls-key"},
                                          std::pair{&options.ca_file, "--tls-ca"}}) {
            if (value->empty()) {
                missing += missing.empty() ? name : std::string(", ") + name;
            }
        }
        if (!missing.empty()) {
            result.error = "certificate mode needs --tls-cert, --tls-key and --tls-ca; missing: " + missing;
            return result;
        }
    }

    std::unique_ptr<TlsContext> context(new TlsContext);
    context->options_ = options;
    if (psk) {
        PskFileResult keys = load_psk_file(options.psk_file);
        if (!keys.ok) {
            result.error = keys.error;
            return result;
        }
        context->keys_ = std::move(keys.entries);
    } else {
        result.error = check_secret_file(options.key_file);
        if (!result.error.empty()) {
            return result;
        }
    }

    const bool server = options.role == TlsRole::server;
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == nullptr) {
        result.error = "cannot create a TLS context: " + openssl_errors();
        return result;
    }
    context->ctx_ = ctx;
    SSL_CTX_set_app_data(ctx, context.get());
    const auto failed = [&](const std::string& what) {
        result.error = what + ": " + openssl_errors();
        return std::move(result);
    };
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 || SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        return failed("cannot restrict TLS to version 1.3");
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    (void)SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One recv() takes many small records (a peer that writes one frame per record).
    SSL_CTX_set_read_ahead(ctx, 1);

    if (psk) {
        if (SSL_CTX_set_ciphersuites(ctx, psk_ciphersuites) != 1) {
            return failed("cannot select the TLS 1.3 cipher suites");
        }
        if (server) {
            SSL_CTX_set_psk_find_session_callback(ctx, find_psk_session);
        } else {
            SSL_CTX_set_psk_use_session_callback(ctx, use_psk_session);
            // No trust anchors: a server that shows a certificate instead of using the key fails.
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_certificate);
        }
        context->summary_ = server ? "TLS 1.3 with pre-shared keys (" + std::to_string(context->keys_.size()) +
                                         (context->keys_.size() == 1 ? " identity)" : " identities)")
                                   : "TLS 1.3 with a pre-shared key (identity '" + context->keys_.front().identity + "')";
    } else {
        if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
            return failed("cannot load the certificate " + options.cert_file);
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
            if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
                return failed("the private key " + options.key_file + " does not belong to the certificate " +
                              options.cert_file);
            }
            return failed("cannot load the private key " + options.key_file);
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            return failed("the private key " + options.key_file + " does not belong to the certificate " +
                          options.cert_file);
        }
        if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
            return failed("cannot load the CA certificate " + options.ca_file);
        }
        const int mode = server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
        SSL_CTX_set_verify(ctx, mode, verify_certificate);
        if (server) {
            STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.ca_file.c_str());
            if (names == nullptr) {
                return failed("cannot read the CA names from " + options.ca_file);
            }
            SSL_CTX_set_client_CA_list(ctx, names);
        }
        X509* ours = SSL_CTX_get0_certificate(ctx);
        context->summary_ = "TLS 1.3 with certificates (ours: " + certificate_identity(ours) + ", CA " + options.ca_file + ")";
    }
    ERR_clear_error();
    result.context = std::move(context);
    return result;
}

std::unique_ptr<Transport> make_tls_transport(const TlsContext& context, int fd, std::string_view host) {
    return std::make_unique<TlsTransport>(context, fd, host);
}

}  // namespace tcpcan::linux_port
