// Reconnecting live clients, end to end against the real daemon: an SSE
// client that lost its connection resumes with Last-Event-ID and gets every
// missed announcement in order, then the live stream; sequence numbers keep
// increasing across a heraldd restart (they derive from Kafka offsets), a
// restarted heraldd reads its recent history back from Kafka so a client
// resuming from before the restart still recovers, and a client resuming from
// further back than that history is told explicitly that the gap cannot be
// filled.
#include <gtest/gtest.h>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

std::uint64_t sse_id(const std::string& event) {
    const auto at = event.find("id: ");
    return at == std::string::npos ? 0 : std::stoull(event.substr(at + 4));
}

TEST(Recovery, SseResumesWithLastEventIdInOrderWithoutGapOrDuplicate) {
    daemon d;
    kafka_producer producer(d.brokers);
    peer sse(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(sse.sse_handshake("/v1/sse?audience=lineup.x"));
    ASSERT_TRUE(producer.produce_json("herald.announcements", "lineup.x",
                                      R"({"id":"r1","audience":"lineup.x","text":"one"})"));
    auto first = sse.read_sse_event(15000);
    ASSERT_TRUE(first) << d.log();
    const std::uint64_t seen = sse_id(*first);
    ASSERT_GT(seen, 0u);
    sse.close();

    // Three announcements while the client is away.
    for (const char* id : {"r2", "r3", "r4"}) {
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", "lineup.x",
                                  std::string(R"({"id":")") + id + R"(","audience":"lineup.x","text":"x"})"));
    }
    // Wait until heraldd has released them (nobody is listening).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (metric_value(d.metrics(), "herald_broadcasts_total") < 4 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));

    peer again(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(
        again.sse_handshake("/v1/sse?audience=lineup.x", "Last-Event-ID: " + std::to_string(seen) + "\r\n"));
    std::uint64_t last = seen;
    for (const char* id : {"r2", "r3", "r4"}) {
        auto ev = again.read_sse_event(10000);
        ASSERT_TRUE(ev) << "missed " << id;
        EXPECT_NE(ev->find(std::string("\"id\":\"") + id + "\""), std::string::npos) << *ev;
        EXPECT_GT(sse_id(*ev), last);
        last = sse_id(*ev);
    }
    ASSERT_TRUE(producer.produce_json("herald.announcements", "lineup.x",
                                      R"({"id":"r5","audience":"lineup.x","text":"live"})"));
    auto live = again.read_sse_event(10000);
    ASSERT_TRUE(live);
    EXPECT_NE(live->find("\"id\":\"r5\""), std::string::npos) << *live;
    EXPECT_FALSE(again.read_sse_event(300)) << "duplicate";
    EXPECT_EQ(metric_value(d.metrics(), "herald_recoveries_total", "result=\"complete\""), 1);
}

std::uint64_t seq_of(const std::string& payload) {
    const auto at = payload.find("\"seq\":");
    return at == std::string::npos ? 0 : std::stoull(payload.substr(at + 6));
}

TEST(Recovery, ARestartedInstanceRecoversFromKafkaAndAnnouncesAGapOnlyBeyondItsHistory) {
    external_kafka kafka;
    const std::vector<std::string> flags{
        "--brokers", kafka.brokers, "--group-id", "herald-live-recovery", "--offset-reset", "earliest"};
    std::vector<std::uint64_t> seqs;
    {
        daemon d(flags);
        peer ws(connect_tcp("127.0.0.1", d.client_port));
        ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=news"));
        kafka_producer producer(kafka.brokers);
        for (int i = 0; i < 5; ++i) {
            ASSERT_TRUE(producer.produce_json(
                "herald.announcements", "news",
                R"({"id":"b)" + std::to_string(i) + R"(","audience":"news","text":"x"})"));
        }
        for (int i = 0; i < 5; ++i) {
            auto f = ws.read_data_frame(15000);
            ASSERT_TRUE(f) << d.log();
            seqs.push_back(seq_of(f->payload));
        }
        EXPECT_EQ(d.terminate(), 0);
    }
    // The new process reads the last three announcements back from Kafka
    // into its history before it says ready.
    auto args = flags;
    args.insert(args.end(), {"--history-refill-max-records", "3"});
    daemon d(args);
    EXPECT_EQ(metric_value(d.metrics(), "herald_history_refilled_total", "consumer=\"live\""), 3) << d.log();
    EXPECT_EQ(metric_value(d.metrics(), "herald_announcements_consumed_total", "consumer=\"live\""), 0)
        << "read-back records were delivered again";

    // Saw b1 before the restart: gets b2, b3, b4 in order, no gap.
    peer near(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(near.websocket_handshake("/v1/ws?audience=news&since=" + std::to_string(seqs[1])));
    for (int i = 2; i < 5; ++i) {
        auto f = near.read_data_frame(10000);
        ASSERT_TRUE(f) << "missed b" << i << "\n" << d.log();
        EXPECT_NE(f->payload.find("\"id\":\"b" + std::to_string(i) + "\""), std::string::npos) << f->payload;
        EXPECT_EQ(seq_of(f->payload), seqs[i]) << "sequence numbers changed across the restart";
    }
    // Saw only b0: b1 is beyond the read-back, so the client is told first.
    peer far(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(far.websocket_handshake("/v1/ws?audience=news&since=" + std::to_string(seqs[0])));
    auto notice = far.read_data_frame(10000);
    ASSERT_TRUE(notice);
    EXPECT_NE(notice->payload.find(R"("type":"gap","audience":"news")"), std::string::npos)
        << notice->payload;
    EXPECT_NE(notice->payload.find("\"oldest_seq\":" + std::to_string(seqs[2])), std::string::npos)
        << notice->payload;
    for (int i = 2; i < 5; ++i) {
        auto f = far.read_data_frame(10000);
        ASSERT_TRUE(f);
        EXPECT_EQ(seq_of(f->payload), seqs[i]);
    }

    kafka_producer producer(kafka.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "news",
                                      R"({"id":"after","audience":"news","text":"x"})"));
    for (peer* p : {&near, &far}) {
        auto f = p->read_data_frame(15000);
        ASSERT_TRUE(f) << d.log();
        EXPECT_NE(f->payload.find("\"id\":\"after\""), std::string::npos) << f->payload;
        EXPECT_GT(seq_of(f->payload), seqs[4]) << "sequence numbers went backwards after a restart";
    }
    EXPECT_EQ(metric_value(d.metrics(), "herald_recoveries_total", "result=\"complete\""), 1);
    EXPECT_EQ(metric_value(d.metrics(), "herald_recoveries_total", "result=\"gap\""), 1);
}

}  // namespace
}  // namespace herald::testing
