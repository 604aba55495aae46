// Start-up and shutdown as an operator sees them: a bad config stops start-up
// with a message naming the field; SIGTERM closes clients with 1001, commits
// the offsets of everything delivered and exits 0 — verified against a Kafka
// cluster that outlives the daemon.
#include <gtest/gtest.h>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

TEST(Lifecycle, BadConfigStopsStartupNamingTheField) {
    auto r = run_command(bin_dir() + "/heraldd --client-port 70000");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("client_port"), std::string::npos) << r.output;
    r = run_command("HERALD_SLOW_CONSUMER_POLICY=explode " + bin_dir() + "/heraldd");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("slow_consumer_policy"), std::string::npos) << r.output;
    r = run_command(bin_dir() + "/heraldd --no-such-flag 1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos) << r.output;
}

std::int64_t committed_total(const std::string& brokers, const std::string& group) {
    std::string err;
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    conf->set("bootstrap.servers", brokers, err);
    conf->set("group.id", group, err);
    conf->set("log_level", "3", err);
    std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
    std::vector<RdKafka::TopicPartition*> parts{RdKafka::TopicPartition::create("herald.announcements", 0),
                                                RdKafka::TopicPartition::create("herald.announcements", 1)};
    std::int64_t total = 0;
    if (c->committed(parts, 10000) == RdKafka::ERR_NO_ERROR) {
        for (auto* p : parts) total += p->offset() > 0 ? p->offset() : 0;
    }
    RdKafka::TopicPartition::destroy(parts);
    c->close();
    return total;
}

TEST(Lifecycle, SigtermClosesClientsWith1001CommitsAndExitsZero) {
    external_kafka kafka;
    daemon d({"--brokers", kafka.brokers, "--group-id", "herald-live-test", "--offset-reset", "earliest"});
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=camp"));
    peer sse(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(sse.sse_handshake("/v1/sse?audience=camp"));
    kafka_producer producer(kafka.brokers);
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", "camp",
                                  R"({"id":"c)" + std::to_string(i) + R"(","audience":"camp","text":"x"})"));
    }
    // Two bad records: dead-lettered by the outbound consumer, their offsets
    // committed once Kafka has the dead letters.
    ASSERT_TRUE(producer.produce_json("herald.announcements", "camp", R"({"id":"bad1","audience":)"));
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "camp", R"({"audience":"camp","text":"no id"})"));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(ws.read_data_frame(15000)) << d.log();
    ASSERT_EQ(read_topic(kafka.brokers, "herald.dlq", 2, 15000).size(), 2u) << d.log();

    EXPECT_EQ(d.terminate(), 0) << d.log();
    auto close = ws.read_frame(5000);
    ASSERT_TRUE(close);
    EXPECT_EQ(close->opcode, 0x8);
    EXPECT_EQ(close->close_code(), 1001);
    EXPECT_TRUE(sse.wait_eof(5000));
    // Everything delivered, skipped or dead-lettered was committed before exit.
    EXPECT_EQ(committed_total(kafka.brokers, "herald-live-test"), 7);
    EXPECT_EQ(committed_total(kafka.brokers, "herald-outbound"), 7);

    // A restart in the same group resumes after them (reading from the
    // beginning would consume all five again), and picks up what is new.
    daemon again(
        {"--brokers", kafka.brokers, "--group-id", "herald-live-test", "--offset-reset", "earliest"});
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "camp", R"({"id":"c5","audience":"camp","text":"x"})"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (metric_value(again.metrics(), "herald_announcements_consumed_total", "consumer=\"live\"") < 1 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(metric_value(again.metrics(), "herald_announcements_consumed_total", "consumer=\"live\""), 1)
        << "committed announcements were consumed again";
}

TEST(Lifecycle, SigtermWithKafkaGoneStillClosesClientsAndExits) {
    // librdkafka waits without bound for a coordinator that is gone; the drain
    // must not, or a supervisor's stop hangs until it escalates to SIGKILL.
    auto kafka = std::make_unique<external_kafka>();
    daemon d({"--brokers", kafka->brokers, "--shutdown-deadline-ms", "500"});
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=camp"));
    kafka.reset();
    // Generous bound: the daemon gives Kafka at least 2 s, then exits.
    EXPECT_EQ(d.terminate(30000), 0) << d.log();
    auto close = ws.read_frame(5000);
    ASSERT_TRUE(close);
    EXPECT_EQ(close->close_code(), 1001);
}

}  // namespace
}  // namespace herald::testing
