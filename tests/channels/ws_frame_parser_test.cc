#include "channels/ws_frame_parser.h"

#include <gtest/gtest.h>

#include <vector>

namespace herald::channels {
namespace {

std::string masked(std::uint8_t first_byte, std::string_view payload, std::size_t force_len_form = 0) {
    std::string out;
    out.push_back(static_cast<char>(first_byte));
    const std::size_t n = payload.size();
    if (n < 126 && force_len_form == 0) {
        out.push_back(static_cast<char>(0x80 | n));
    } else if (n <= 0xFFFF && force_len_form != 127) {
        out.push_back(static_cast<char>(0x80 | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xFF));
    } else {
        out.push_back(static_cast<char>(0x80 | 127));
        for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
    }
    const char key[4] = {0x37, static_cast<char>(0xfa), 0x21, 0x3d};
    out.append(key, 4);
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
    return out;
}

struct seen {
    ws_event::kind_t kind;
    std::string payload;
    std::uint16_t code;
};

std::vector<seen> feed_all(ws_frame_parser& p, std::string_view bytes, bool* ok = nullptr) {
    std::vector<seen> out;
    const bool r = p.feed(bytes, [&](const ws_event& e) {
        out.push_back({e.kind, std::string(e.payload), e.close_code});
    });
    if (ok)
        *ok = r;
    return out;
}

TEST(WsParser, MaskedTextFrame) {
    ws_frame_parser p(4096);
    auto ev = feed_all(p, masked(0x81, "hello"));
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, ws_event::text);
    EXPECT_EQ(ev[0].payload, "hello");
}

TEST(WsParser, SplitAtEveryByteBoundary) {
    const std::string bytes =
        masked(0x81, "split me") + masked(0x89, "p") + masked(0x82, std::string(300, 'b'));
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
        ws_frame_parser p(4096);
        auto a = feed_all(p, std::string_view(bytes).substr(0, cut));
        auto b = feed_all(p, std::string_view(bytes).substr(cut));
        a.insert(a.end(), b.begin(), b.end());
        ASSERT_EQ(a.size(), 3u) << "cut at " << cut;
        EXPECT_EQ(a[0].payload, "split me");
        EXPECT_EQ(a[1].kind, ws_event::ping);
        EXPECT_EQ(a[2].payload, std::string(300, 'b'));
    }
}

TEST(WsParser, ByteByByte) {
    const std::string bytes = masked(0x81, std::string(70000, 'z'), 127);
    ws_frame_parser p(100000);
    std::vector<seen> all;
    for (char c : bytes) {
        auto e = feed_all(p, std::string_view(&c, 1));
        all.insert(all.end(), e.begin(), e.end());
    }
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].payload.size(), 70000u);
}

TEST(WsParser, CloseWithCodeAndReason) {
    ws_frame_parser p(4096);
    auto ev = feed_all(p, masked(0x88, std::string("\x03\xe8"
                                                   "bye",
                                                   5)));
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, ws_event::close);
    EXPECT_EQ(ev[0].code, 1000);
}

TEST(WsParser, FragmentedMessage) {
    ws_frame_parser p(4096);
    auto ev = feed_all(p, masked(0x01, "frag") + masked(0x89, "mid-ping") + masked(0x80, "mented"));
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].kind, ws_event::ping);
    EXPECT_EQ(ev[1].kind, ws_event::text);
    EXPECT_EQ(ev[1].payload, "fragmented");
}

void expect_error(std::string bytes, std::uint16_t code, std::uint32_t max = 4096) {
    ws_frame_parser p(max);
    bool ok = true;
    auto ev = feed_all(p, bytes, &ok);
    EXPECT_FALSE(ok);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back().kind, ws_event::error);
    EXPECT_EQ(ev.back().code, code);
    EXPECT_FALSE(feed_all(p, masked(0x81, "after"), &ok).size());
}

TEST(WsParser, ProtocolErrors) {
    expect_error(std::string("\x81\x02hi", 4), 1002);              // unmasked
    expect_error(masked(0xC1, "rsv"), 1002);                       // RSV1 set
    expect_error(masked(0x83, "op3"), 1002);                       // reserved data opcode
    expect_error(masked(0x8B, "opB"), 1002);                       // reserved control opcode
    expect_error(masked(0x09, "ping-not-final"), 1002);            // fragmented control
    expect_error(masked(0x89, std::string(126, 'p')), 1002);       // control too long
    expect_error(masked(0x80, "continuation"), 1002);              // continuation without start
    expect_error(masked(0x01, "a") + masked(0x81, "b"), 1002);     // new message inside fragments
    expect_error(masked(0x88, "\x03"), 1002);                      // one-byte close payload
    expect_error(masked(0x88, std::string("\x03\xed", 2)), 1002);  // close code 1005 not allowed
    std::string huge = "\x81\xff";
    huge += std::string("\x80\x00\x00\x00\x00\x00\x00\x01", 8);
    expect_error(huge + "mask", 1002);  // 64-bit length with MSB
}

TEST(WsParser, InvalidUtf8Is1007) {
    expect_error(masked(0x81, "\xc3\x28"), 1007);
    expect_error(masked(0x81, "\xed\xa0\x80"), 1007);  // surrogate
    expect_error(masked(0x01, "\xe2\x82") + masked(0x80, "\x28"), 1007);
}

TEST(WsParser, TooBigIs1009EvenBeforePayloadArrives) {
    ws_frame_parser p(1000);
    bool ok = true;
    const std::string frame = masked(0x82, std::string(2000, 'x'));
    auto ev = feed_all(p, std::string_view(frame).substr(0, 8), &ok);
    EXPECT_FALSE(ok);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].code, 1009);
}

TEST(WsParser, Utf8Validator) {
    EXPECT_TRUE(is_valid_utf8("plain ascii"));
    EXPECT_TRUE(is_valid_utf8("Grüße 🎸"));
    EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
    EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
    EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
}

}  // namespace
}  // namespace herald::channels
