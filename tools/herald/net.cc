#include "net.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <memory>
#include <stdexcept>

namespace herald::cli {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::optional<url> parse_url(const std::string& text) {
    const auto sep = text.find("://");
    if (sep == std::string::npos)
        return std::nullopt;
    url u;
    u.scheme = text.substr(0, sep);
    // Anything else would be connected as something it is not (e.g. "htps"
    // in plaintext): refused.
    if (u.scheme != "http" && u.scheme != "https" && u.scheme != "ws" && u.scheme != "wss")
        return std::nullopt;
    std::string rest = text.substr(sep + 3);
    const auto slash = rest.find('/');
    if (slash != std::string::npos) {
        u.target = rest.substr(slash);
        rest = rest.substr(0, slash);
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos) {
        u.host = rest;
        u.port = u.secure() ? "443" : "80";
    } else {
        u.host = rest.substr(0, colon);
        u.port = rest.substr(colon + 1);
    }
    if (u.host.empty() || u.port.empty())
        return std::nullopt;
    return u;
}

namespace {

using clock = std::chrono::steady_clock;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

/// Runs `ioc` one handler at a time until `done` or `deadline`. Not run()
/// or run_for(): a stream's own timers keep the context busy, so those
/// would sit on an operation that has already completed.
void run_until(asio::io_context& ioc, const bool& done,
               clock::time_point deadline = clock::time_point::max()) {
    ioc.restart();
    while (!done && clock::now() < deadline && ioc.run_one_until(deadline) != 0) {
    }
}

/// Starts one asynchronous operation and runs the context until it
/// completes. The stream's expiry (beast::tcp_stream) bounds it: Beast's
/// synchronous calls ignore that expiry, so everything here is async.
template <class Start>
beast::error_code await(asio::io_context& ioc, Start&& start) {
    beast::error_code ec;
    bool done = false;
    start([&](beast::error_code e, auto&&...) {
        ec = e;
        done = true;
    });
    run_until(ioc, done);
    return ec;
}

[[noreturn]] void fail(const std::string& what, const beast::error_code& ec) {
    throw std::runtime_error(what + ": " + ec.message());
}

/// What a person can do about a refused certificate: which one, and why.
std::string describe_refusal(X509_STORE_CTX* store) {
    const int error = X509_STORE_CTX_get_error(store);
    const int depth = X509_STORE_CTX_get_error_depth(store);
    const std::string which =
        depth == 0 ? "the certificate" : "certificate " + std::to_string(depth) + " of its chain";
    switch (error) {
        case X509_V_ERR_CERT_HAS_EXPIRED: {
            std::string when;
            if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
                if (BIO* bio = BIO_new(BIO_s_mem())) {
                    if (ASN1_TIME_print(bio, X509_get0_notAfter(cert)) == 1) {
                        char* data = nullptr;
                        const long n = BIO_get_mem_data(bio, &data);
                        when = " (not after " + std::string(data, static_cast<std::size_t>(n)) + ")";
                    }
                    BIO_free(bio);
                }
            }
            return which + " has expired" + when;
        }
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return which + " is not valid yet";
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return which + " is issued by an unknown CA (" + X509_verify_cert_error_string(error) +
                   "; trust the CA with --ca-file FILE or HERALD_CA_FILE)";
        default:
            return which + " is refused: " + X509_verify_cert_error_string(error);
    }
}

/// The client side of TLS for one URL: the system's CAs plus --ca-file,
/// peer verification on, TLS 1.2 or newer.
ssl::context client_context(const url& u) {
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1)
        throw std::runtime_error("TLS: cannot require TLS 1.2");
    // No system store is not an error by itself: --ca-file may be all there
    // is, and without either every certificate is refused.
    beast::error_code ec;
    ctx.set_default_verify_paths(ec);
    if (!u.ca_file.empty()) {
        ctx.load_verify_file(u.ca_file, ec);
        if (ec)
            throw std::runtime_error("--ca-file " + u.ca_file + ": no CA certificate could be read (" +
                                     ec.message() + ")");
    }
    ctx.set_verify_mode(ssl::verify_peer);
    return ctx;
}

