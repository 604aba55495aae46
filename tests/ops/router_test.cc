#include "ops/router.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace herald::ops {
namespace {

http_request request(std::string method, std::string path, std::string query = {}) {
    http_request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.query = std::move(query);
    r.peer = "127.0.0.1:5555";
    return r;
}

/// The "error" member of a JSON error answer ("" if the body is not one).
std::string error_of(const http_response& r) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(r.body, ec);
    if (ec || !v.is_object())
        return {};
    const auto* e = v.as_object().if_contains("error");
    if (e == nullptr || !e->is_string())
        return {};
    return std::string(e->as_string());
}

std::optional<std::string> header_of(const http_response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
        if (k == name)
            return v;
    }
    return std::nullopt;
}

/// A handler answering with a fixed text, so tests can tell which route ran.
router::handler answer(std::string text) {
    return [text = std::move(text)](const http_request&, const route_match&) {
        return http_response::text(200, text);
    };
}

TEST(Router, LiteralRoutesPickTheMatchingPath) {
    router r;
    r.add("GET", "/healthz", access::open, answer("health"));
    r.add("GET", "/v1/stats", access::read, answer("stats"));
    r.add("GET", "/v1/stats/audiences", access::read, answer("audiences"));

    EXPECT_EQ(r.handle(request("GET", "/healthz")).body, "health");
    EXPECT_EQ(r.handle(request("GET", "/v1/stats")).body, "stats");
    EXPECT_EQ(r.handle(request("GET", "/v1/stats/audiences")).body, "audiences");
    EXPECT_EQ(r.handle(request("GET", "/v1/stats/audiences")).status, 200);
    // A prefix or an extension of a literal route is not that route.
    EXPECT_EQ(r.handle(request("GET", "/v1")).status, 404);
    EXPECT_EQ(r.handle(request("GET", "/v1/stats/audiences/x")).status, 404);
    EXPECT_EQ(r.handle(request("GET", "/v1/statsx")).status, 404);
}

TEST(Router, PlaceholderIsMatchedAndPercentDecoded) {
    router r;
    std::string seen_id;
    std::string seen_missing = "unset";
    r.add("POST", "/v1/subscriptions/{id}/unsubscribe", access::publish,
          [&](const http_request&, const route_match& m) {
              seen_id = m.param("id");
              seen_missing = m.param("nope");
              return http_response::text(200, "ok");
          });

    const http_response res = r.handle(request("POST", "/v1/subscriptions/a%20b%2Fc%3A1/unsubscribe"));
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(seen_id, "a b/c:1");
    EXPECT_EQ(seen_missing, "");  // an undeclared placeholder is ""
}

TEST(Router, SeveralPlaceholdersEachGetTheirSegment) {
    router r;
    std::vector<std::pair<std::string, std::string>> params;
    r.add("GET", "/v1/tenants/{tenant}/audiences/{audience}", access::read,
          [&](const http_request&, const route_match& m) {
              params = m.params;
              EXPECT_EQ(m.param("tenant"), "acme");
              EXPECT_EQ(m.param("audience"), "lineup.rock");
              return http_response::text(200, "ok");
          });
    EXPECT_EQ(r.handle(request("GET", "/v1/tenants/acme/audiences/lineup.rock")).status, 200);
    ASSERT_EQ(params.size(), 2u);
    EXPECT_EQ(params[0], (std::pair<std::string, std::string>{"tenant", "acme"}));
    EXPECT_EQ(params[1], (std::pair<std::string, std::string>{"audience", "lineup.rock"}));
}

