#include "tls/connection.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace herald::tls {

std::string_view failure_label(unsigned long openssl_error) noexcept {
    if (openssl_error == 0)
        return "other";
    if (ERR_GET_LIB(openssl_error) != ERR_LIB_SSL)
        return "other";
    const int reason = ERR_GET_REASON(openssl_error);
    switch (reason) {
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
            return "plaintext_http";
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_UNKNOWN_PROTOCOL:
            return "protocol_version";
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_SHARED_GROUPS:
        case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
            return "no_shared_cipher";
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
        case SSL_R_NO_CERTIFICATES_RETURNED:
            return "client_certificate";
        default:
            break;
    }
    // Alerts the peer sent us (it did not trust our certificate, say).
    if (reason >= SSL_AD_REASON_OFFSET)
        return "peer_alert";
    return "other";
}

std::unique_ptr<connection> connection::accept(const std::shared_ptr<ssl_ctx_st>& ctx, int fd) {
    SSL* ssl = SSL_new(ctx.get());
    if (ssl == nullptr) {
        ERR_clear_error();
        return nullptr;
    }
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return nullptr;
    }
    SSL_set_accept_state(ssl);
    return std::unique_ptr<connection>(new connection(ssl, ctx));
}

connection::~connection() {
    SSL_free(ssl_);
}

io_status connection::classify(int ret, bool in_handshake) {
    const int err = SSL_get_error(ssl_, ret);
    switch (err) {
        case SSL_ERROR_WANT_READ:
            return io_status::want_read;
        case SSL_ERROR_WANT_WRITE:
            return io_status::want_write;
        case SSL_ERROR_ZERO_RETURN:
            return io_status::closed;
        case SSL_ERROR_SYSCALL:
            if (in_handshake)
                failure_ = "peer_closed";
            ERR_clear_error();
            // errno 0 (or an unexpected EOF): the peer went away.
            return errno == 0 ? io_status::closed : io_status::failed;
        case SSL_ERROR_SSL: {
            const unsigned long e = ERR_peek_last_error();
            if (in_handshake)
                failure_ = failure_label(e);
            // OpenSSL 3 reports a peer that vanished mid-record as an SSL error.
            const bool eof = ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
            if (eof && in_handshake)
                failure_ = "peer_closed";
            ERR_clear_error();
            return eof ? io_status::closed : io_status::failed;
        }
        default:
            ERR_clear_error();
            return io_status::failed;
    }
}

io_status connection::handshake() {
    ERR_clear_error();
    errno = 0;
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1)
        return io_status::ok;
    const io_status st = classify(ret, true);
    return st == io_status::closed ? io_status::failed : st;
}

io_result connection::read(char* buf, std::size_t size) {
    ERR_clear_error();
    errno = 0;
    std::size_t n = 0;
    const int ret = SSL_read_ex(ssl_, buf, size, &n);
    if (ret == 1)
        return {io_status::ok, n};
    return {classify(ret, false), 0};
}

io_result connection::write(const char* data, std::size_t size) {
    std::size_t total = 0;
    // With partial writes each call sends at most one record (16 KiB): loop
    // until the frame is out or the socket is full.
    while (total < size) {
        ERR_clear_error();
        errno = 0;
        std::size_t n = 0;
        const int ret = SSL_write_ex(ssl_, data + total, size - total, &n);
        if (ret != 1) {
            const io_status st = classify(ret, false);
            std::size_t pending = 0;
            if (st == io_status::want_write || st == io_status::want_read)
                pending = std::min<std::size_t>(
                    size - total, SSL3_RT_MAX_PLAIN_LENGTH);  // at most one record (a smaller negotiated
                                                              // fragment only keeps more)
            if (total > 0 && pending > 0)
                return {io_status::ok, total, pending};
            return {st, total, pending};
        }
        total += n;
    }
    return {io_status::ok, total};
}

bool connection::kernel_sends() const noexcept {
#if defined(OPENSSL_NO_KTLS)
    return false;
#else
    return BIO_get_ktls_send(SSL_get_wbio(ssl_)) != 0;
#endif
}

void connection::shutdown() noexcept {
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);
    ERR_clear_error();
}

}  // namespace herald::tls
