// Backpressure end to end: above its memory ceiling heraldd pauses its Kafka
// partitions instead of buffering — the backlog stays in Kafka, the pause is
// visible in metrics — and nothing is lost: a heraldd in the same consumer
// group without the ceiling picks up every announcement the paused one left.
#include <gtest/gtest.h>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

TEST(Backpressure, MemoryCeilingPausesKafkaAndLosesNothing) {
    external_kafka kafka;
    const std::vector<std::string> group{"--brokers",      kafka.brokers,    "--group-id",
                                         "herald-live-bp", "--offset-reset", "earliest"};
    kafka_producer producer(kafka.brokers);
    double consumed_by_first = 0;
    {
        auto args = group;
        args.insert(args.end(), {"--memory-limit-mb", "1"});  // always above: paused from the start
        daemon d(args);
        for (int i = 0; i < 20; ++i) {
            ASSERT_TRUE(producer.produce_json(
                "herald.announcements", "flood",
                R"({"id":"f)" + std::to_string(i) + R"(","audience":"flood","text":"x"})"));
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));
        const std::string m = d.metrics();
        EXPECT_EQ(metric_value(m, "herald_ingest_paused", "consumer=\"live\""), 1) << m;
        EXPECT_GE(metric_value(m, "herald_ingest_pauses_total", "consumer=\"live\""), 1);
        EXPECT_GT(metric_value(m, "herald_memory_rss_bytes"), 1024 * 1024);
        consumed_by_first = metric_value(m, "herald_announcements_consumed_total", "consumer=\"live\"");
        EXPECT_LT(consumed_by_first, 20) << "the paused instance consumed everything anyway";
        EXPECT_EQ(d.terminate(), 0) << d.log();
    }
    daemon d(group);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (consumed_by_first +
                   metric_value(d.metrics(), "herald_announcements_consumed_total", "consumer=\"live\"") <
               20 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(consumed_by_first +
                  metric_value(d.metrics(), "herald_announcements_consumed_total", "consumer=\"live\""),
              20)
        << d.log();
    EXPECT_EQ(metric_value(d.metrics(), "herald_ingest_paused", "consumer=\"live\""), 0);
}

}  // namespace
}  // namespace herald::testing