TEST(Router, PlaceholderNeverMatchesAnEmptySegment) {
    bool called = false;
    const auto mark = [&](const http_request&, const route_match&) {
        called = true;
        return http_response::text(200, "ok");
    };
    router r;
    r.add("GET", "/v1/subscriptions/{id}", access::read, mark);
    EXPECT_EQ(r.handle(request("GET", "/v1/subscriptions/")).status, 404);
    EXPECT_EQ(r.handle(request("GET", "/v1/subscriptions")).status, 404);
    EXPECT_EQ(r.handle(request("GET", "/v1/subscriptions//")).status, 404);

    router u;
    u.add("POST", "/v1/subscriptions/{id}/unsubscribe", access::publish, mark);
    EXPECT_EQ(u.handle(request("POST", "/v1/subscriptions//unsubscribe")).status, 404);
    EXPECT_EQ(u.handle(request("POST", "/v1/subscriptions/unsubscribe")).status, 404);
    EXPECT_FALSE(called);
}

TEST(Router, TrailingAndDuplicateSlashesAreIgnored) {
    router r;
    r.add("GET", "/v1/stats", access::read, answer("stats"));
    std::string id;
    r.add("GET", "/v1/subscriptions/{id}", access::read, [&](const http_request&, const route_match& m) {
        id = m.param("id");
        return http_response::text(200, "sub");
    });

    EXPECT_EQ(r.handle(request("GET", "/v1/stats/")).body, "stats");
    EXPECT_EQ(r.handle(request("GET", "//v1//stats")).body, "stats");
    EXPECT_EQ(r.handle(request("GET", "/v1/subscriptions/s1/")).body, "sub");
    EXPECT_EQ(id, "s1");
    id.clear();
    EXPECT_EQ(r.handle(request("GET", "/v1//subscriptions///s2")).body, "sub");
    EXPECT_EQ(id, "s2");
}

TEST(Router, UnknownPathIs404WithJsonError) {
    router r;
    r.add("GET", "/healthz", access::open, answer("health"));

    const http_response res = r.handle(request("GET", "/nope"));
    EXPECT_EQ(res.status, 404);
    EXPECT_EQ(res.content_type, "application/json");
    EXPECT_FALSE(error_of(res).empty()) << res.body;
    EXPECT_FALSE(header_of(res, "Allow").has_value());

    // No routes at all: still a JSON 404.
    const router empty;
    const http_response res2 = empty.handle(request("GET", "/"));
    EXPECT_EQ(res2.status, 404);
    EXPECT_FALSE(error_of(res2).empty()) << res2.body;
}

TEST(Router, KnownPathWithAnotherMethodIs405WithAllow) {
    router r;
    bool called = false;
    const auto mark = [&](const http_request&, const route_match&) {
        called = true;
        return http_response::text(200, "ok");
    };
    r.add("GET", "/v1/subscriptions/{id}", access::read, mark);
    r.add("DELETE", "/v1/subscriptions/{id}", access::publish, mark);
    r.add("POST", "/v1/subscriptions", access::publish, mark);

    const http_response res = r.handle(request("PUT", "/v1/subscriptions/s1"));
    EXPECT_EQ(res.status, 405);
    EXPECT_EQ(res.content_type, "application/json");
    EXPECT_FALSE(error_of(res).empty()) << res.body;
    const auto allow = header_of(res, "Allow");
    ASSERT_TRUE(allow.has_value());
    EXPECT_NE(allow->find("GET"), std::string::npos) << *allow;
    EXPECT_NE(allow->find("DELETE"), std::string::npos) << *allow;
    EXPECT_EQ(allow->find("POST"), std::string::npos) << *allow;  // another path's method
    EXPECT_FALSE(called);

    const http_response res2 = r.handle(request("GET", "/v1/subscriptions"));
    EXPECT_EQ(res2.status, 405);
    ASSERT_TRUE(header_of(res2, "Allow").has_value());
    EXPECT_EQ(*header_of(res2, "Allow"), "POST");
    EXPECT_FALSE(called);
}