/// Connects, then handshakes with SNI and the certificate checked against
/// the host name. Throws with a message naming the host and the reason;
/// nothing falls back to plaintext. Bounded by the stream's expiry.
void open_tls(asio::io_context& ioc, tls_stream& stream, const url& u,
              const tcp::resolver::results_type& to) {
    if (auto ec = await(ioc, [&](auto done) { beast::get_lowest_layer(stream).async_connect(to, done); }))
        fail("connect to " + u.host + ":" + u.port, ec);
    beast::error_code not_address;
    (void)asio::ip::make_address(u.host, not_address);
    const bool is_address = !not_address;
    // SNI carries names only (RFC 6066), never an address literal.
    if (!is_address && SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()) != 1)
        throw std::runtime_error("TLS: cannot set the server name " + u.host);
    // Why the certificate was refused, as the verify callback saw it: the
    // handshake's own error only says "certificate verify failed".
    auto refusal = std::make_shared<std::string>();
    stream.set_verify_callback([check = ssl::host_name_verification(u.host), refusal, host = u.host,
                                is_address](bool preverified, ssl::verify_context& ctx) {
        X509_STORE_CTX* store = ctx.native_handle();
        if (!preverified) {
            if (refusal->empty())
                *refusal = describe_refusal(store);
            return false;
        }
        if (check(preverified, ctx))
            return true;
        X509_STORE_CTX_set_error(store,
                                 is_address ? X509_V_ERR_IP_ADDRESS_MISMATCH : X509_V_ERR_HOSTNAME_MISMATCH);
        if (refusal->empty())
            *refusal = "the certificate is not valid for " +
                       std::string(is_address ? "the address " : "the host ") + host;
        return false;
    });
    const auto ec = await(ioc, [&](auto done) { stream.async_handshake(ssl::stream_base::client, done); });
    if (!ec)
        return;
    const std::string where = "TLS with " + u.host + ":" + u.port + " refused: ";
    if (!refusal->empty())
        throw std::runtime_error(where + *refusal);
    if (ec.category() == asio::error::get_ssl_category()) {
        const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
        if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
            reason == SSL_R_HTTP_REQUEST || reason == SSL_R_UNSUPPORTED_PROTOCOL)
            throw std::runtime_error(where + "the server does not speak TLS 1.2+ on this port (" +
                                     ec.message() + "); a plaintext server needs http:// or ws://");
    }
    if (ec == ssl::error::stream_truncated || ec == asio::error::eof || ec == asio::error::connection_reset)
        throw std::runtime_error(where + "the server closed the connection during the handshake (" +
                                 ec.message() + ")");
    throw std::runtime_error(where + ec.message());
}

void open_plain(asio::io_context& ioc, beast::tcp_stream& stream, const url& u,
                const tcp::resolver::results_type& to) {
    if (auto ec = await(ioc, [&](auto done) { stream.async_connect(to, done); }))
        fail("connect to " + u.host + ":" + u.port, ec);
}

/// One request and its answer on an open stream (TLS or not).
template <class Stream>
void exchange(asio::io_context& ioc, Stream& stream, http::request<http::string_body>& req,
              http_result& out) {
    if (auto ec = await(ioc, [&](auto done) { http::async_write(stream, req, done); }))
        fail("write", ec);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    if (auto ec = await(ioc, [&](auto done) { http::async_read(stream, buffer, parser, done); }))
        fail("read", ec);
    out.status = static_cast<int>(parser.get().result_int());
    out.body = parser.get().body();
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace

http_result http_request(const url& base, const std::string& method, const std::string& target,
                         const std::string& body, const std::string& content_type,
                         std::chrono::milliseconds timeout) {
    http_result out;
    try {
        asio::io_context ioc;
        tcp::resolver resolver(ioc);
        const auto endpoints = resolver.resolve(base.host, base.port);
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
        if (base.secure()) {
            auto ctx = client_context(base);
            tls_stream stream(ioc, ctx);
            beast::get_lowest_layer(stream).expires_after(timeout);
            open_tls(ioc, stream, base, endpoints);
            exchange(ioc, stream, req, out);
        } else {
            beast::tcp_stream stream(ioc);
            stream.expires_after(timeout);
            open_plain(ioc, stream, base, endpoints);
            exchange(ioc, stream, req, out);
        }
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
    if (!base.since.empty())
        t += "&since=" + percent_encode(base.since);
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

/// Reads WebSocket messages until on_frame says stop, the server closes,
/// or `wait` passes without one. The handshake is done.
template <class WsStream>
listen_result read_ws(asio::io_context& ioc, WsStream& ws, clock::duration wait,
                      const std::function<bool(const std::string&)>& on_frame) {
    listen_result out;
    for (;;) {
        beast::flat_buffer buffer;
        beast::error_code ec;
        bool done = false;
        ws.async_read(buffer, [&](beast::error_code e, std::size_t) {
            ec = e;
            done = true;
        });
        // Until this read completes, not for the whole timeout: each frame
        // is printed as it arrives.
        run_until(ioc, done, clock::now() + wait);
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
            // Async so that the WebSocket's handshake timeout bounds it too.
            (void)await(ioc, [&](auto done) { ws.async_close(websocket::close_code::normal, done); });
            out.how = listen_result::stopped;
            return out;
        }
    }
}

/// Sends the SSE request, then hands each "data:" line to on_frame until it
/// says stop, the server closes, or `wait` passes without bytes.
template <class Stream>
listen_result read_sse(asio::io_context& ioc, Stream& stream, const url& base, const std::string& target,
                       clock::duration wait, const std::function<bool(const std::string&)>& on_frame,
                       const std::function<void()>& on_subscribed) {
    listen_result out;
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, base.host);
    req.set(http::field::accept, "text/event-stream");
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    if (auto ec = await(ioc, [&](auto done) { http::async_write(stream, req, done); }))
        fail("write", ec);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> head;
    if (auto ec = await(ioc, [&](auto done) { http::async_read_header(stream, buffer, head, done); }))
        fail("read", ec);
    if (head.get().result() != http::status::ok) {
        out.detail = "server answered " + std::to_string(head.get().result_int());
        return out;
    }
    on_subscribed();
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
        std::size_t n = 0;
        beast::get_lowest_layer(stream).expires_after(wait);
        const auto ec = await(ioc, [&](auto done) {
            stream.async_read_some(asio::buffer(chunk),
                                   [&n, done](beast::error_code e, std::size_t k) mutable {
                                       n = k;
                                       done(e);
                                   });
        });
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
}

}  // namespace

