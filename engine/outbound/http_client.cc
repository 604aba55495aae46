#include "outbound/http_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <vector>

namespace herald::outbound {

http_connection::http_connection(asio::io_context& io, asio::ssl::context& tls, endpoint ep,
                                 std::chrono::nanoseconds connect_timeout,
                                 std::chrono::nanoseconds response_timeout,
                                 const security::address_guard& guard)
    : io_(io),
      tls_ctx_(tls),
      ep_(std::move(ep)),
      connect_timeout_(connect_timeout),
      response_timeout_(response_timeout),
      guard_(guard),
      resolver_(io) {}

beast::tcp_stream& http_connection::lowest() {
    return secure_ ? beast::get_lowest_layer(*secure_) : *plain_;
}

void http_connection::send(http::request<http::string_body> req, done_handler done) {
    req_ = std::move(req);
    req_.set(http::field::host, ep_.host);
    req_.keep_alive(true);
    req_.prepare_payload();
    done_ = std::move(done);
    resent_ = false;
    reused_ = connected_;
    if (connected_) {
        write();
    } else {
        connect();
    }
}

void http_connection::connect() {
    close();
    if (ep_.tls) {
        secure_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io_, tls_ctx_);
        if (!SSL_set_tlsext_host_name(secure_->native_handle(), ep_.host.c_str())) {
            fail("tls",
                 beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()));
            return;
        }
        secure_->set_verify_callback(asio::ssl::host_name_verification(ep_.host));
    } else {
        plain_ = std::make_unique<beast::tcp_stream>(io_);
    }
    resolver_.async_resolve(
        ep_.host, ep_.port,
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
            if (ec) {
                self->fail("resolve", ec);
                return;
            }
            // Checked after resolution, at every connect: a name that
            // resolves (or rebinds) to a refused address is caught here.
            std::vector<tcp::endpoint> allowed;
            for (const auto& entry : results) {
                const auto ip = security::ip_address::parse(entry.endpoint().address().to_string());
                if (ip && !self->guard_.refuses(*ip))
                    allowed.push_back(entry.endpoint());
            }
            if (allowed.empty()) {
                self->fail("blocked_address", {});
                return;
            }
            self->lowest().expires_after(
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(self->connect_timeout_));
            self->lowest().async_connect(allowed, [self](beast::error_code ec2, const tcp::endpoint&) {
                if (ec2) {
                    self->fail(ec2 == beast::error::timeout ? "connect_timeout" : "connect", ec2);
                    return;
                }
                self->lowest().socket().set_option(tcp::no_delay(true), ec2);
                if (!self->secure_) {
                    self->connected_ = true;
                    self->write();
                    return;
                }
                self->secure_->async_handshake(asio::ssl::stream_base::client, [self](beast::error_code ec3) {
                    if (ec3) {
                        // A refused certificate (expired, another host's, an
                        // unknown CA) is the receiver's to fix: told apart
                        // from a handshake that broke down.
                        const bool refused = ec3.category() == asio::error::get_ssl_category() &&
                                             ERR_GET_REASON(static_cast<unsigned long>(ec3.value())) ==
                                                 SSL_R_CERTIFICATE_VERIFY_FAILED;
                        self->fail(refused ? "tls_certificate" : "tls", ec3);
                        return;
                    }
                    self->connected_ = true;
                    self->write();
                });
            });
        });
}

void http_connection::write() {
    lowest().expires_after(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(response_timeout_));
    parser_.emplace();
    parser_->body_limit(1 << 20);
    buffer_.clear();
    auto on_read = [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) {
            self->fail(ec == beast::error::timeout ? "timeout" : "read", ec);
            return;
        }
        auto res = self->parser_->release();
        http_reply reply;
        reply.status = static_cast<int>(res.result_int());
        reply.retry_after = std::string(res[http::field::retry_after]);
        reply.body = std::move(res.body());
        if (!res.keep_alive()) {
            self->close();
        }
        self->lowest().expires_never();
        auto done = std::move(self->done_);
        done(std::move(reply));
    };
    auto on_write = [self = shared_from_this(), on_read](beast::error_code ec, std::size_t) {
        if (ec) {
            self->fail("write", ec);
            return;
        }
        if (self->secure_) {
            http::async_read(*self->secure_, self->buffer_, *self->parser_, on_read);
        } else {
            http::async_read(*self->plain_, self->buffer_, *self->parser_, on_read);
        }
    };
    if (secure_) {
        http::async_write(*secure_, req_, on_write);
    } else {
        http::async_write(*plain_, req_, on_write);
    }
}

void http_connection::fail(const char* what, const beast::error_code& ec) {
    close();
    // A kept-alive connection the server had already closed fails before any
    // answer: that is not the gateway's verdict, so try once on a new one.
    if (reused_ && !resent_ &&
        (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe)) {
        resent_ = true;
        reused_ = false;
        connect();
        return;
    }
    http_reply reply;
    reply.error = what;
    auto done = std::move(done_);
    if (done)
        done(std::move(reply));
}

void http_connection::close() {
    connected_ = false;
    beast::error_code ignored;
    if (secure_) {
        beast::get_lowest_layer(*secure_).socket().close(ignored);
        secure_.reset();
    }
    if (plain_) {
        plain_->socket().close(ignored);
        plain_.reset();
    }
}

}  // namespace herald::outbound