TEST(Router, AllowListsEachMethodOnce) {
    router r;
    r.add("GET", "/v1/{a}", access::read, answer("a"));
    r.add("GET", "/v1/{b}", access::read, answer("b"));
    r.add("POST", "/v1/{c}", access::read, answer("c"));
    const http_response res = r.handle(request("PATCH", "/v1/x"));
    EXPECT_EQ(res.status, 405);
    ASSERT_TRUE(header_of(res, "Allow").has_value());
    EXPECT_EQ(*header_of(res, "Allow"), "GET, POST, HEAD");  // HEAD is served wherever GET is
}

TEST(Router, EarlierRouteWinsForSamePatternAndMethod) {
    router r;
    r.add("GET", "/v1/stats", access::read, answer("first"));
    r.add("GET", "/v1/stats", access::admin, answer("second"));
    EXPECT_EQ(r.handle(request("GET", "/v1/stats")).body, "first");
}

TEST(Router, HeadIsRoutedToGet) {
    router r;
    std::string seen_method;
    r.add("GET", "/metrics", access::open, [&](const http_request& req, const route_match& m) {
        seen_method = std::string(m.method);
        EXPECT_EQ(req.method, "HEAD");  // the request itself is untouched
        return http_response::text(200, "metrics");
    });
    const http_response res = r.handle(request("HEAD", "/metrics"));
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "metrics");
    EXPECT_EQ(seen_method, "GET");

    // HEAD on a path with no GET is a 405.
    router p;
    p.add("POST", "/v1/announcements", access::publish, answer("posted"));
    const http_response res2 = p.handle(request("HEAD", "/v1/announcements"));
    EXPECT_EQ(res2.status, 405);
    ASSERT_TRUE(header_of(res2, "Allow").has_value());
    EXPECT_EQ(*header_of(res2, "Allow"), "POST");
}

TEST(Router, MiddlewareRunsInOrderBeforeTheHandler) {
    router r;
    std::vector<std::string> calls;
    r.use([&](const http_request&, const route_match&) -> std::optional<http_response> {
        calls.push_back("mw1");
        return std::nullopt;
    });
    r.use([&](const http_request&, const route_match&) -> std::optional<http_response> {
        calls.push_back("mw2");
        return std::nullopt;
    });
    r.add("GET", "/v1/stats", access::read, [&](const http_request&, const route_match&) {
        calls.push_back("handler");
        return http_response::text(200, "stats");
    });

    const http_response res = r.handle(request("GET", "/v1/stats"));
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "stats");
    EXPECT_EQ(calls, (std::vector<std::string>{"mw1", "mw2", "handler"}));
}

TEST(Router, MiddlewareCanAnswerInsteadOfTheHandler) {
    router r;
    std::vector<std::string> calls;
    r.use([&](const http_request& req, const route_match& m) -> std::optional<http_response> {
        calls.push_back("auth");
        if (m.access != access::open && !req.header("authorization"))
            return http_response::error(401, "missing api key");
        return std::nullopt;
    });
    r.use([&](const http_request&, const route_match&) -> std::optional<http_response> {
        calls.push_back("later");
        return std::nullopt;
    });
    r.add("GET", "/v1/stats", access::read, [&](const http_request&, const route_match&) {
        calls.push_back("handler");
        return http_response::text(200, "stats");
    });

    const http_response denied = r.handle(request("GET", "/v1/stats"));
    EXPECT_EQ(denied.status, 401);
    EXPECT_EQ(error_of(denied), "missing api key");
    EXPECT_EQ(calls, (std::vector<std::string>{"auth"}));  // neither later middleware nor handler

    calls.clear();
    http_request ok = request("GET", "/v1/stats");
    ok.headers.emplace_back("authorization", "Bearer k");
    EXPECT_EQ(r.handle(ok).status, 200);
    EXPECT_EQ(calls, (std::vector<std::string>{"auth", "later", "handler"}));
}

