#include "ops/http_server.h"

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "base/log.h"
#include "base/loop_thread.h"
#include "tls/connection.h"
#include "tls/server_context.h"

namespace herald::ops {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

/// What the server's connections share. The counters come first: the
/// loops' destruction drops pending connections, which count themselves out.
struct http_server_state {
    http_server_options options;
    std::atomic<std::uint32_t> open{0};
    std::atomic<std::uint64_t> refused{0};
    base::loop_thread io{"herald-ops"};
    base::loop_thread worker{"herald-ops-work"};
};

namespace {

constexpr auto read_timeout = std::chrono::seconds(30);
constexpr auto handshake_timeout = std::chrono::seconds(10);
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

beast::tcp_stream& transport(beast::tcp_stream& s) {
    return s;
}
beast::tcp_stream& transport(tls_stream& s) {
    return s.next_layer();
}

// A bounded label for a failed handshake (the metric's reason).
std::string_view handshake_failure(const beast::error_code& ec) {
    if (ec == beast::error::timeout)
        return "timeout";
    if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
        ec == asio::error::connection_reset)
        return "peer_closed";
    if (ec.category() == asio::error::get_ssl_category())
        return tls::failure_label(static_cast<unsigned long>(ec.value()));
    return "other";
}

template <class Stream>
class connection : public std::enable_shared_from_this<connection<Stream>> {
  public:
    connection(Stream stream, http_server_state& state) : stream_(std::move(stream)), state_(state) {
        state_.open.fetch_add(1, std::memory_order_relaxed);
    }
    ~connection() { state_.open.fetch_sub(1, std::memory_order_relaxed); }

    void start() {
        if constexpr (std::is_same_v<Stream, tls_stream>) {
            transport(stream_).expires_after(handshake_timeout);
            stream_.async_handshake(asio::ssl::stream_base::server,
                                    [self = this->shared_from_this()](beast::error_code ec) {
                                        if (ec) {
                                            if (self->state_.options.on_tls_failure)
                                                self->state_.options.on_tls_failure(handshake_failure(ec));
                                            self->close();
                                            return;
                                        }
                                        self->read();
                                    });
        } else {
            read();
        }
    }

  private:
    void read() {
        parser_.emplace();
        parser_->body_limit(state_.options.max_body_bytes);
        parser_->header_limit(16 * 1024);
        transport(stream_).expires_after(read_timeout);
        http::async_read(
            stream_, buffer_, *parser_,
            [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }
    void on_read(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::operation_aborted || ec == asio::ssl::error::stream_truncated) {
            close();
            return;
        }
        if (ec) {
            respond(ec == http::error::body_limit
                        ? http_response::error(413, "request body larger than ops_max_body_bytes")
                        : http_response::error(400, "bad request: " + ec.message()),
                    false);
            return;
        }
        auto& req = parser_->get();
        const bool keep_alive = req.keep_alive();
        auto in = std::make_shared<http_request>();
        in->method = std::string(req.method_string());
        const std::string_view target = req.target();
        const auto q = target.find('?');
        in->path = std::string(target.substr(0, q));
        if (q != std::string_view::npos) {
            in->query = std::string(target.substr(q + 1));
        }
        in->body = std::move(req.body());
        beast::error_code ignored;
        const auto remote = transport(stream_).socket().remote_endpoint(ignored);
        if (!ignored)
            in->peer = remote.address().to_string();
        for (const auto& field : req) {
            std::string name(field.name_string());
            for (auto& c : name) {
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            in->headers.emplace_back(std::move(name), std::string(field.value()));
        }
        if (state_.options.blocking && state_.options.blocking(*in)) {
            // Off the I/O thread: the answer comes back to it to be written.
            transport(stream_).expires_never();
            state_.worker.post([self = this->shared_from_this(), in, keep_alive] {
                auto out = std::make_shared<http_response>(self->answer(*in));
                self->state_.io.post([self, out, keep_alive] { self->respond(std::move(*out), keep_alive); });
            });
            return;
        }
        respond(answer(*in), keep_alive);
    }

    http_response answer(const http_request& in) {
        try {
            return state_.options.handle(in);
        } catch (const std::exception& e) {
            HERALD_LOG_ERROR("ops", "handler for ", in.path, " threw: ", e.what());
            return http_response::error(500, "internal error");
        }
    }

    void respond(http_response out, bool keep_alive) {
        response_.emplace(static_cast<http::status>(out.status), 11);
        response_->set(http::field::server, "heraldd");
        response_->set(http::field::content_type, out.content_type);
        for (const auto& [name, value] : out.headers) response_->set(name, value);
        response_->keep_alive(keep_alive);
        response_->body() = std::move(out.body);
        response_->prepare_payload();
        transport(stream_).expires_after(read_timeout);
        http::async_write(stream_, *response_,
                          [self = this->shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                              if (ec || !keep_alive) {
                                  self->close();
                                  return;
                              }
                              self->read();
                          });
    }

    void close() {
        beast::error_code ignored;
        transport(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
        transport(stream_).socket().close(ignored);
    }

    Stream stream_;
    http_server_state& state_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::string_body>> response_;
};

}  // namespace

struct http_server::impl {
    explicit impl(http_server_options o) : acceptor(state.io.context()) { state.options = std::move(o); }

    void accept() {
        acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
                return;
            }
            if (!ec) {
                if (state.open.load(std::memory_order_relaxed) >= state.options.max_connections) {
                    state.refused.fetch_add(1, std::memory_order_relaxed);
                    beast::error_code ignored;
                    socket.close(ignored);
                } else if (state.options.tls) {
                    // The context current now: a SIGHUP reload reaches new connections only.
                    const auto ctx = state.options.tls->current();
                    SSL_CTX_up_ref(ctx.get());
                    asio::ssl::context wrapped(ctx.get());  // owns the reference just taken
                    try {
                        std::make_shared<connection<tls_stream>>(
                            tls_stream(beast::tcp_stream(std::move(socket)), wrapped), state)
                            ->start();
                    } catch (const std::exception& e) {  // SSL_new failed: out of memory
                        HERALD_LOG_ERROR("ops", "cannot start a TLS connection: ", e.what());
                    }
                } else {
                    std::make_shared<connection<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)),
                                                                    state)
                        ->start();
                }
            }
            accept();
        });
    }

    http_server_state state;
    tcp::acceptor acceptor;
};

http_server::http_server(http_server_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

http_server::~http_server() {
    stop();
}

std::uint64_t http_server::refused() const noexcept {
    return impl_->state.refused.load(std::memory_order_relaxed);
}

base::result<std::uint16_t> http_server::listen(const std::string& host, std::uint16_t port) {
    beast::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) {
        return base::failure(ec, "ops_host \"" + host + "\" is not an IP address");
    }
    const tcp::endpoint endpoint(address, port);
    auto& acceptor = impl_->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec)
        acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec)
        acceptor.bind(endpoint, ec);
    if (!ec)
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        return base::failure(ec,
                             "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
    }
    return acceptor.local_endpoint().port();
}

void http_server::start() {
    impl_->state.io.post([this] { impl_->accept(); });
    impl_->state.worker.start();
    impl_->state.io.start();
}

void http_server::stop() {
    if (!impl_->state.io.running())
        return;
    impl_->state.io.run_and_wait([this] {
        beast::error_code ignored;
        impl_->acceptor.close(ignored);
    });
    impl_->state.worker.stop();
    impl_->state.io.stop();
}

}  // namespace herald::ops
