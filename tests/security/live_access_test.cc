#include "security/live_access.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_keys.h"

namespace herald::security {
namespace {

using namespace testing;  // herald::security::testing: keys and tokens

std::string token(std::string_view extra, std::int64_t exp_offset = 3600) {
    std::string payload = "{\"sub\":\"bob\",\"exp\":" + std::to_string(now_s + exp_offset);
    if (!extra.empty())
        payload += "," + std::string(extra);
    return mint(JWT_ALG_HS256, hs_secret, payload + "}");
}

std::unique_ptr<jwt_verifier> verifier() {
    jwt_options o;
    o.hs256_secret = hs_secret;
    auto v = jwt_verifier::create(std::move(o));
    EXPECT_TRUE(v);
    return v ? std::move(v.value()) : nullptr;
}

live_access open_access(std::vector<std::string> allowed_origins = {}) {
    live_access_options o;
    o.allowed_origins = std::move(allowed_origins);
    return live_access(std::move(o));
}

live_access token_access(std::vector<std::string> public_audiences = {},
                         std::vector<std::string> allowed_origins = {}) {
    live_access_options o;
    o.verifier = verifier();
    o.public_audiences = std::move(public_audiences);
    o.allowed_origins = std::move(allowed_origins);
    return live_access(std::move(o));
}

struct request {
    std::string token{};
    std::string origin{};
    std::string host = "127.0.0.1:8080";
    std::string tenant_param{};
    std::vector<std::string> audiences{};

