#include "ingest/decoder.h"

#include <gtest/gtest.h>

namespace herald::ingest {
namespace {

constexpr std::int64_t now = 1'800'000'000LL * 1'000'000'000;  // 2027-01-15

base::result<herald::v1::Announcement> json(std::string_view v, limits lim = {}) {
    return decode_announcement(v, true, lim, now);
}

errc reason(const base::result<herald::v1::Announcement>& r) {
    return static_cast<errc>(r.err().code.value());
}

TEST(Decoder, SmallestAnnouncement) {
    auto r = json(R"({"id":"a1","audience":"lineup.rock-am-ring","text":"Headliner moved to 21:00"})");
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->id(), "a1");
    EXPECT_EQ(r->audience(), "lineup.rock-am-ring");
    EXPECT_EQ(r->text(), "Headliner moved to 21:00");
    EXPECT_EQ(r->tenant(), "default");
}

TEST(Decoder, ProtobufBinaryRoundTrip) {
    herald::v1::Announcement a;
    a.set_id("p1");
    a.set_audience("news");
    a.set_binary(std::string("\x00\x01\x02", 3));
    a.set_content_type("application/octet-stream");
    auto r = decode_announcement(a.SerializeAsString(), false, {}, now);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->binary(), std::string("\x00\x01\x02", 3));
}

TEST(Decoder, JsonPayloadAndTimestamps) {
    auto r = json(R"({"id":"j","audience":"a","json":{"home":1,"away":0},"deliver_at":"2027-01-15T08:00:00Z",
                     "expires_at":"2027-01-15T09:00:00Z","priority":"PRIORITY_CRITICAL","labels":{"k":"v"}})");
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->priority(), herald::v1::PRIORITY_CRITICAL);
    EXPECT_EQ(r->json().fields().at("home").number_value(), 1);
}

TEST(Decoder, EachReasonIsReportedWithItsName) {
    struct tc {
        std::string value;
        errc expected;
    };
    const std::vector<tc> cases = {
        {R"({"id":"a","audience":"x","text":)", errc::malformed_json},
        {R"({"id":"a","audience":"x","text":"t","bogus":1})", errc::malformed_json},
        {R"({"audience":"x","text":"t"})", errc::missing_id},
        {R"({"id":"a b","audience":"x","text":"t"})", errc::invalid_id},
        {R"({"id":"a","text":"t"})", errc::missing_audience},
        {R"({"id":"a","audience":"Upper","text":"t"})", errc::invalid_audience},
        {R"({"id":"a","audience":".dot","text":"t"})", errc::invalid_audience},
        {R"({"id":"a","audience":"x"})", errc::missing_payload},
        {R"({"id":"a","audience":"x","text":"t","tenant":"UPPER"})", errc::invalid_field},
        {R"({"id":"a","audience":"x","text":"t","created_at":"2030-01-01T00:00:00Z"})", errc::bad_timestamp},
        {R"({"id":"a","audience":"x","text":"t","deliver_at":"2030-01-01T00:00:00Z"})", errc::bad_timestamp},
        {R"({"id":"a","audience":"x","text":"t","deliver_at":"2027-01-15T08:00:00Z","expires_at":"2027-01-15T07:00:00Z"})",
         errc::bad_timestamp},
    };
    for (const auto& c : cases) {
        auto r = json(c.value);
        ASSERT_FALSE(r) << c.value;
        EXPECT_EQ(reason(r), c.expected) << c.value << " -> " << r.err().describe();
        EXPECT_FALSE(r.err().detail.empty());
    }
    EXPECT_EQ(make_error_code(errc::malformed_json).message(), "malformed_json");
}

TEST(Decoder, InstantsBeyondWhatNanosecondsHoldAreRefusedNotOverflowed) {
    // Found by the fuzzer once UBSan stopped it: year 9723 is a valid
    // protobuf Timestamp, but seconds * 1e9 overflowed before any check.
    for (const char* at : {"9723-06-01T10:00:00Z", "2300-01-01T00:00:00Z", "1500-01-01T00:00:00Z"}) {
        for (const char* field : {"created_at", "deliver_at", "expires_at"}) {
            const std::string record =
                std::string(R"({"id":"a","audience":"x","text":"t",")") + field + R"(":")" + at + R"("})";
            const auto r = json(record);
            ASSERT_FALSE(r) << record;
            EXPECT_EQ(reason(r), errc::bad_timestamp) << record;
        }
    }
    EXPECT_TRUE(json(R"({"id":"a","audience":"x","text":"t","expires_at":"2250-01-01T00:00:00Z"})"));
}

TEST(Decoder, GarbageBinaryIsMalformedProtobuf) {
    auto r = decode_announcement(std::string("\xff\xff\xff\xff\x0f", 5), false, {}, now);
    ASSERT_FALSE(r);
    EXPECT_EQ(reason(r), errc::malformed_protobuf);
}

TEST(Decoder, PayloadLimitIsInclusive) {
    limits lim;
    lim.max_payload_bytes = 10;
    EXPECT_TRUE(json(R"({"id":"a","audience":"x","text":"0123456789"})", lim));
    auto r = json(R"({"id":"a","audience":"x","text":"0123456789A"})", lim);
    ASSERT_FALSE(r);
    EXPECT_EQ(reason(r), errc::payload_too_large);
    // A huge record is refused before parsing.
    r = json(std::string(200 * 1024, ' '), lim);
    ASSERT_FALSE(r);
    EXPECT_EQ(reason(r), errc::payload_too_large);
}

TEST(Decoder, PastExpiryIsValid) {
    EXPECT_TRUE(json(R"({"id":"a","audience":"x","text":"t","expires_at":"2020-01-01T00:00:00Z"})"));
}

TEST(Decoder, ContentTypeDetection) {
    EXPECT_TRUE(is_json_content_type("application/json"));
    EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
    EXPECT_FALSE(is_json_content_type("application/x-protobuf"));
    EXPECT_FALSE(is_json_content_type(""));
}

TEST(Decoder, CancelRecordNeedsOnlyItsTarget) {
    auto r = json(R"({"cancel":"doors-open","tenant":"rock.fest"})");
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cancel(), "doors-open");
    EXPECT_EQ(r->tenant(), "rock.fest");
    auto d = json(R"({"cancel":"doors-open"})");
    ASSERT_TRUE(d) << d.err().describe();
    EXPECT_EQ(d->tenant(), "default") << "a cancel without a tenant is the default tenant's";
    herald::v1::Announcement pb;
    pb.set_cancel("p1");
    pb.set_audience("news");
    auto b = decode_announcement(pb.SerializeAsString(), false, {}, now);
    ASSERT_TRUE(b) << b.err().describe();
    EXPECT_EQ(b->cancel(), "p1");
}

TEST(Decoder, BadCancelRecordsAreRefusedWithTheirReason) {
    EXPECT_EQ(reason(json(R"({"cancel":"has space"})")), errc::invalid_id);
    EXPECT_EQ(reason(json(R"({"cancel":")" + std::string(129, 'x') + R"("})")), errc::invalid_id);
    EXPECT_EQ(reason(json(R"({"cancel":"a1","tenant":"Upper"})")), errc::invalid_field);
    EXPECT_EQ(reason(json(R"({"cancel":"a1","audience":"-bad"})")), errc::invalid_audience);
    EXPECT_EQ(reason(json(R"({"cancel":"a1","text":"hello"})")), errc::invalid_field)
        << "a cancel with a payload is ambiguous";
}

}  // namespace
}  // namespace herald::ingest
