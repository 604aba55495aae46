// Faults on purpose, with the mock cluster's own controls and with kill -9:
// the broker goes down and comes back during consumption, fetches and offset
// commits fail for a while, heraldd dies in the middle of a live broadcast —
// and no announcement is lost. Duplicates are allowed only where documented
// (at-least-once after a crash: the same id and seq again).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

std::string id_of(const std::string& payload) {
    const auto at = payload.find("\"id\":\"");
    return at == std::string::npos ? std::string()
                                   : payload.substr(at + 6, payload.find('"', at + 6) - at - 6);
}

TEST(Faults, BrokerDownAndFailingFetchesAndCommitsLoseNothing) {
    external_kafka kafka;
    daemon d({"--brokers", kafka.brokers, "--group-id", "herald-live-faults", "--offset-reset", "earliest",
              "--commit-interval-ms", "100"});
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=faults"));
    kafka_producer producer(kafka.brokers);
    std::set<std::string> want;
    const auto produce = [&](int from, int to) {
        for (int i = from; i < to; ++i) {
            const std::string id = "f" + std::to_string(i);
            ASSERT_TRUE(producer.produce_json("herald.announcements", "faults",
                                              R"({"id":")" + id + R"(","audience":"faults","text":"x"})"));
            want.insert(id);
        }
    };
    std::set<std::string> got;
    const auto read = [&](std::size_t until, int timeout_ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (got.size() < until && std::chrono::steady_clock::now() < deadline) {
            if (auto f = ws.read_data_frame(500))
                got.insert(id_of(f->payload));
        }
    };
    produce(0, 10);
    read(10, 15000);
    ASSERT_EQ(got.size(), 10u) << d.log();

    // Fetch and commit requests fail for a while (transient broker errors).
    rd_kafka_mock_push_request_errors(
        kafka.mock(), 1 /* Fetch */, 5, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    rd_kafka_mock_push_request_errors(kafka.mock(), 8 /* OffsetCommit */, 3,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
    produce(10, 20);
    read(20, 30000);
    ASSERT_EQ(got.size(), 20u) << d.log();

    // The broker goes down; announcements produced meanwhile wait in the
    // producer until it is back (after librdkafka's reconnect backoff, up to
    // 10 s); every one arrives.
    rd_kafka_mock_broker_set_down(kafka.mock(), 1);
    for (int i = 20; i < 30; ++i) {
        const std::string id = "f" + std::to_string(i);
        ASSERT_TRUE(producer.enqueue_json("herald.announcements", "faults",
                                          R"({"id":")" + id + R"(","audience":"faults","text":"x"})"));
        want.insert(id);
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    rd_kafka_mock_broker_set_up(kafka.mock(), 1);
    ASSERT_TRUE(producer.flush(60000)) << "the test's own producer never got through";
    read(30, 60000);
    EXPECT_EQ(got, want) << d.log();
    EXPECT_EQ(d.terminate(), 0) << d.log();
}

TEST(Faults, KillNineDuringALiveBroadcastRedeliversWhatWasNotCommitted) {
    external_kafka kafka;
    const std::vector<std::string> args{
        "--brokers",      kafka.brokers, "--group-id",           "herald-live-kill",
        "--offset-reset", "earliest",    "--commit-interval-ms", "60000"};
    kafka_producer producer(kafka.brokers);
    std::map<std::string, std::string> first_frames;
    {
        daemon d(args);
        peer ws(connect_tcp("127.0.0.1", d.client_port));
        ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=live"));
        for (int i = 0; i < 5; ++i) {
            ASSERT_TRUE(producer.produce_json(
                "herald.announcements", "live",
                R"({"id":"l)" + std::to_string(i) + R"(","audience":"live","text":"x"})"));
        }
        for (int i = 0; i < 5; ++i) {
            auto f = ws.read_data_frame(15000);
            ASSERT_TRUE(f) << d.log();
            first_frames[id_of(f->payload)] = f->payload;
        }
        d.kill_hard();  // no commit happened yet (60 s interval)
    }
    // Restart in the same group: at-least-once means the uncommitted
    // announcements come again — identical, same seq — so a client can
    // drop them by (audience, seq).
    // Subscribe before the restarted instance gets its partitions (the dead
    // member's session must expire first), or it would deliver to nobody.
    daemon again(args, /*wait_ready=*/false);
    peer ws(connect_tcp("127.0.0.1", again.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=live"));
    ASSERT_TRUE(again.wait_until_ready(30000)) << again.log();
    std::set<std::string> seen;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (seen.size() < 5 && std::chrono::steady_clock::now() < deadline) {
        if (auto f = ws.read_data_frame(500)) {
            const std::string id = id_of(f->payload);
            seen.insert(id);
            ASSERT_TRUE(first_frames.count(id)) << f->payload;
            EXPECT_EQ(f->payload, first_frames[id]) << "a redelivery must be the same frame, same seq";
        }
    }
    EXPECT_EQ(seen.size(), 5u) << again.log();
}

}  // namespace
}  // namespace herald::testing
