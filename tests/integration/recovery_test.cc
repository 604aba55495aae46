// Reconnecting live clients, end to end against the real daemon: an SSE
// client that lost its connection resumes with Last-Event-ID and gets every
// missed announcement in order, then the live stream; sequence numbers keep
// increasing across a heraldd restart (they derive from Kafka offsets), and
// a client resuming from before the restart is told explicitly that the gap
// cannot be filled.
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

TEST(Recovery, SequenceNumbersSurviveARestartAndAnUnfillableGapIsAnnounced) {
    external_kafka kafka;
    std::uint64_t before = 0;
    {
        daemon d(
            {"--brokers", kafka.brokers, "--group-id", "herald-live-recovery", "--offset-reset", "earliest"});
        peer ws(connect_tcp("127.0.0.1", d.client_port));
        ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=news"));
        kafka_producer producer(kafka.brokers);
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(producer.produce_json(
                "herald.announcements", "news",
                R"({"id":"b)" + std::to_string(i) + R"(","audience":"news","text":"x"})"));
        }
        for (int i = 0; i < 3; ++i) {
            auto f = ws.read_data_frame(15000);
            ASSERT_TRUE(f) << d.log();
            const auto at = f->payload.find("\"seq\":");
            before = std::stoull(f->payload.substr(at + 6));
        }
        EXPECT_EQ(d.terminate(), 0);
    }
    daemon d(
        {"--brokers", kafka.brokers, "--group-id", "herald-live-recovery", "--offset-reset", "earliest"});
    // Resuming from before the restart: this process cannot know what came
    // between, so it says so before anything else.
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=news&since=" + std::to_string(before - 1)));
    auto notice = ws.read_data_frame(10000);
    ASSERT_TRUE(notice);
    EXPECT_NE(notice->payload.find(R"("type":"gap","audience":"news")"), std::string::npos)
        << notice->payload;
    kafka_producer producer(kafka.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "news",
                                      R"({"id":"after","audience":"news","text":"x"})"));
    auto f = ws.read_data_frame(15000);
    ASSERT_TRUE(f) << d.log();
    const auto at = f->payload.find("\"seq\":");
    EXPECT_GT(std::stoull(f->payload.substr(at + 6)), before)
        << "sequence numbers went backwards after a restart";
    EXPECT_EQ(metric_value(d.metrics(), "herald_recoveries_total", "result=\"gap\""), 1);
}

}  // namespace
}  // namespace herald::testing
