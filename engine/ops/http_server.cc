#include "ops/http_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "base/log.h"
#include "base/loop_thread.h"

namespace herald::ops {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t max_body_bytes = 16 << 20;  // a 10,000-line subscription import
constexpr auto read_timeout = std::chrono::seconds(30);

class connection : public std::enable_shared_from_this<connection> {
  public:
    connection(tcp::socket socket, const http_server::handler& route)
        : stream_(std::move(socket)), route_(route) {}

    void start() { read(); }

  private:
    void read() {
        parser_.emplace();
        parser_->body_limit(max_body_bytes);
        parser_->header_limit(16 * 1024);
        stream_.expires_after(read_timeout);
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::operation_aborted) {
            close();
            return;
        }
        http_response out;
        bool keep_alive = false;
        if (ec) {
            out.status = ec == http::error::body_limit ? 413 : 400;
            out.body = "bad request: " + ec.message() + "\n";
        } else {
            auto& req = parser_->get();
            keep_alive = req.keep_alive();
            http_request in;
            in.method = std::string(req.method_string());
            const std::string_view target = req.target();
            const auto q = target.find('?');
            in.path = std::string(target.substr(0, q));
            if (q != std::string_view::npos) {
                in.query = std::string(target.substr(q + 1));
            }
            in.body = std::move(req.body());
            beast::error_code ignored;
            const auto remote = stream_.socket().remote_endpoint(ignored);
            if (!ignored)
                in.peer = remote.address().to_string();
            for (const auto& field : req) {
                std::string name(field.name_string());
                for (auto& c : name) {
                    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                }
                in.headers.emplace_back(std::move(name), std::string(field.value()));
            }
            try {
                out = route_(in);
            } catch (const std::exception& e) {
                out = http_response::error(500, "internal error");
                HERALD_LOG_ERROR("ops", "handler for ", in.path, " threw: ", e.what());
            }
        }
        response_.emplace(static_cast<http::status>(out.status), 11);
        response_->set(http::field::server, "heraldd");
        response_->set(http::field::content_type, out.content_type);
        for (const auto& [name, value] : out.headers) response_->set(name, value);
        response_->keep_alive(keep_alive);
        response_->body() = std::move(out.body);
        response_->prepare_payload();
        http::async_write(stream_, *response_,
                          [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                              if (ec || !keep_alive) {
                                  self->close();
                                  return;
                              }
                              self->read();
                          });
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.socket().close(ignored);
    }

    beast::tcp_stream stream_;
    const http_server::handler& route_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::string_body>> response_;
};

}  // namespace

struct http_server::impl {
    explicit impl(handler h) : route(std::move(h)), loop("herald-ops"), acceptor(loop.context()) {}

    void accept() {
        acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
                return;
            }
            if (!ec) {
                std::make_shared<connection>(std::move(socket), route)->start();
            }
            accept();
        });
    }

    handler route;
    base::loop_thread loop;
    tcp::acceptor acceptor;
};

http_server::http_server(handler on_request) : impl_(std::make_unique<impl>(std::move(on_request))) {}

http_server::~http_server() {
    stop();
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
    impl_->loop.post([this] { impl_->accept(); });
    impl_->loop.start();
}

void http_server::stop() {
    if (!impl_->loop.running())
        return;
    impl_->loop.run_and_wait([this] {
        beast::error_code ignored;
        impl_->acceptor.close(ignored);
    });
    impl_->loop.stop();
}

}  // namespace herald::ops