listen_result listen(const url& base, const std::vector<std::string>& audiences, bool sse,
                     std::chrono::milliseconds idle_timeout,
                     const std::function<bool(const std::string&)>& on_frame,
                     const std::function<void(const std::string&)>& on_subscribed) {
    listen_result out;
    const auto no_timeout = std::chrono::hours(24 * 365);
    const auto wait = idle_timeout.count() > 0 ? std::chrono::duration_cast<clock::duration>(idle_timeout)
                                               : std::chrono::duration_cast<clock::duration>(no_timeout);
    const std::string target = stream_target(sse ? "/v1/sse" : "/v1/ws", audiences, base);
    const std::string shown =
        std::string(sse ? (base.secure() ? "https" : "http") : (base.secure() ? "wss" : "ws")) + "://" +
        base.host + ":" + base.port + shown_target(target);
    try {
        asio::io_context ioc;
        tcp::resolver resolver(ioc);
        const auto endpoints = resolver.resolve(base.host, base.port);
        if (sse) {
            const auto subscribed = [&] { on_subscribed(shown); };
            if (base.secure()) {
                auto ctx = client_context(base);
                tls_stream stream(ioc, ctx);
                beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
                open_tls(ioc, stream, base, endpoints);
                return read_sse(ioc, stream, base, target, wait, on_frame, subscribed);
            }
            beast::tcp_stream stream(ioc);
            stream.expires_after(std::chrono::seconds(10));
            open_plain(ioc, stream, base, endpoints);
            return read_sse(ioc, stream, base, target, wait, on_frame, subscribed);
        }
        const auto start = [&](auto& ws) {
            // The TCP (and TLS) layer's deadline covered connecting; from
            // here the WebSocket's own timeouts apply (handshake 10 s, no
            // idle limit: --timeout is checked per read above).
            beast::get_lowest_layer(ws).expires_never();
            ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(10), no_timeout, false});
            if (auto ec = await(
                    ioc, [&](auto done) { ws.async_handshake(base.host + ":" + base.port, target, done); }))
                fail("WebSocket handshake with " + base.host + ":" + base.port, ec);
            on_subscribed(shown);
        };
        if (base.secure()) {
            auto ctx = client_context(base);
            websocket::stream<tls_stream> ws(ioc, ctx);
            beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(10));
            open_tls(ioc, ws.next_layer(), base, endpoints);
            start(ws);
            return read_ws(ioc, ws, wait, on_frame);
        }
        websocket::stream<beast::tcp_stream> ws(ioc);
        beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(10));
        open_plain(ioc, beast::get_lowest_layer(ws), base, endpoints);
        start(ws);
        return read_ws(ioc, ws, wait, on_frame);
    } catch (const std::exception& e) {
        out.detail = e.what();
    }
    return out;
}

}  // namespace herald::cli
