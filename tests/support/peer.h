// A minimal blocking client for tests: raw sockets, WebSocket and SSE
// framing written from the RFC, no Boost. Independent of the server's code on
// purpose, so a test using it checks Herald against the protocol, not against
// itself. Every read takes a timeout so a broken server fails a test instead
// of hanging it. start_tls() puts OpenSSL underneath (verifying the server
// against a given CA), and every helper below works the same over TLS.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace herald::testing {

inline int connect_tcp(const std::string& host, std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

struct ws_frame {
    std::uint8_t opcode = 0;
    bool fin = false;
    std::string payload;
    [[nodiscard]] std::uint16_t close_code() const {
        return payload.size() >= 2
                   ? static_cast<std::uint16_t>((std::uint8_t(payload[0]) << 8) | std::uint8_t(payload[1]))
                   : 0;
    }
};

/// One connection with a read buffer.
class peer {
  public:
    peer() = default;
    explicit peer(int fd) : fd_(fd) {}
    peer(peer&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)), ssl_(o.ssl_) {
        o.fd_ = -1;
        o.ssl_ = nullptr;
    }
    peer& operator=(peer&& o) noexcept {
        if (this != &o) {
            close();
            fd_ = o.fd_;
            buf_ = std::move(o.buf_);
            ssl_ = o.ssl_;
            o.fd_ = -1;
            o.ssl_ = nullptr;
        }
        return *this;
    }
    ~peer() { close(); }

    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    void close() {
        if (ssl_ != nullptr)
            SSL_free(ssl_);
        ssl_ = nullptr;
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

    struct tls_options {
        std::string ca_file{};           // trust only this CA ("" = do not verify)
        std::string host = "127.0.0.1";  // checked against the certificate; SNI when a name
        std::string cert_file{};         // client certificate (mutual TLS)
        std::string key_file{};
        int max_version = 0;  // e.g. TLS1_1_VERSION to try an old protocol
        int min_version = 0;
        std::string alpn = "http/1.1";
    };

    /// Client TLS handshake on the connected socket; "" on success, else why it failed.
    std::string start_tls(const tls_options& o) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
        // Reads return after a non-data record (a session ticket) instead of
        // blocking for data past the caller's timeout.
        SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
        if (o.min_version != 0)
            SSL_CTX_set_min_proto_version(ctx, o.min_version);
        if (o.max_version != 0) {
            SSL_CTX_set_security_level(ctx, 0);  // let the old protocol be offered at all
            SSL_CTX_set_max_proto_version(ctx, o.max_version);
        }
        if (!o.ca_file.empty()) {
            SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        }
        if (!o.cert_file.empty()) {
            SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str());
            SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM);
        }
        ssl_ = SSL_new(ctx);
        SSL_CTX_free(ctx);  // the SSL keeps its own reference
        if (!o.alpn.empty()) {
            std::string wire(1, static_cast<char>(o.alpn.size()));
            wire += o.alpn;
            SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size()));
        }
        if (!o.ca_file.empty())
            SSL_set1_host(ssl_, o.host.c_str());
        const bool is_ip = o.host.find_first_not_of("0123456789.:") == std::string::npos;
        if (!is_ip)
            SSL_set_tlsext_host_name(ssl_, o.host.c_str());
        SSL_set_fd(ssl_, fd_);
        if (SSL_connect(ssl_) != 1) {
            std::string why = "handshake failed";
            if (const long v = SSL_get_verify_result(ssl_); v != X509_V_OK)
                why = std::string("certificate: ") + X509_verify_cert_error_string(v);
            else if (const unsigned long e = ERR_get_error(); e != 0)
                why = ERR_reason_error_string(e) != nullptr ? ERR_reason_error_string(e) : why;
            ERR_clear_error();
            SSL_free(ssl_);
            ssl_ = nullptr;
            return why;
        }
        return {};
    }

    /// The server certificate's subject CN (TLS only).
    [[nodiscard]] std::string peer_common_name() const {
        if (ssl_ == nullptr)
            return {};
        X509* cert = SSL_get1_peer_certificate(ssl_);
        if (cert == nullptr)
            return {};
        char cn[256] = {};
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        X509_free(cert);
        return cn;
    }

    /// The negotiated ALPN protocol and TLS version (TLS only).
    [[nodiscard]] std::string alpn() const {
        const unsigned char* p = nullptr;
        unsigned len = 0;
        if (ssl_ != nullptr)
            SSL_get0_alpn_selected(ssl_, &p, &len);
        return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), len);
    }
    [[nodiscard]] std::string tls_version() const { return ssl_ == nullptr ? "" : SSL_get_version(ssl_); }

    bool send_all(std::string_view data) {
        if (ssl_ != nullptr) {
            std::size_t n = 0;
            return data.empty() ||
                   (SSL_write_ex(ssl_, data.data(), data.size(), &n) == 1 && n == data.size());
        }
        while (!data.empty()) {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0)
                return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    /// Reads more bytes into the buffer; false on EOF, error or timeout.
    bool fill(int timeout_ms) {
        char tmp[65536];
        if (ssl_ != nullptr) {
            if (SSL_pending(ssl_) == 0) {
                pollfd p{fd_, POLLIN, 0};
                if (::poll(&p, 1, timeout_ms) <= 0)
                    return false;
            }
            const int n = SSL_read(ssl_, tmp, sizeof tmp);
            if (n <= 0) {
                // Handshake messages after the handshake (session tickets) carry no data.
                const int err = SSL_get_error(ssl_, n);
                ERR_clear_error();
                return err == SSL_ERROR_WANT_READ;
            }
            buf_.append(tmp, static_cast<std::size_t>(n));
            return true;
        }
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0)
            return false;
        const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0)
            return false;
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }

    /// Reads until `delim` is buffered; returns everything up to and including it.
    std::optional<std::string> read_until(std::string_view delim, int timeout_ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            const auto pos = buf_.find(delim);
            if (pos != std::string::npos) {
                std::string out = buf_.substr(0, pos + delim.size());
                buf_.erase(0, pos + delim.size());
                return out;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0 || !fill(static_cast<int>(left)))
                return std::nullopt;
        }
    }

    /// Sends the upgrade request; returns the response head ("HTTP/1.1 101 ...").
    std::optional<std::string> websocket_handshake(const std::string& target, int timeout_ms = 5000) {
        const std::string req =
            "GET " + target +
            " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        if (!send_all(req))
            return std::nullopt;
        return read_until("\r\n\r\n", timeout_ms);
    }

    std::optional<std::string> sse_handshake(const std::string& target, const std::string& extra_headers = "",
                                             int timeout_ms = 5000) {
        const std::string req = "GET " + target +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" +
                                extra_headers + "\r\n";
        if (!send_all(req))
            return std::nullopt;
        return read_until("\r\n\r\n", timeout_ms);
    }

    /// One server->client frame (unmasked, as RFC 6455 requires of servers).
    std::optional<ws_frame> read_frame(int timeout_ms = 5000) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            if (auto f = try_parse())
                return f;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0 || !fill(static_cast<int>(left)))
                return std::nullopt;
        }
    }

    /// Next data frame, answering nothing and skipping pings.
    std::optional<ws_frame> read_data_frame(int timeout_ms = 5000) {
        for (;;) {
            auto f = read_frame(timeout_ms);
            if (!f || (f->opcode != 0x9 && f->opcode != 0xA))
                return f;
        }
    }

    /// Next SSE event block ("id: ..\ndata: ..\n\n"), skipping comments and retry lines.
    std::optional<std::string> read_sse_event(int timeout_ms = 5000) {
        for (;;) {
            auto block = read_until("\n\n", timeout_ms);
            if (!block)
                return std::nullopt;
            if (block->find("data:") != std::string::npos)
                return block;
        }
    }

    /// A masked client frame.
    bool send_frame(std::uint8_t opcode, std::string_view payload, bool fin = true) {
        std::string out;
        out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
        if (payload.size() < 126) {
            out.push_back(static_cast<char>(0x80 | payload.size()));
        } else if (payload.size() <= 0xFFFF) {
            out.push_back(static_cast<char>(0x80 | 126));
            out.push_back(static_cast<char>(payload.size() >> 8));
            out.push_back(static_cast<char>(payload.size() & 0xFF));
        } else {
            out.push_back(static_cast<char>(0x80 | 127));
            for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xFF));
        }
        const char mask[4] = {0x12, 0x34, 0x56, 0x78};
        out.append(mask, 4);
        for (std::size_t i = 0; i < payload.size(); ++i)
            out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
        return send_all(out);
    }

    /// True when the server closed the TCP connection within the timeout.
    bool wait_eof(int timeout_ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0)
                return false;
            if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
                pollfd p{fd_, POLLIN, 0};
                if (::poll(&p, 1, static_cast<int>(left)) <= 0)
                    return false;
            }
            char tmp[4096];
            if (ssl_ != nullptr) {
                const int n = SSL_read(ssl_, tmp, sizeof tmp);
                if (n <= 0) {
                    const int err = SSL_get_error(ssl_, n);
                    ERR_clear_error();
                    if (err == SSL_ERROR_WANT_READ)
                        continue;
                    return true;
                }
                buf_.append(tmp, static_cast<std::size_t>(n));
                continue;
            }
            const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0)
                return true;
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
    }

    std::string& buffer() { return buf_; }

  private:
    std::optional<ws_frame> try_parse() {
        if (buf_.size() < 2)
            return std::nullopt;
        const auto b0 = static_cast<std::uint8_t>(buf_[0]);
        const auto b1 = static_cast<std::uint8_t>(buf_[1]);
        std::size_t len = b1 & 0x7F;
        std::size_t header = 2;
        if (len == 126) {
            if (buf_.size() < 4)
                return std::nullopt;
            len = (std::size_t(std::uint8_t(buf_[2])) << 8) | std::uint8_t(buf_[3]);
            header = 4;
        } else if (len == 127) {
            if (buf_.size() < 10)
                return std::nullopt;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | std::uint8_t(buf_[2 + i]);
            header = 10;
        }
        if (buf_.size() < header + len)
            return std::nullopt;
        ws_frame f;
        f.fin = (b0 & 0x80) != 0;
        f.opcode = b0 & 0x0F;
        f.payload = buf_.substr(header, len);
        raw_last_ = buf_.substr(0, header + len);
        buf_.erase(0, header + len);
        return f;
    }

  public:
    /// The exact bytes of the last frame read (for identical-bytes checks).
    std::string raw_last_;

  private:
    int fd_ = -1;
    std::string buf_;
    SSL* ssl_ = nullptr;
};

}  // namespace herald::testing
