#include "ops/router.h"

#include <algorithm>
#include <boost/json/serialize.hpp>

#include "base/log.h"

namespace herald::ops {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < path.size()) {
        if (path[pos] == '/') {
            ++pos;
            continue;
        }
        const std::size_t end = std::min(path.find('/', pos), path.size());
        out.push_back(path.substr(pos, end - pos));
        pos = end;
    }
    return out;
}

bool is_placeholder(std::string_view segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

std::optional<std::string_view> http_request::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (k == name)
            return std::string_view(v);
    }
    return std::nullopt;
}

std::optional<std::string> http_request::query_value(std::string_view name) const {
    std::string_view q = query;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto pair = q.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
        q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    }
    return std::nullopt;
}

http_response http_response::json(int status, const boost::json::value& value) {
    return {status, "application/json", boost::json::serialize(value) + "\n", {}};
}

http_response http_response::error(int status, std::string_view message) {
    return json(status, boost::json::object{{"error", message}});
}

http_response http_response::text(int status, std::string body) {
    return {status, "text/plain; charset=utf-8", std::move(body), {}};
}

std::string percent_decode(std::string_view s) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            const int hi = hex(s[i + 1]);
            const int lo = hex(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

const std::string& route_match::param(std::string_view name) const {
    static const std::string none;
    for (const auto& [k, v] : params) {
        if (k == name)
            return v;
    }
    return none;
}

void router::add(std::string method, std::string pattern, ops::access who, handler h) {
    route r{std::move(method), std::move(pattern), {}, who, std::move(h)};
    for (const auto segment : split_path(r.pattern)) r.segments.emplace_back(segment);
    std::lock_guard lock(mutex_);
    auto table = std::make_shared<std::vector<route>>(*routes_);
    table->push_back(std::move(r));
    routes_ = std::move(table);
}

void router::add_blocking(std::string method, std::string pattern, ops::access who, handler h) {
    route r{std::move(method), std::move(pattern), {}, who, std::move(h)};
    r.blocking = true;
    for (const auto segment : split_path(r.pattern)) r.segments.emplace_back(segment);
    std::lock_guard lock(mutex_);
    auto table = std::make_shared<std::vector<route>>(*routes_);
    table->push_back(std::move(r));
    routes_ = std::move(table);
}

std::shared_ptr<const std::vector<router::route>> router::routes() const {
    std::lock_guard lock(mutex_);
    return routes_;
}

bool router::blocking(const http_request& req) const {
    const std::vector<std::string_view> path = split_path(req.path);
    route_match m;
    for (const route& r : *routes()) {
        if (r.method == req.method && match(r, path, m))
            return r.blocking;
    }
    return false;
}

void router::use(middleware m) {
    middleware_.push_back(std::move(m));
}

bool router::match(const route& r, const std::vector<std::string_view>& path, route_match& out) {
    if (r.segments.size() != path.size())
        return false;
    out.params.clear();
    for (std::size_t i = 0; i < path.size(); ++i) {
        const std::string& want = r.segments[i];
        if (is_placeholder(want)) {
            if (path[i].empty())
                return false;
            out.params.emplace_back(want.substr(1, want.size() - 2), percent_decode(path[i]));
        } else if (want != path[i]) {
            return false;
        }
    }
    return true;
}

http_response router::handle(const http_request& req) const {
    const std::vector<std::string_view> path = split_path(req.path);
    const std::string_view method =
        req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
    std::vector<std::string> allowed;  // methods the path has
    route_match m;
    const auto table = routes();
    for (const route& r : *table) {
        if (!match(r, path, m))
            continue;
        if (r.method != method) {
            if (std::find(allowed.begin(), allowed.end(), r.method) == allowed.end())
                allowed.push_back(r.method);
            continue;
        }
        m.method = r.method;
        m.pattern = r.pattern;
        m.access = r.who;
        m.blocking = r.blocking;
        try {
            for (const auto& mw : middleware_) {
                if (auto answer = mw(req, m))
                    return std::move(*answer);
            }
            return r.h(req, m);
        } catch (const std::exception& e) {
            HERALD_LOG_ERROR("ops", "handler for ", req.method, " ", r.pattern, " threw: ", e.what());
            return http_response::error(500, "internal error");
        }
    }
    if (!allowed.empty()) {
        if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end())
            allowed.emplace_back("HEAD");
        std::string list;
        for (const auto& m : allowed) list += (list.empty() ? "" : ", ") + m;
        http_response out = http_response::error(405, "method not allowed; use " + list);
        out.headers.emplace_back("Allow", list);
        return out;
    }
    return http_response::error(404, "not found");
}

}  // namespace herald::ops
