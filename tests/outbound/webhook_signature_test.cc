// Standard Webhooks signatures against the specification's published test
// vector, secret parsing, rotation, and the stability of delivery ids.
#include "outbound/webhook_signature.h"

#include <gtest/gtest.h>

namespace herald::outbound {
namespace {

TEST(WebhookSignature, MatchesTheStandardWebhooksReferenceVector) {
    // From the Standard Webhooks reference libraries' tests.
    auto secret = parse_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ASSERT_TRUE(secret) << secret.err().detail;
    const std::string sig =
        webhook_signature({*secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})");
    EXPECT_EQ(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, SignsWithEverySecretDuringRotation) {
    auto a = parse_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    auto b = parse_webhook_secret("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ASSERT_TRUE(a && b);
    const std::string both = webhook_signature({*a, *b}, "msg_1", 1, "{}");
    const std::string first = webhook_signature({*a}, "msg_1", 1, "{}");
    const std::string second = webhook_signature({*b}, "msg_1", 1, "{}");
    EXPECT_EQ(both, first + " " + second);
    EXPECT_NE(first, second);
}

TEST(WebhookSignature, RefusesMalformedSecrets) {
    EXPECT_FALSE(parse_webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    EXPECT_FALSE(parse_webhook_secret("whsec_"));
    EXPECT_FALSE(parse_webhook_secret("whsec_abc"));
    EXPECT_FALSE(parse_webhook_secret("whsec_QUJD"));  // 3 bytes: too short to be a key
}

TEST(WebhookSignature, ParsesSecretListsAndRefusesWhatTheSyntaxRefuses) {
    auto none = parse_webhook_secrets("");
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    auto two = parse_webhook_secrets(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw , whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ASSERT_TRUE(two) << two.err().detail;
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0].key, parse_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")->key);
    EXPECT_EQ((*two)[1].key, std::string(24, '\0'));
    // 16 bytes exactly (22 characters and "=="): the shortest key.
    auto shortest = parse_webhook_secrets("whsec_" + base64_encode(std::string(16, 'k')));
    ASSERT_TRUE(shortest) << shortest.err().detail;
    EXPECT_EQ((*shortest)[0].key, std::string(16, 'k'));
    EXPECT_FALSE(parse_webhook_secrets("whsec_" + base64_encode(std::string(15, 'k'))));
    for (const char* bad : {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,", "whsec_========================",
                            "whsec_MfKQ9r8G=YqrTwjUPD8ILPZIo2LaLaSw", "whsec_QUJD"}) {
        const auto r = parse_webhook_secrets(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.err().detail.find("MfKQ"), std::string::npos) << r.err().detail;
    }
}

TEST(WebhookSignature, DeliveryIdIsStableAndDistinct) {
    EXPECT_EQ(delivery_id("default", "a1", "r1"), delivery_id("default", "a1", "r1"));
    EXPECT_NE(delivery_id("default", "a1", "r1"), delivery_id("default", "a1", "r2"));
    EXPECT_NE(delivery_id("default", "a1", "r1"), delivery_id("other", "a1", "r1"));
    EXPECT_EQ(delivery_id("default", "a1", "r1").size(), 4u + 32u);
    EXPECT_EQ(delivery_id("default", "a1", "r1").rfind("msg_", 0), 0u);
}

}  // namespace
}  // namespace herald::outbound