    [[nodiscard]] handshake_request view() const {
        return handshake_request{token, origin, host, tenant_param, audiences};
    }
};

admission admit(const live_access& access, const request& r) {
    return access.admit(r.view(), test_now());
}

// ---- without a verifier ---------------------------------------------------

TEST(LiveAccessOpen, EveryAudienceIsPublic) {
    const auto access = open_access();
    EXPECT_FALSE(access.tokens_required());
    const auto a = admit(access, {.audiences = {"lineup.main", "vip"}});
    EXPECT_EQ(a.status, 200) << a.reason;
    EXPECT_EQ(a.tenant, "default");
    EXPECT_EQ(a.expires, base::wall_time{});
    EXPECT_TRUE(a.refusal.empty());
}

TEST(LiveAccessOpen, TenantComesFromTheParameter) {
    const auto access = open_access();
    const auto a = admit(access, {.tenant_param = "fest", .audiences = {"x"}});
    EXPECT_EQ(a.status, 200) << a.reason;
    EXPECT_EQ(a.tenant, "fest");
}

TEST(LiveAccessOpen, AnInvalidTenantParameterIs400) {
    const auto access = open_access();
    for (const char* bad : {"Fest", "a b", "*", "../x"}) {
        const auto a = admit(access, {.tenant_param = bad, .audiences = {"x"}});
        EXPECT_EQ(a.status, 400) << bad;
        EXPECT_EQ(a.refusal, "tenant");
        EXPECT_FALSE(a.reason.empty());
    }
    EXPECT_EQ(admit(access, {.tenant_param = std::string(65, 'a')}).status, 400);
    EXPECT_EQ(admit(access, {.tenant_param = std::string(64, 'a')}).status, 200);
}

TEST(LiveAccessOpen, ATokenIsIgnored) {
    const auto access = open_access();
    // Neither garbage nor a valid token changes anything without a verifier.
    const auto garbage = admit(access, {.token = "not-a-token", .audiences = {"x"}});
    EXPECT_EQ(garbage.status, 200) << garbage.reason;
    const auto valid = admit(access, {.token = token("\"tenant\":\"other\""), .tenant_param = "fest"});
    EXPECT_EQ(valid.status, 200) << valid.reason;
    EXPECT_EQ(valid.tenant, "fest");
    EXPECT_EQ(valid.expires, base::wall_time{});
}

// ---- with a verifier ------------------------------------------------------

TEST(LiveAccessTokens, AudienceGrantedByExactName) {
    const auto access = token_access();
    EXPECT_TRUE(access.tokens_required());
    const auto a = admit(access, {.token = token("\"audiences\":[\"news\",\"vip\"]"), .audiences = {"vip"}});
    EXPECT_EQ(a.status, 200) << a.reason;
    EXPECT_EQ(a.tenant, "default");
    EXPECT_EQ(a.expires, at(now_s + 3600));
}

TEST(LiveAccessTokens, AudienceGrantedByPrefix) {
    const auto access = token_access();
    const std::string t = token("\"audiences\":[\"lineup.*\"]");
    const auto a = admit(access, {.token = t, .audiences = {"lineup.main", "lineup.stage2"}});
    EXPECT_EQ(a.status, 200) << a.reason;
    const auto b = admit(access, {.token = t, .audiences = {"lineupx"}});
    EXPECT_EQ(b.status, 403);
    EXPECT_EQ(b.refusal, "audience");
}

TEST(LiveAccessTokens, AudienceNotGrantedIs403) {
    const auto access = token_access();
    // Every requested audience must be granted, not just one of them.
    const auto a = admit(access, {.token = token("\"audiences\":[\"news\"]"), .audiences = {"news", "vip"}});
    EXPECT_EQ(a.status, 403);
    EXPECT_EQ(a.refusal, "audience");
    EXPECT_NE(a.reason.find("vip"), std::string::npos) << a.reason;
    const auto none = admit(access, {.token = token(""), .audiences = {"news"}});
    EXPECT_EQ(none.status, 403);
    EXPECT_EQ(none.refusal, "audience");
}

TEST(LiveAccessTokens, NoTokenForANonPublicAudienceIs401) {
    const auto access = token_access({"public.*"});
    const auto a = admit(access, {.audiences = {"vip"}});
    EXPECT_EQ(a.status, 401);
    EXPECT_EQ(a.refusal, "missing_token");
    // A mix of public and private audiences still needs the token.
    const auto mixed = admit(access, {.audiences = {"public.news", "vip"}});
    EXPECT_EQ(mixed.status, 401);
}

TEST(LiveAccessTokens, PublicAudienceNeedsNoToken) {
    const auto access = token_access({"public.*", "weather"});
    const auto a = admit(access, {.audiences = {"public.news", "weather"}});
    EXPECT_EQ(a.status, 200) << a.reason;
    EXPECT_EQ(a.tenant, "default");
    EXPECT_EQ(a.expires, base::wall_time{});
    // A public-only connection may name its tenant.
    const auto t = admit(access, {.tenant_param = "fest", .audiences = {"weather"}});
    EXPECT_EQ(t.status, 200) << t.reason;
    EXPECT_EQ(t.tenant, "fest");
    EXPECT_EQ(admit(access, {.tenant_param = "NOT valid", .audiences = {"weather"}}).status, 400);
    // "weather" is exact, not a prefix.
    EXPECT_EQ(admit(access, {.audiences = {"weathers"}}).status, 401);
}

TEST(LiveAccessTokens, ExpiredTokenIs401Expired) {
    const auto access = token_access({"public.*"});
    const std::string expired = token("\"audiences\":[\"vip\"]", -3600);
    const auto a = admit(access, {.token = expired, .audiences = {"vip"}});
    EXPECT_EQ(a.status, 401);
    EXPECT_EQ(a.refusal, "expired");
    EXPECT_NE(a.reason.find("expired"), std::string::npos) << a.reason;
    // Presented for a public audience it is still refused, not silently dropped.
    EXPECT_EQ(admit(access, {.token = expired, .audiences = {"public.x"}}).status, 401);
    // The same grant, not expired: admitted.
    EXPECT_EQ(admit(access, {.token = token("\"audiences\":[\"vip\"]"), .audiences = {"vip"}}).status, 200);
}

TEST(LiveAccessTokens, InvalidTokenIs401) {
    const auto access = token_access({"public.*"});
    const auto bad_sig = admit(access, {.token = mint(JWT_ALG_HS256, std::string(32, 'z'),
                                                      "{\"exp\":" + std::to_string(now_s + 60) + "}"),
                                        .audiences = {"public.x"}});
    EXPECT_EQ(bad_sig.status, 401);
    EXPECT_FALSE(bad_sig.refusal.empty());
    EXPECT_NE(bad_sig.reason.find("bad_signature"), std::string::npos) << bad_sig.reason;
    const auto garbage = admit(access, {.token = "garbage", .audiences = {"public.x"}});
    EXPECT_EQ(garbage.status, 401);
    EXPECT_NE(garbage.reason.find("malformed"), std::string::npos) << garbage.reason;
}

TEST(LiveAccessTokens, TokenTenantIsUsed) {
    const auto access = token_access();
    const std::string t = token("\"tenant\":\"fest\",\"audiences\":[\"*\"]");
    const auto a = admit(access, {.token = t, .audiences = {"anything"}});
    EXPECT_EQ(a.status, 200) << a.reason;
    EXPECT_EQ(a.tenant, "fest");
    // The same tenant named again is fine.
    const auto same = admit(access, {.token = t, .tenant_param = "fest", .audiences = {"anything"}});
    EXPECT_EQ(same.status, 200) << same.reason;
    EXPECT_EQ(same.tenant, "fest");
}

TEST(LiveAccessTokens, TenantParameterDifferingFromTheTokenIs403) {
    const auto access = token_access({"public.*"});
    const std::string t = token("\"tenant\":\"fest\",\"audiences\":[\"*\"]");
    const auto a = admit(access, {.token = t, .tenant_param = "other", .audiences = {"vip"}});
    EXPECT_EQ(a.status, 403);
    EXPECT_EQ(a.refusal, "tenant");
    // Also for a public audience: a token's tenant cannot be swapped.
    const auto pub = admit(access, {.token = t, .tenant_param = "other", .audiences = {"public.x"}});
    EXPECT_EQ(pub.status, 403);
    // A token without a tenant claim is tenant "default".
    const auto dflt = admit(access, {.token = token("\"audiences\":[\"*\"]"), .tenant_param = "other"});
    EXPECT_EQ(dflt.status, 403);
    EXPECT_EQ(admit(access, {.token = token("\"audiences\":[\"*\"]"), .tenant_param = "default"}).status,
              200);
}

// ---- origins --------------------------------------------------------------

TEST(LiveAccessOrigin, NoOriginIsAllowed) {
    const auto access = open_access();
    EXPECT_TRUE(access.origin_allowed("", "127.0.0.1:8080"));
    EXPECT_EQ(admit(access, {.origin = "", .host = "herald.example"}).status, 200);
}

TEST(LiveAccessOrigin, SameHostIsAllowedByDefault) {
    const auto access = open_access();
    EXPECT_TRUE(access.origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080"));
    // Ports and schemes are not compared: same host.
    EXPECT_TRUE(access.origin_allowed("http://127.0.0.1:3000", "127.0.0.1:8080"));
    EXPECT_TRUE(access.origin_allowed("https://127.0.0.1", "127.0.0.1:8080"));
    EXPECT_TRUE(access.origin_allowed("https://fest.example", "fest.example"));
    EXPECT_TRUE(access.origin_allowed("https://fest.example:8443/", "fest.example:8080"));
    EXPECT_EQ(admit(access, {.origin = "http://127.0.0.1:8080"}).status, 200);
}

TEST(LiveAccessOrigin, AnotherHostIsRefusedByDefault) {
    const auto access = open_access();
    EXPECT_FALSE(access.origin_allowed("http://evil.example", "127.0.0.1:8080"));
    EXPECT_FALSE(access.origin_allowed("http://127.0.0.2:8080", "127.0.0.1:8080"));
    EXPECT_FALSE(access.origin_allowed("http://fest.example.evil.com", "fest.example"));
    EXPECT_FALSE(access.origin_allowed("http://evil.fest.example", "fest.example"));
    EXPECT_FALSE(access.origin_allowed("http://127.0.0.1", "127.0.0.10:8080"));
    EXPECT_FALSE(access.origin_allowed("http://example", "fest.example"));
    EXPECT_FALSE(access.origin_allowed("http://fest", "fest.example"));
    EXPECT_FALSE(access.origin_allowed("null", "127.0.0.1:8080"));
    EXPECT_FALSE(access.origin_allowed("127.0.0.1:8080", "127.0.0.1:8080"));  // no scheme
    EXPECT_FALSE(access.origin_allowed("http://127.0.0.1:8080", ""));         // no Host
    const auto a = admit(access, {.origin = "http://evil.example"});
    EXPECT_EQ(a.status, 403);
    EXPECT_EQ(a.refusal, "origin");
    // The origin check comes first, before any token.
    const auto t = token_access();
    const auto b = admit(
        t, {.token = token("\"audiences\":[\"*\"]"), .origin = "http://evil.example", .audiences = {"x"}});
    EXPECT_EQ(b.status, 403);
    EXPECT_EQ(b.refusal, "origin");
}

TEST(LiveAccessOrigin, Ipv6Host) {
    const auto access = open_access();
    EXPECT_TRUE(access.origin_allowed("http://[::1]:8080", "[::1]:8080"));
    EXPECT_TRUE(access.origin_allowed("http://[::1]", "[::1]:8080"));
    EXPECT_FALSE(access.origin_allowed("http://[::2]:8080", "[::1]:8080"));
    EXPECT_FALSE(access.origin_allowed("http://127.0.0.1:8080", "[::1]:8080"));
    // "[" is not a host name to match against "".
    EXPECT_FALSE(access.origin_allowed("http://[::1", "[::1"));
}

TEST(LiveAccessOrigin, AllowedOriginsListIsExact) {
    const auto access = open_access({"https://fest.example", "http://localhost:3000"});
    EXPECT_TRUE(access.origin_allowed("https://fest.example", "herald.example:8080"));
    EXPECT_TRUE(access.origin_allowed("http://localhost:3000", "herald.example:8080"));
    EXPECT_FALSE(access.origin_allowed("http://fest.example", "herald.example:8080"));  // scheme
    EXPECT_FALSE(access.origin_allowed("https://fest.example:8443", "herald.example:8080"));
    EXPECT_FALSE(access.origin_allowed("http://localhost:3001", "herald.example:8080"));
    // With a list, same-host is no longer implied.
    EXPECT_FALSE(access.origin_allowed("http://herald.example:8080", "herald.example:8080"));
    EXPECT_TRUE(access.origin_allowed("", "herald.example:8080"));
    EXPECT_EQ(admit(access, {.origin = "https://fest.example", .host = "herald.example"}).status, 200);
    EXPECT_EQ(admit(access, {.origin = "https://evil.example", .host = "herald.example"}).status, 403);
}

TEST(LiveAccessOrigin, StarAllowsAnyOrigin) {
    const auto access = open_access({"*"});
    EXPECT_TRUE(access.origin_allowed("https://anything.example", "herald.example"));
    EXPECT_TRUE(access.origin_allowed("null", "herald.example"));
    EXPECT_EQ(admit(access, {.origin = "https://evil.example", .host = "herald.example"}).status, 200);
}

TEST(OriginHost, TakesTheHostOfAnOrigin) {
    EXPECT_EQ(origin_host("https://fest.example:8443"), "fest.example");
    EXPECT_EQ(origin_host("https://fest.example"), "fest.example");
    EXPECT_EQ(origin_host("http://fest.example/path?q"), "fest.example");
    EXPECT_EQ(origin_host("http://[::1]:8080"), "::1");
    EXPECT_EQ(origin_host("http://[2001:db8::1]"), "2001:db8::1");
    EXPECT_EQ(origin_host("null"), "");
    EXPECT_EQ(origin_host(""), "");
    EXPECT_EQ(origin_host("fest.example:8443"), "");
    EXPECT_EQ(origin_host("http://"), "");
    EXPECT_EQ(origin_host("http://[::1"), "");
}

TEST(HostName, TakesTheHostOfAHostHeader) {
    EXPECT_EQ(host_name("fest.example:8080"), "fest.example");
    EXPECT_EQ(host_name("fest.example"), "fest.example");
    EXPECT_EQ(host_name("127.0.0.1:8080"), "127.0.0.1");
    EXPECT_EQ(host_name("[::1]:8080"), "::1");
    EXPECT_EQ(host_name("[::1]"), "::1");
    EXPECT_EQ(host_name("[::1"), "");
    EXPECT_EQ(host_name(""), "");
    EXPECT_EQ(host_name(":8080"), "");
}

}  // namespace
}  // namespace herald::security
