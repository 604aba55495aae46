// A keep-alive HTTP/1.1 client connection for outbound gateways, plain or
// TLS (OpenSSL, verifying the peer against the system CAs, outbound_ca_file
// and the host name),
// with connect and response timeouts. One connection carries one request at
// a time; the outbound shard keeps a small pool per endpoint. Included only
// by outbound_shard.cc so Beast is compiled in one translation unit.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "outbound/endpoint.h"
#include "security/address_guard.h"

namespace herald::outbound {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct http_reply {
    int status = 0;  // 0: no answer, see `error`
    std::string body;
    std::string retry_after;
    std::string error;  // "blocked_address", "connect", "timeout", "tls", "tls_certificate", "read", ...
};

class http_connection : public std::enable_shared_from_this<http_connection> {
  public:
    using done_handler = std::function<void(http_reply)>;

    /// `guard` decides which resolved addresses may be connected to; a
    /// host with none allowed fails with error "blocked_address" and no
    /// connection is attempted.
    http_connection(asio::io_context& io, asio::ssl::context& tls, endpoint ep,
                    std::chrono::nanoseconds connect_timeout, std::chrono::nanoseconds response_timeout,
                    const security::address_guard& guard);

    /// Sends `req` (connecting first if needed) and calls `done` once.
    void send(http::request<http::string_body> req, done_handler done);
    [[nodiscard]] bool connected() const noexcept { return connected_; }

  private:
    void connect();
    void write();
    void fail(const char* what, const beast::error_code& ec);
    void close();
    beast::tcp_stream& lowest();

    asio::io_context& io_;
    asio::ssl::context& tls_ctx_;
    endpoint ep_;
    std::chrono::nanoseconds connect_timeout_;
    std::chrono::nanoseconds response_timeout_;
    const security::address_guard& guard_;
    tcp::resolver resolver_;
    std::unique_ptr<beast::tcp_stream> plain_;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure_;
    bool connected_ = false;
    bool reused_ = false;  // this request went out on a connection that had served one before
    bool resent_ = false;  // already retried once on a fresh connection
    beast::flat_buffer buffer_;
    http::request<http::string_body> req_;
    std::optional<http::response_parser<http::string_body>> parser_;
    done_handler done_;
};

}  // namespace herald::outbound
