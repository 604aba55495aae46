// The herald CLI's network side, kept behind a small header so that only
// net.cc pays Boost.Beast's compile cost: an HTTP request, and a live
// listener over WebSocket or Server-Sent Events.
//
// https:// and wss:// mean TLS, verified: the certificate must chain to a
// system CA (or to `url::ca_file`) and name the host; TLS 1.2 or newer. A
// refusal is an error that says which host and why; there is no fallback
// to plaintext, and a scheme this file does not know is refused.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace herald::cli {

struct url {
    std::string scheme;  // http, https, ws, wss
    std::string host;
    std::string port;
    std::string target = "/";
    /// Sent as "Authorization: Bearer" (the ops API key; on live streams a
    /// token, sent as ?token= so it works like a browser's).
    std::string credential;
    /// Added as ?tenant= to live streams of public audiences ("" = none).
    std::string tenant;
    /// A PEM bundle of CAs trusted besides the system's (https/wss only; "" = none).
    std::string ca_file;
    /// Added as ?since= to live streams: the positions to resume from ("" = live edge).
    std::string since;

    /// https and wss: TLS, verified.
    [[nodiscard]] bool secure() const { return scheme == "https" || scheme == "wss"; }
};

/// Parses "SCHEME://host[:port][/path]" for SCHEME http, https, ws or wss
/// (default ports 80 and 443); anything else is nullopt.
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
