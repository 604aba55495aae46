// The one HTTP request a live connection sends before it becomes a stream:
// parsed with Boost.Beast's parser (kept in one translation unit), reduced to
// what routing needs, with query parameters percent-decoded. Also the
// RFC 6455 Sec-WebSocket-Accept computation.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace herald::channels {

struct http_request {
    std::string method;
    std::string path;  // target without the query
    std::vector<std::pair<std::string, std::string>> query;
    bool upgrade_websocket = false;  // Upgrade: websocket and Connection: upgrade
    std::string websocket_key;
    std::string websocket_version;
    std::string last_event_id;
    std::string host;           // Host
    std::string origin;         // Origin (browsers)
    std::string authorization;  // Authorization

    /// Every value of query parameter `name`, in order.
    [[nodiscard]] std::vector<std::string> query_values(std::string_view name) const;
};

/// Parses `bytes`, which hold at least the full header block (ending in
/// CRLF CRLF). A request with a body is refused: live endpoints take none.
[[nodiscard]] base::result<http_request> parse_http_request(std::string_view bytes);

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
[[nodiscard]] std::string websocket_accept_key(std::string_view client_key);

/// Splits and percent-decodes a query string ("a=1&b=x%20y"); '+' is a space.
[[nodiscard]] std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(
    std::string_view query);

}  // namespace herald::channels