TEST(Router, MiddlewareIsNotRunForUnroutedRequests) {
    router r;
    int runs = 0;
    r.use([&](const http_request&, const route_match&) -> std::optional<http_response> {
        ++runs;
        return std::nullopt;
    });
    r.add("GET", "/v1/stats", access::read, answer("stats"));
    EXPECT_EQ(r.handle(request("GET", "/nope")).status, 404);
    EXPECT_EQ(r.handle(request("POST", "/v1/stats")).status, 405);
    EXPECT_EQ(runs, 0);
}

TEST(Router, MiddlewareSeesTheRouteAccessAndPattern) {
    router r;
    struct seen {
        std::string method;
        std::string pattern;
        access who;
        std::string id;
    };
    std::vector<seen> log;
    r.use([&](const http_request&, const route_match& m) -> std::optional<http_response> {
        log.push_back({std::string(m.method), std::string(m.pattern), m.access, m.param("id")});
        return std::nullopt;
    });
    r.add("GET", "/healthz", access::open, answer("h"));
    r.add("POST", "/v1/announcements", access::publish, answer("a"));
    r.add("DELETE", "/v1/keys/{id}", access::admin, answer("k"));
    r.add("GET", "/v1/keys/{id}", access::read, answer("g"));

    EXPECT_EQ(r.handle(request("GET", "/healthz")).status, 200);
    EXPECT_EQ(r.handle(request("POST", "/v1/announcements")).status, 200);
    EXPECT_EQ(r.handle(request("DELETE", "/v1/keys/k%2D1")).status, 200);
    EXPECT_EQ(r.handle(request("GET", "/v1/keys/k2")).status, 200);

    ASSERT_EQ(log.size(), 4u);
    EXPECT_EQ(log[0].pattern, "/healthz");
    EXPECT_EQ(log[0].who, access::open);
    EXPECT_EQ(log[1].method, "POST");
    EXPECT_EQ(log[1].pattern, "/v1/announcements");
    EXPECT_EQ(log[1].who, access::publish);
    EXPECT_EQ(log[2].method, "DELETE");
    EXPECT_EQ(log[2].pattern, "/v1/keys/{id}");
    EXPECT_EQ(log[2].who, access::admin);
    EXPECT_EQ(log[2].id, "k-1");
    EXPECT_EQ(log[3].method, "GET");
    EXPECT_EQ(log[3].who, access::read);
    EXPECT_EQ(log[3].id, "k2");
}

TEST(Router, ThrowingHandlerBecomes500WithoutTheExceptionText) {
    router r;
    r.add("GET", "/boom", access::open, [](const http_request&, const route_match&) -> http_response {
        throw std::runtime_error("secret database password hunter2");
    });
    const http_response res = r.handle(request("GET", "/boom"));
    EXPECT_EQ(res.status, 500);
    EXPECT_EQ(res.content_type, "application/json");
    EXPECT_EQ(error_of(res), "internal error");
    EXPECT_EQ(res.body.find("hunter2"), std::string::npos) << res.body;
    EXPECT_EQ(res.body.find("secret"), std::string::npos) << res.body;
}

TEST(Router, ThrowingMiddlewareBecomes500) {
    router r;
    bool called = false;
    r.use([](const http_request&, const route_match&) -> std::optional<http_response> {
        throw std::logic_error("middleware detail");
    });
    r.add("GET", "/x", access::open, [&](const http_request&, const route_match&) {
        called = true;
        return http_response::text(200, "x");
    });
    const http_response res = r.handle(request("GET", "/x"));
    EXPECT_EQ(res.status, 500);
    EXPECT_EQ(error_of(res), "internal error");
    EXPECT_EQ(res.body.find("middleware detail"), std::string::npos);
    EXPECT_FALSE(called);
}

