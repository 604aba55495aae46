#include "channels/http_request.h"

#include <gtest/gtest.h>

namespace herald::channels {
namespace {

TEST(HttpRequest, ParsesWebSocketUpgrade) {
    const std::string raw =
        "GET /v1/ws?audience=lineup.rock-am-ring&audience=news%3Asport HTTP/1.1\r\n"
        "Host: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    auto req = parse_http_request(raw);
    ASSERT_TRUE(req) << req.err().describe();
    EXPECT_EQ(req->method, "GET");
    EXPECT_EQ(req->path, "/v1/ws");
    EXPECT_TRUE(req->upgrade_websocket);
    EXPECT_EQ(req->websocket_version, "13");
    EXPECT_EQ(req->query_values("audience"), (std::vector<std::string>{"lineup.rock-am-ring", "news:sport"}));
}

TEST(HttpRequest, RfcAcceptKey) {
    // The example from RFC 6455 section 1.3.
    EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(HttpRequest, SseWithLastEventId) {
    auto req = parse_http_request("GET /v1/sse?audience=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 42\r\n\r\n");
    ASSERT_TRUE(req);
    EXPECT_FALSE(req->upgrade_websocket);
    EXPECT_EQ(req->last_event_id, "42");
}

TEST(HttpRequest, RejectsGarbageAndBodies) {
    EXPECT_FALSE(parse_http_request("HELLO\r\n\r\n"));
    EXPECT_FALSE(parse_http_request("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"));
    EXPECT_FALSE(parse_http_request("GET /v1/ws?audience=%zz HTTP/1.1\r\nHost: x\r\n\r\n"));
}

TEST(HttpRequest, QueryDecoding) {
    auto q = parse_query("a=1&b=x%20y+z&&c");
    ASSERT_TRUE(q);
    ASSERT_EQ(q->size(), 3u);
    EXPECT_EQ((*q)[1].second, "x y z");
    EXPECT_EQ((*q)[2].first, "c");
    EXPECT_FALSE(parse_query("a=%4"));
}

}  // namespace
}  // namespace herald::channels
