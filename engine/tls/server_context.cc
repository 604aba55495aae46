#include "tls/server_context.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace herald::tls {
namespace {

#ifndef TCP_ULP
constexpr int TCP_ULP = 31;  // NOLINT: named as in linux/tcp.h
#endif

base::failure fail(const std::string& what) {
    std::string detail = what;
    if (const unsigned long e = ERR_get_error(); e != 0) {
        std::array<char, 256> buf{};
        ERR_error_string_n(e, buf.data(), buf.size());
        detail += " (";
        detail += buf.data();
        detail += ")";
    }
    ERR_clear_error();
    return base::failure(std::make_error_code(std::errc::invalid_argument), detail);
}

// ALPN: http/1.1 is all either port speaks. A client that offers only other
// protocols (h2) proceeds without ALPN rather than failing.
int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* /*arg*/) {
    static constexpr unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, http11, sizeof http11, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

std::string describe_leaf(SSL_CTX* ctx) {
    X509* leaf = SSL_CTX_get0_certificate(ctx);
    if (leaf == nullptr)
        return "no certificate";
    std::array<char, 256> subject{};
    X509_NAME_oneline(X509_get_subject_name(leaf), subject.data(), static_cast<int>(subject.size()));
    std::string out = subject.data();
    if (const ASN1_TIME* not_after = X509_get0_notAfter(leaf)) {
        BIO* mem = BIO_new(BIO_s_mem());
        if (mem != nullptr) {
            ASN1_TIME_print(mem, not_after);
            char* text = nullptr;
            const long n = BIO_get_mem_data(mem, &text);
            out += ", valid until ";
            out.append(text, static_cast<std::size_t>(n));
            BIO_free(mem);
        }
    }
    return out;
}

}  // namespace

const ktls_support& probe_ktls() {
    static const ktls_support support = [] {
        ktls_support s;
#if defined(OPENSSL_NO_KTLS)
        s.detail = "OpenSSL was built without kernel TLS";
        return s;
#else
        // The ULP can only be set on a connected TCP socket.
        const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int accepted = -1;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast)
        if (listener >= 0 && client >= 0 && ::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
            ::listen(listener, 1) == 0 &&
            ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
            ::connect(client, reinterpret_cast<sockaddr*>(&addr), len) == 0) {
            // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast)
            accepted = ::accept(listener, nullptr, nullptr);
            if (::setsockopt(client, SOL_TCP, TCP_ULP, "tls", 3) == 0) {
                s.available = true;
                s.detail = "kernel tls ULP and OpenSSL support it";
            } else {
                s.detail = std::string("the kernel refused the tls ULP (") + std::strerror(errno) +
                           "): records are encrypted by SSL_write per connection";
            }
        } else {
            s.detail = "could not open a loopback connection to probe the kernel";
        }
        for (const int fd : {listener, client, accepted})
            if (fd >= 0)
                ::close(fd);
        return s;
#endif
    }();
    return support;
}

base::result<std::shared_ptr<server_context>> server_context::load(server_files files, bool use_ktls) {
    auto ctx = std::make_shared<server_context>(std::move(files), use_ktls);
    auto built = ctx->build();
    if (!built)
        return base::failure(built.err());
    ctx->current_ = std::move(*built);
    ctx->description_ = describe_leaf(ctx->current_.get());
    return ctx;
}

base::result<void> server_context::reload() {
    auto built = build();
    if (!built)
        return base::failure(built.err());
    std::string description = describe_leaf(built->get());
    const std::lock_guard lock(mutex_);
    current_ = std::move(*built);
    description_ = std::move(description);
    return {};
}

server_context::ctx_ptr server_context::current() const {
    const std::lock_guard lock(mutex_);
    return current_;
}

std::string server_context::describe() const {
    const std::lock_guard lock(mutex_);
    return description_;
}

base::result<server_context::ctx_ptr> server_context::build() const {
    ERR_clear_error();
    ctx_ptr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (!ctx)
        return fail("cannot create a TLS context");
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
    // Forward secrecy and AEAD only for TLS 1.2 (1.3's suites are all fine).
    if (SSL_CTX_set_cipher_list(c, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
        return fail("cannot set the TLS 1.2 cipher list");
    long options = SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION;
#if !defined(OPENSSL_NO_KTLS)
    if (use_ktls_)
        options |= SSL_OP_ENABLE_KTLS;
#endif
    SSL_CTX_set_options(c, options);
    // Partial writes: a write reports each record as it leaves, so the caller's
    // queue offsets stay exact; a queued retry may offer the bytes from a new address.
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
    if (SSL_CTX_use_certificate_chain_file(c, files_.cert_file.c_str()) != 1)
        return fail(files_.cert_setting + ": cannot load the certificate chain \"" + files_.cert_file + "\"");
    if (SSL_CTX_use_PrivateKey_file(c, files_.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c) != 1) {
        const unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) != ERR_LIB_X509 || (ERR_GET_REASON(e) != X509_R_KEY_VALUES_MISMATCH &&
                                               ERR_GET_REASON(e) != X509_R_KEY_TYPE_MISMATCH))
            return fail(files_.key_setting + ": cannot load the private key \"" + files_.key_file + "\"");
        return fail(files_.key_setting + ": the private key \"" + files_.key_file +
                    "\" does not match the certificate \"" + files_.cert_file + "\"");
    }
    if (!files_.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(c, files_.client_ca_file.c_str(), nullptr) != 1)
            return fail(files_.client_ca_setting + ": cannot load the CA file \"" + files_.client_ca_file +
                        "\"");
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files_.client_ca_file.c_str());
        if (names == nullptr)
            return fail(files_.client_ca_setting + ": no CA certificate in \"" + files_.client_ca_file +
                        "\"");
        SSL_CTX_set_client_CA_list(c, names);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    // No session resumption: ticket keys would live unrotated for the whole
    // process (weakening forward secrecy) and would not survive a restart or
    // reload anyway. A full ECDHE handshake with a P-256 key is cheap.
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    static constexpr unsigned char session_id_context[] = "herald";
    SSL_CTX_set_session_id_context(c, session_id_context, sizeof session_id_context - 1);
    return ctx;
}

}  // namespace herald::tls
