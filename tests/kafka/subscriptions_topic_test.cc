// Whether forget reaches Kafka: the verdict on herald.subscriptions'
// configuration as DescribeConfigs reports it, and what heraldd creates it with.
#include "kafka/subscriptions_topic.h"

#include <gtest/gtest.h>

namespace herald::kafka {
namespace {

using namespace std::chrono_literals;

TEST(SubscriptionsTopic, CompactedWithinTheBound) {
    const auto v = judge({{"cleanup.policy", "compact"}, {"max.compaction.lag.ms", "3600000"}}, 24h);
    EXPECT_EQ(v.state, compaction::on);
    EXPECT_FALSE(v.lag_too_long);
    ASSERT_TRUE(v.max_lag_ms);
    EXPECT_EQ(*v.max_lag_ms, 3600000);
    EXPECT_NE(v.explanation.find("within 1 h"), std::string::npos) << v.explanation;
}

TEST(SubscriptionsTopic, CompactAndDeleteIsCompacted) {
    const auto v = judge({{"cleanup.policy", "delete, Compact"}, {"max.compaction.lag.ms", "86400000"}}, 24h);
    EXPECT_EQ(v.state, compaction::on);
    EXPECT_FALSE(v.lag_too_long);
}

TEST(SubscriptionsTopic, DeletePolicyIsNotCompacted) {
    const auto v = judge({{"cleanup.policy", "delete"}, {"retention.ms", "604800000"}}, 24h);
    EXPECT_EQ(v.state, compaction::off);
    EXPECT_NE(v.explanation.find("cleanup.policy=delete"), std::string::npos) << v.explanation;
    EXPECT_FALSE(v.max_lag_ms);
}

TEST(SubscriptionsTopic, KafkasDefaultLagIsTooLong) {
    // Kafka reports Long.MAX_VALUE when the topic does not bound the lag.
    auto v = judge({{"cleanup.policy", "compact"}, {"max.compaction.lag.ms", "9223372036854775807"}}, 24h);
    EXPECT_EQ(v.state, compaction::on);
    EXPECT_TRUE(v.lag_too_long);
    EXPECT_NE(v.explanation.find("exceeds subscriptions_max_compaction_lag_ms=86400000"), std::string::npos)
        << v.explanation;
    // One millisecond over the bound is over it; absent counts as unbounded.
    EXPECT_TRUE(
        judge({{"cleanup.policy", "compact"}, {"max.compaction.lag.ms", "86400001"}}, 24h).lag_too_long);
    EXPECT_FALSE(
        judge({{"cleanup.policy", "compact"}, {"max.compaction.lag.ms", "86400000"}}, 24h).lag_too_long);
    EXPECT_TRUE(judge({{"cleanup.policy", "compact"}}, 24h).lag_too_long);
    EXPECT_TRUE(judge({{"cleanup.policy", "compact"}, {"max.compaction.lag.ms", "soon"}}, 24h).lag_too_long);
}

TEST(SubscriptionsTopic, NoPolicyIsUnknown) {
    EXPECT_EQ(judge({}, 24h).state, compaction::unknown);
    EXPECT_EQ(judge({{"retention.ms", "1"}}, 24h).state, compaction::unknown);
}

TEST(SubscriptionsTopic, CreatedCompactedWithTheConfiguredLag) {
    const properties expected{{"cleanup.policy", "compact"}, {"max.compaction.lag.ms", "86400000"}};
    EXPECT_EQ(creation_config(24h), expected);
    // What heraldd creates, it judges compacted within its own bound.
    std::map<std::string, std::string> described;
    for (const auto& [k, v] : creation_config(2h)) described[k] = v;
    const auto v = judge(described, 2h);
    EXPECT_EQ(v.state, compaction::on);
    EXPECT_FALSE(v.lag_too_long);
}

TEST(SubscriptionsTopic, TheGaugeSaysUnknownUntilSomethingIsKnown) {
    metrics::registry reg;
    subscriptions_topic topic({}, reg);
    topic.embedded();
    EXPECT_EQ(topic.state(), compaction::unknown);
    const auto text = reg.render();
    EXPECT_NE(text.find("herald_subscriptions_topic_compacted -1"), std::string::npos) << text;
    EXPECT_EQ(text.find("herald_subscriptions_topic_max_compaction_lag_seconds "), std::string::npos) << text;
}

}  // namespace
}  // namespace herald::kafka