TEST(HttpRequest, QueryValueFindsTheRightParameterAndDecodes) {
    const http_request req =
        request("GET", "/v1/x", "audience=lineup%2Erock&since=42&a=x%20y%26z&flag&empty=");
    EXPECT_EQ(req.query_value("audience"), std::optional<std::string>("lineup.rock"));
    EXPECT_EQ(req.query_value("since"), std::optional<std::string>("42"));
    EXPECT_EQ(req.query_value("a"), std::optional<std::string>("x y&z"));
    EXPECT_EQ(req.query_value("flag"), std::optional<std::string>(""));
    EXPECT_EQ(req.query_value("empty"), std::optional<std::string>(""));
    EXPECT_EQ(req.query_value("missing"), std::nullopt);
    // Names are matched whole, not by prefix or suffix.
    EXPECT_EQ(req.query_value("sinc"), std::nullopt);
    EXPECT_EQ(req.query_value("ience"), std::nullopt);
    // '+' is not a space.
    EXPECT_EQ(request("GET", "/", "q=a+b").query_value("q"), std::optional<std::string>("a+b"));
    // The first of a repeated parameter.
    EXPECT_EQ(request("GET", "/", "k=1&k=2").query_value("k"), std::optional<std::string>("1"));
    EXPECT_EQ(request("GET", "/", "").query_value("k"), std::nullopt);
}

TEST(HttpRequest, HeaderLookup) {
    http_request req = request("GET", "/");
    req.headers = {{"authorization", "Bearer abc"}, {"x-request-id", "r1"}, {"empty", ""}};
    EXPECT_EQ(req.header("authorization"), std::optional<std::string_view>("Bearer abc"));
    EXPECT_EQ(req.header("x-request-id"), std::optional<std::string_view>("r1"));
    ASSERT_TRUE(req.header("empty").has_value());
    EXPECT_EQ(*req.header("empty"), "");
    EXPECT_EQ(req.header("accept"), std::nullopt);
    EXPECT_EQ(req.header("x-request"), std::nullopt);
}

TEST(HttpResponse, JsonHasTrailingNewlineAndContentType) {
    const http_response res = http_response::json(201, boost::json::object{{"id", "s1"}, {"n", 3}});
    EXPECT_EQ(res.status, 201);
    EXPECT_EQ(res.content_type, "application/json");
    ASSERT_FALSE(res.body.empty());
    EXPECT_EQ(res.body.back(), '\n');
    const boost::json::value v = boost::json::parse(res.body);
    EXPECT_EQ(v.at("id").as_string(), "s1");
    EXPECT_EQ(v.at("n").as_int64(), 3);

    const http_response err = http_response::error(409, "exists \"x\"");
    EXPECT_EQ(err.status, 409);
    EXPECT_EQ(err.content_type, "application/json");
    EXPECT_EQ(err.body.back(), '\n');
    EXPECT_EQ(error_of(err), "exists \"x\"");

    const http_response txt = http_response::text(200, "hi");
    EXPECT_EQ(txt.content_type, "text/plain; charset=utf-8");
    EXPECT_EQ(txt.body, "hi");
}

TEST(PercentDecode, DecodesValidEscapes) {
    EXPECT_EQ(percent_decode("a%20b"), "a b");
    EXPECT_EQ(percent_decode("%41%42%43"), "ABC");
    EXPECT_EQ(percent_decode("%2f%2F"), "//");
    EXPECT_EQ(percent_decode("x%41"), "xA");  // an escape at the very end
    EXPECT_EQ(percent_decode("%E2%82%AC"), "\xE2\x82\xAC");
    EXPECT_EQ(percent_decode("a+b"), "a+b");
    EXPECT_EQ(percent_decode(""), "");
}

TEST(PercentDecode, KeepsInvalidEscapes) {
    EXPECT_EQ(percent_decode("%zz"), "%zz");
    EXPECT_EQ(percent_decode("a%4"), "a%4");
    EXPECT_EQ(percent_decode("%"), "%");
    EXPECT_EQ(percent_decode("%%41"), "%A");
    EXPECT_EQ(percent_decode("%4g1"), "%4g1");
    EXPECT_EQ(percent_decode("100%"), "100%");
}

}  // namespace
}  // namespace herald::ops
