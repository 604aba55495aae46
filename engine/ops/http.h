// The ops port's requests and answers as plain values, so routes, the
// authentication middleware and their tests need no Beast: the server
// (http_server.cc) converts to and from the wire.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::ops {

/// Who the authentication middleware found behind a request.
struct caller {
    std::string name;
    std::uint8_t level = 0;  // the ops::access a key may reach (see router.h)
    std::string tenant;      // "*": every tenant

    [[nodiscard]] bool all_tenants() const noexcept { return tenant == "*"; }
    /// Whether the caller may see or act on `of_tenant`'s data.
    [[nodiscard]] bool may_act_for(std::string_view of_tenant) const noexcept {
        return all_tenants() || tenant == of_tenant;
    }
    /// The tenant a request acts for: `asked` when given, else the caller's
    /// own (the default tenant for a key of every tenant).
    [[nodiscard]] std::string tenant_for(std::string_view asked) const {
        if (!asked.empty())
            return std::string(asked);
        return all_tenants() ? std::string("default") : tenant;
    }
};

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
