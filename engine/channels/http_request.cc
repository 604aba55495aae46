#include "channels/http_request.h"

#include <openssl/sha.h>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace herald::channels {
namespace http = boost::beast::http;

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%') {
            if (i + 2 >= in.size())
                return std::nullopt;
            const int hi = hex_value(in[i + 1]);
            const int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0)
                return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

bool header_has_token(std::string_view value, std::string_view token) {
    // Comma-separated, case-insensitive token list ("keep-alive, Upgrade").
    std::size_t pos = 0;
    while (pos <= value.size()) {
        std::size_t end = value.find(',', pos);
        if (end == std::string_view::npos)
            end = value.size();
        std::string_view item = value.substr(pos, end - pos);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item.size() == token.size() &&
            std::equal(item.begin(), item.end(), token.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            })) {
            return true;
        }
        pos = end + 1;
    }
    return false;
}

}  // namespace

std::vector<std::string> http_request::query_values(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : query) {
        if (k == name)
            out.push_back(v);
    }
    return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t pos = 0;
    while (pos < query.size()) {
        std::size_t end = query.find('&', pos);
        if (end == std::string_view::npos)
            end = query.size();
        const std::string_view item = query.substr(pos, end - pos);
        if (!item.empty()) {
            const std::size_t eq = item.find('=');
            auto key = percent_decode(item.substr(0, eq));
            auto value =
                percent_decode(eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1));
            if (!key || !value)
                return std::nullopt;
            out.emplace_back(std::move(*key), std::move(*value));
        }
        pos = end + 1;
    }
    return out;
}

base::result<http_request> parse_http_request(std::string_view bytes) {
    const auto bad = [](std::string detail) {
        return base::failure(std::make_error_code(std::errc::bad_message), std::move(detail));
    };
    http::request_parser<http::empty_body> parser;
    parser.eager(true);
    parser.header_limit(static_cast<std::uint32_t>(bytes.size() + 1));
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == http::error::need_more) {
        return bad("incomplete request header");
    }
    if (ec && ec != http::error::unexpected_body) {
        return bad("malformed request: " + ec.message());
    }
    if (!parser.is_header_done()) {
        return bad("incomplete request header");
    }
    const auto& req = parser.get();
    if (req.has_content_length() || req.chunked()) {
        return bad("live endpoints take no request body");
    }
    http_request out;
    out.method = std::string(req.method_string());
    const std::string_view target = req.target();
    const std::size_t q = target.find('?');
    out.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) {
        auto query = parse_query(target.substr(q + 1));
        if (!query) {
            return bad("malformed query string (bad percent-encoding)");
        }
        out.query = std::move(*query);
    }
    out.upgrade_websocket = header_has_token(req[http::field::upgrade], "websocket") &&
                            header_has_token(req[http::field::connection], "upgrade");
    out.websocket_key = std::string(req[http::field::sec_websocket_key]);
    out.websocket_version = std::string(req[http::field::sec_websocket_version]);
    out.last_event_id = std::string(req["Last-Event-ID"]);
    out.host = std::string(req[http::field::host]);
    out.origin = std::string(req[http::field::origin]);
    out.authorization = std::string(req[http::field::authorization]);
    return out;
}

std::string websocket_accept_key(std::string_view client_key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input(client_key);
    input.append(guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    std::string out(boost::beast::detail::base64::encoded_size(sizeof digest), '\0');
    out.resize(boost::beast::detail::base64::encode(out.data(), digest, sizeof digest));
    return out;
}

}  // namespace herald::channels
