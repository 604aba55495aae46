// The ops API's routing: method + path pattern -> handler, with middleware
// that runs before every handler and may answer instead (authentication,
// which is why each route declares who may call it).
//
// Patterns are paths whose segments are literal or a {name} placeholder
// ("/v1/subscriptions/{id}/unsubscribe"); a placeholder matches one
// non-empty segment, percent-decoded. A known path with another method gets
// 405 with Allow; an unknown path 404. HEAD is routed like GET.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ops/http.h"

namespace herald::ops {

/// Who may call a route; the authentication middleware enforces it.
enum class access : std::uint8_t {
    open,     // anyone (health, metrics unless configured otherwise)
    read,     // any valid key
    publish,  // keys that may announce and manage their tenant's subscribers
    admin,    // admin keys only
};

/// What a middleware and a handler know about the matched route.
struct route_match {
    std::string_view method;
    std::string_view pattern;
    ops::access access = access::read;
    std::vector<std::pair<std::string, std::string>> params;  // placeholder -> decoded segment
    /// Set by the authentication middleware; nullopt on open routes.
    std::optional<ops::caller> who;
    /// The route was added with add_blocking (it may wait on Kafka).
    bool blocking = false;

    /// The decoded segment of placeholder `name` ("" if there is none).
    [[nodiscard]] const std::string& param(std::string_view name) const;
};

class router {
  public:
    using handler = std::function<http_response(const http_request&, const route_match&)>;
    /// Returns an answer to stop the request there, nullopt to go on; may
    /// fill in `who` for the handler.
    using middleware = std::function<std::optional<http_response>(const http_request&, route_match&)>;

    /// Adds a route. Later routes never shadow earlier ones with the same
    /// pattern and method. Safe while requests are being handled (the table
    /// is copied and swapped), so routes may come as their subsystems start.
    void add(std::string method, std::string pattern, ops::access who, handler h);
    /// Adds a middleware; they run in the order added, before the handler.
    /// Before the first request only.
    void use(middleware m);

    /// Routes one request. Exceptions from handlers become 500 (logged).
    [[nodiscard]] http_response handle(const http_request& req) const;
    /// Whether the route `req` goes to was added as blocking (it may wait
    /// on Kafka): the server runs it off its I/O thread.
    [[nodiscard]] bool blocking(const http_request& req) const;

    /// Adds a route whose handler may block for a while (Kafka writes).
    void add_blocking(std::string method, std::string pattern, ops::access who, handler h);

  private:
    struct route {
        std::string method;
        std::string pattern;
        std::vector<std::string> segments;
        ops::access who;
        handler h;
        bool blocking = false;
    };
    [[nodiscard]] static bool match(const route& r, const std::vector<std::string_view>& path,
                                    route_match& out);

    [[nodiscard]] std::shared_ptr<const std::vector<route>> routes() const;

    mutable std::mutex mutex_;
    std::shared_ptr<const std::vector<route>> routes_ = std::make_shared<const std::vector<route>>();
    std::vector<middleware> middleware_;
};

}  // namespace herald::ops
