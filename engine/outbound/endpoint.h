// Where an outbound gateway is: scheme, host, port and the request target of
// its URL. One endpoint (scheme://host:port) is one lane with one token
// bucket and one keep-alive pool per outbound shard. Pure, no network.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace herald::outbound {

struct endpoint {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target;  // path and query of the URL, "/" if none

    /// "https://host:443": one lane, one bucket, one pool.
    [[nodiscard]] std::string key() const { return (tls ? "https://" : "http://") + host + ":" + port; }
};

/// Splits an http:// or https:// URL; nullopt if it is not one.
[[nodiscard]] std::optional<endpoint> parse_endpoint(std::string_view url);

}  // namespace herald::outbound
