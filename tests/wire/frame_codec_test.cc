#include "wire/frame_codec.h"

#include <gtest/gtest.h>

namespace herald::wire {
namespace {

TEST(FrameCodec, LiveJsonHasFixedKeyOrder) {
    herald::v1::Announcement a;
    a.set_id("a1");
    a.set_audience("lineup.rock-am-ring");
    a.set_text("Headliner moved to 21:00");
    a.mutable_created_at()->set_seconds(1'800'000'000);
    EXPECT_EQ(
        encode_live_json(a, 42),
        R"({"id":"a1","audience":"lineup.rock-am-ring","seq":42,"tenant":"default","priority":"normal",)"
        R"("created_at":"2027-01-15T08:00:00.000Z","text":"Headliner moved to 21:00"})");
}

TEST(FrameCodec, BinaryIsBase64WithContentType) {
    herald::v1::Announcement a;
    a.set_id("b");
    a.set_audience("x");
    a.set_binary("hello");
    const auto json = encode_live_json(a, 1);
    EXPECT_NE(json.find(R"("binary":"aGVsbG8=","content_type":"application/octet-stream")"),
              std::string::npos)
        << json;
}

TEST(FrameCodec, LabelsSortedSoBytesAreStable) {
    herald::v1::Announcement a;
    a.set_id("l");
    a.set_audience("x");
    a.set_text("t");
    (*a.mutable_labels())["zeta"] = "1";
    (*a.mutable_labels())["alpha"] = "2";
    EXPECT_NE(encode_live_json(a, 1).find(R"("labels":{"alpha":"2","zeta":"1"})"), std::string::npos);
}

TEST(FrameCodec, JsonEscaping) {
    std::string out;
    append_json_string(out, "q\"b\\n\nt\tc\x01 ü");
    EXPECT_EQ(out, "\"q\\\"b\\\\n\\nt\\tc\\u0001 ü\"");
}

TEST(FrameCodec, WebSocketLengthForms) {
    for (std::size_t n : {0u, 125u, 126u, 65535u, 65536u}) {
        const std::string payload(n, 'x');
        const auto f = websocket_frame(ws_opcode::text, payload);
        EXPECT_EQ(static_cast<std::uint8_t>(f[0]), 0x81);
        if (n < 126) {
            EXPECT_EQ(static_cast<std::uint8_t>(f[1]), n);
            EXPECT_EQ(f.size(), n + 2);
        } else if (n <= 65535) {
            EXPECT_EQ(static_cast<std::uint8_t>(f[1]), 126);
            EXPECT_EQ((std::uint8_t(f[2]) << 8) | std::uint8_t(f[3]), n);
            EXPECT_EQ(f.size(), n + 4);
        } else {
            EXPECT_EQ(static_cast<std::uint8_t>(f[1]), 127);
            EXPECT_EQ(f.size(), n + 10);
            EXPECT_EQ(std::uint8_t(f[7]), 0x01);  // 65536 = 0x0000000000010000
        }
    }
}

TEST(FrameCodec, CloseFrame) {
    const auto f = websocket_close_frame(1008, "slow consumer");
    EXPECT_EQ(static_cast<std::uint8_t>(f[0]), 0x88);
    EXPECT_EQ(static_cast<std::uint8_t>(f[1]), 2 + 13);
    EXPECT_EQ((std::uint8_t(f[2]) << 8) | std::uint8_t(f[3]), 1008);
    EXPECT_LE(websocket_close_frame(1000, std::string(300, 'r')).size(), 2u + 125u);
}

TEST(FrameCodec, SseEvent) {
    EXPECT_EQ(sse_event("7", R"({"a":1})"), "id: 7\ndata: {\"a\":1}\n\n");
    EXPECT_EQ(sse_event("8", "x\ny"), "id: 8\ndata: x\ndata: y\n\n");
}

}  // namespace
}  // namespace herald::wire
