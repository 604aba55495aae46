// Bad input loses nothing: malformed JSON, malformed protobuf, oversize and
// invalid records go to herald.dlq with their reason, the reject metric
// moves, and the partition keeps flowing for the good records behind them.
#include <gtest/gtest.h>

#include <map>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

TEST(DeadLetter, BadRecordsGoToDlqWithReasonAndGoodOnesStillFlow) {
    daemon d({"--max-payload-bytes", "1024"});
    peer p(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(p.websocket_handshake("/v1/ws?audience=news"));
    kafka_producer producer(d.brokers);
    const std::string topic = "herald.announcements";
    ASSERT_TRUE(
        producer.produce_json(topic, "news", R"({"id":"j1","audience":"news","text":)"));  // truncated
    ASSERT_TRUE(producer.produce(topic, "news", std::string("\xff\xff\xff\xff\x0f", 5)));  // not protobuf
    ASSERT_TRUE(producer.produce_json(
        topic, "news", R"({"id":"big","audience":"news","text":")" + std::string(2000, 'x') + "\"}"));
    ASSERT_TRUE(
        producer.produce_json(topic, "News Desk", R"({"id":"aud","audience":"News Desk","text":"x"})"));
    ASSERT_TRUE(producer.produce_json(topic, "news", R"({"audience":"news","text":"no id"})"));
    ASSERT_TRUE(
        producer.produce_json(topic, "news", R"({"id":"ok","audience":"news","text":"still flowing"})"));

    auto f = p.read_data_frame(15000);
    ASSERT_TRUE(f) << d.log();
    EXPECT_NE(f->payload.find("\"id\":\"ok\""), std::string::npos);
    EXPECT_FALSE(p.read_data_frame(300));

    auto dead = read_topic(d.brokers, "herald.dlq", 5, 15000);
    ASSERT_EQ(dead.size(), 5u);
    std::map<std::string, int> reasons;
    for (const auto& r : dead) {
        reasons[r.headers.at("herald-dlq-reason")]++;
        EXPECT_FALSE(r.headers.at("herald-dlq-detail").empty());
        EXPECT_EQ(r.headers.at("herald-dlq-source").rfind("herald.announcements/", 0), 0u);
    }
    EXPECT_EQ(reasons["malformed_json"], 1);
    EXPECT_EQ(reasons["malformed_protobuf"], 1);
    EXPECT_EQ(reasons["payload_too_large"], 1);
    EXPECT_EQ(reasons["invalid_audience"], 1);
    EXPECT_EQ(reasons["missing_id"], 1);
    // The original value travels with the dead letter.
    bool saw_truncated = false;
    for (const auto& r : dead) saw_truncated |= r.value == R"({"id":"j1","audience":"news","text":)";
    EXPECT_TRUE(saw_truncated);

    const std::string m = d.metrics();
    EXPECT_EQ(metric_value(m, "herald_announcements_rejected_total"), 5);
    EXPECT_EQ(metric_value(m, "herald_announcements_rejected_total", "reason=\"malformed_json\""), 1);
    EXPECT_EQ(metric_value(m, "herald_dlq_records_total", "result=\"produced\""), 5);
    EXPECT_EQ(metric_value(m, "herald_announcements_consumed_total", "consumer=\"live\""), 6);
}

}  // namespace
}  // namespace herald::testing
