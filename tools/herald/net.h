// The herald CLI's network side, kept behind a small header so that only
// net.cc pays Boost.Beast's compile cost: a plain HTTP GET, and a live
// listener over WebSocket or Server-Sent Events.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace herald::cli {

struct url {
    std::string scheme;  // http, ws
    std::string host;
    std::string port;
    std::string target = "/";
    /// Sent as "Authorization: Bearer" (the ops API key; on live streams a
    /// token, sent as ?token= so it works like a browser's).
    std::string credential;
    /// Added as ?tenant= to live streams of public audiences ("" = none).
    std::string tenant;
};

/// Parses "http://host:port/path" and "ws://host:port/path".
std::optional<url> parse_url(const std::string& text);

struct http_result {
    int status = 0;
    std::string body;
    std::string error;  // set when the request could not be made
};

http_result http_get(const url& base, const std::string& target, std::chrono::milliseconds timeout);

/// Any method with a body (POST, DELETE, ...).
http_result http_request(const url& base, const std::string& method, const std::string& target,
                         const std::string& body, const std::string& content_type,
                         std::chrono::milliseconds timeout);

/// Connects to a live stream; calls on_frame(payload) per announcement.
/// Returns when on_frame returns false, the server closes, or `idle_timeout`
/// passes without a frame (0 = wait forever). The result says why.
struct listen_result {
    enum { stopped, closed, timed_out, failed } how = failed;
    int close_code = 0;
    std::string detail;
};
/// `on_subscribed(target)` runs once the server has accepted the subscription.
listen_result listen(const url& base, const std::vector<std::string>& audiences, bool sse,
                     std::chrono::milliseconds idle_timeout,
                     const std::function<bool(const std::string&)>& on_frame,
                     const std::function<void(const std::string&)>& on_subscribed);

}  // namespace herald::cli
