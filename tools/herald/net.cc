#include "net.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace herald::cli {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

std::optional<url> parse_url(const std::string& text) {
    const auto sep = text.find("://");
    if (sep == std::string::npos)
        return std::nullopt;
    url u;
    u.scheme = text.substr(0, sep);
    std::string rest = text.substr(sep + 3);
    const auto slash = rest.find('/');
    if (slash != std::string::npos) {
        u.target = rest.substr(slash);
        rest = rest.substr(0, slash);
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos) {
        u.host = rest;
        u.port = (u.scheme == "https" || u.scheme == "wss") ? "443" : "80";
    } else {
        u.host = rest.substr(0, colon);
        u.port = rest.substr(colon + 1);
    }
    if (u.host.empty() || u.port.empty())
        return std::nullopt;
    return u;
}

http_result http_request(const url& base, const std::string& method, const std::string& target,
                         const std::string& body, const std::string& content_type,
                         std::chrono::milliseconds timeout) {
    http_result out;
    try {
        asio::io_context ioc;
        beast::tcp_stream stream(ioc);
        tcp::resolver resolver(ioc);
        stream.expires_after(timeout);
        stream.connect(resolver.resolve(base.host, base.port));
        http::request<http::string_body> req{http::string_to_verb(method), target, 11};
        req.set(http::field::host, base.host);
        req.set(http::field::user_agent, "herald-cli");
        if (!base.credential.empty())
            req.set(http::field::authorization, "Bearer " + base.credential);
        if (!body.empty() || method != "GET") {
            req.set(http::field::content_type, content_type);
            req.body() = body;
            req.prepare_payload();
        }
        http::write(stream, req);
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 << 20);
        http::read(stream, buffer, parser);
        out.status = static_cast<int>(parser.get().result_int());
        out.body = parser.get().body();
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    } catch (const std::exception& e) {
        out.error = e.what();
    }
    return out;
}

http_result http_get(const url& base, const std::string& target, std::chrono::milliseconds timeout) {
    return http_request(base, "GET", target, {}, "text/plain", timeout);
}

namespace {

std::string percent_encode(const std::string& s) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string stream_target(const std::string& path, const std::vector<std::string>& audiences,
                          const url& base) {
    std::string t = path;
    char sep = '?';
    for (const auto& a : audiences) {
        t += sep;
        t += "audience=" + percent_encode(a);
        sep = '&';
    }
    if (!base.tenant.empty())
        t += "&tenant=" + percent_encode(base.tenant);
    if (!base.credential.empty())
        t += "&token=" + percent_encode(base.credential);
    return t;
}

/// The target as shown to people: the token is not theirs to see in a terminal log.
std::string shown_target(std::string target) {
    if (const auto at = target.find("&token="); at != std::string::npos)
        target = target.substr(0, at) + "&token=…";
    return target;
}

}  // namespace

listen_result listen(const url& base, const std::vector<std::string>& audiences, bool sse,
                     std::chrono::milliseconds idle_timeout,
                     const std::function<bool(const std::string&)>& on_frame,
                     const std::function<void(const std::string&)>& on_subscribed) {
    listen_result out;
    const auto no_timeout = std::chrono::hours(24 * 365);
    const auto wait = idle_timeout.count() > 0
                          ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(idle_timeout)
                          : std::chrono::duration_cast<std::chrono::steady_clock::duration>(no_timeout);
    try {
        asio::io_context ioc;
        tcp::resolver resolver(ioc);
        const auto endpoints = resolver.resolve(base.host, base.port);
        if (!sse) {
            websocket::stream<beast::tcp_stream> ws(ioc);
            beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(10));
            beast::get_lowest_layer(ws).connect(endpoints);
            beast::get_lowest_layer(ws).expires_never();
            ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(10), no_timeout, false});
            ws.handshake(base.host + ":" + base.port, stream_target("/v1/ws", audiences, base));
            on_subscribed("ws://" + base.host + ":" + base.port +
                          shown_target(stream_target("/v1/ws", audiences, base)));
            for (;;) {
                beast::flat_buffer buffer;
                beast::error_code ec;
                bool done = false;
                ws.async_read(buffer, [&](beast::error_code e, std::size_t) {
                    ec = e;
                    done = true;
                });
                // Run until this read completes, not for the whole timeout:
                // the stream's own timers keep the context busy, so
                // run_for() would sit on a frame that has already arrived.
                ioc.restart();
                const auto deadline = std::chrono::steady_clock::now() + wait;
                while (!done && std::chrono::steady_clock::now() < deadline &&
                       ioc.run_one_until(deadline) != 0) {
                }
                if (!done) {
                    out.how = listen_result::timed_out;
                    return out;
                }
                if (ec == websocket::error::closed) {
                    out.how = listen_result::closed;
                    out.close_code = ws.reason().code;
                    out.detail = std::string(ws.reason().reason.c_str());
                    return out;
                }
                if (ec) {
                    out.detail = ec.message();
                    return out;
                }
                if (!on_frame(beast::buffers_to_string(buffer.data()))) {
                    beast::error_code ignored;
                    ws.close(websocket::close_code::normal, ignored);
                    out.how = listen_result::stopped;
                    return out;
                }
            }
        }
        // Server-Sent Events: read the response head, then "data:" lines.
        beast::tcp_stream stream(ioc);
        stream.expires_after(std::chrono::seconds(10));
        stream.connect(endpoints);
        http::request<http::empty_body> req{http::verb::get, stream_target("/v1/sse", audiences, base), 11};
        req.set(http::field::host, base.host);
        req.set(http::field::accept, "text/event-stream");
        http::write(stream, req);
        beast::flat_buffer buffer;
        http::response_parser<http::empty_body> head;
        http::read_header(stream, buffer, head);
        if (head.get().result() != http::status::ok) {
            out.detail = "server answered " + std::to_string(head.get().result_int());
            return out;
        }
        on_subscribed("http://" + base.host + ":" + base.port +
                      shown_target(stream_target("/v1/sse", audiences, base)));
        std::string pending = beast::buffers_to_string(buffer.data());
        for (;;) {
            std::size_t nl;
            while ((nl = pending.find('\n')) != std::string::npos) {
                const std::string line = pending.substr(0, nl);
                pending.erase(0, nl + 1);
                if (line.rfind("data: ", 0) == 0 && !on_frame(line.substr(6))) {
                    out.how = listen_result::stopped;
                    return out;
                }
            }
            char chunk[4096];
            beast::error_code ec;
            std::size_t n = 0;
            bool done = false;
            stream.expires_after(wait);
            stream.async_read_some(asio::buffer(chunk), [&](beast::error_code e, std::size_t k) {
                ec = e;
                n = k;
                done = true;
            });
            ioc.restart();
            ioc.run();
            if (ec == beast::error::timeout) {
                out.how = listen_result::timed_out;
                return out;
            }
            if (ec) {
                out.how = listen_result::closed;
                out.detail = ec.message();
                return out;
            }
            pending.append(chunk, n);
        }
    } catch (const std::exception& e) {
        out.detail = e.what();
    }
    return out;
}

}  // namespace herald::cli
