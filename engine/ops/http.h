// The ops port's requests and answers as plain values, so routes, the
// authentication middleware and their tests need no Beast: the server
// (http_server.cc) converts to and from the wire.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::ops {

struct http_request {
    std::string method;
    std::string path;  // percent-encoded, as sent
    std::string query;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
    std::string peer;                                          // remote address, for logs

    /// The value of header `name` (lower case), if present.
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
    /// The decoded value of query parameter `name`, if present.
    [[nodiscard]] std::optional<std::string> query_value(std::string_view name) const;
};

struct http_response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers

    /// `value` serialized, with a trailing newline (curl-friendly).
    [[nodiscard]] static http_response json(int status, const boost::json::value& value);
    /// {"error": message}, the shape of every refusal of the ops API.
    [[nodiscard]] static http_response error(int status, std::string_view message);
    [[nodiscard]] static http_response text(int status, std::string body);
};

/// %XX decoded (invalid escapes are kept as they are); '+' is not a space.
[[nodiscard]] std::string percent_decode(std::string_view s);

}  // namespace herald::ops
