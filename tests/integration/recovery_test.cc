// Reconnecting live clients, end to end against the real daemon: a client of
// several audiences resumes each from its own position (WebSocket since=,
// SSE Last-Event-ID) and gets every missed announcement in order, then the
// live stream; a restarted embedded cluster is a new epoch and a gap;
// sequence numbers keep
// increasing across a heraldd restart (they derive from Kafka offsets), a
// restarted heraldd reads its recent history back from Kafka so a client
// resuming from before the restart still recovers, and a client resuming from
// further back than that history is told explicitly that the gap cannot be
// filled.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

std::string field(const std::string& json, const std::string& name) {
    const auto at = json.find("\"" + name + "\":");
    if (at == std::string::npos)
        return {};
    const auto from = at + name.size() + 3;
    if (json[from] == '"')
        return json.substr(from + 1, json.find('"', from + 1) - from - 1);
    return json.substr(from, json.find_first_of(",}", from) - from);
}

std::string position_of(const std::string& json) {
    return field(json, "audience") + ":" + field(json, "epoch") + ":" + field(json, "seq");
}

std::string event_id(const std::string& event) {
    const auto at = event.find("id: ");
    return at == std::string::npos ? std::string() : event.substr(at + 4, event.find('\n', at) - at - 4);
}

void wait_for_broadcasts(daemon& d, double n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (metric_value(d.metrics(), "herald_broadcasts_total") < n &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// A client of two audiences that live in different partitions (separate
// sequence spaces) loses its connection; announcements go to both; it comes
// back with its positions — over WebSocket with since=, over SSE with the
// Last-Event-ID a browser sends — and gets exactly the missed ones of each,
// in order, then the live stream.
TEST(Recovery, TwoAudiencesInDifferentPartitionsResumeExactlyOverWebSocketAndSse) {
    daemon d;
    kafka_producer producer(d.brokers);
    // Which audiences share a partition is Kafka's choice: find two that do not.
    std::vector<std::string> candidates;
    std::string query;
    for (int i = 0; i < 8; ++i) {
        candidates.push_back("area" + std::to_string(i));
        query += (i == 0 ? "audience=" : "&audience=") + candidates.back();
    }
    peer probe(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(probe.websocket_handshake("/v1/ws?" + query));
    for (const auto& a : candidates)
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", a,
                                  R"({"id":"probe-)" + a + R"(","audience":")" + a + R"(","text":"p"})"));
    std::map<std::string, std::string> epoch_of;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        auto f = probe.read_data_frame(15000);
        ASSERT_TRUE(f) << d.log();
        epoch_of[field(f->payload, "audience")] = field(f->payload, "epoch");
    }
    const std::string a = candidates[0];
    std::string b;
    for (const auto& c : candidates)
        if (epoch_of[c] != epoch_of[a])
            b = c;
    ASSERT_FALSE(b.empty()) << "every candidate audience landed in one partition";
    ASSERT_EQ(epoch_of[a].size(), 16u);

    const std::string both = "audience=" + a + "&audience=" + b;
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?" + both));
    peer sse(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(sse.sse_handshake("/v1/sse?" + both));
    const auto announce = [&](const std::string& audience, const std::string& id) {
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", audience,
                                  R"({"id":")" + id + R"(","audience":")" + audience + R"(","text":"x"})"));
    };
    announce(a, "a1");
    announce(b, "b1");
    std::map<std::string, std::string> ws_positions;
    std::string last_event_id;
    for (int i = 0; i < 2; ++i) {
        auto f = ws.read_data_frame(15000);
        ASSERT_TRUE(f) << d.log();
        ws_positions[field(f->payload, "audience")] = position_of(f->payload);
        auto ev = sse.read_sse_event(15000);
        ASSERT_TRUE(ev);
        last_event_id = event_id(*ev);
    }
    ws.close();
    sse.close();
    // While away: two for a, one for b.
    announce(a, "a2");
    announce(b, "b2");
    announce(a, "a3");
    wait_for_broadcasts(d, static_cast<double>(candidates.size() + 5));

    peer ws2(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(
        ws2.websocket_handshake("/v1/ws?" + both + "&since=" + ws_positions[a] + "," + ws_positions[b]));
    peer sse2(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(sse2.sse_handshake("/v1/sse?" + both, "Last-Event-ID: " + last_event_id + "\r\n"));
    std::map<std::string, std::vector<std::string>> ws_got, sse_got;
    for (int i = 0; i < 3; ++i) {
        auto f = ws2.read_data_frame(10000);
        ASSERT_TRUE(f) << "missed a frame\n" << d.log();
        ASSERT_EQ(field(f->payload, "type"), "") << f->payload;
        ws_got[field(f->payload, "audience")].push_back(field(f->payload, "id"));
        auto ev = sse2.read_sse_event(10000);
        ASSERT_TRUE(ev) << "missed an event";
        ASSERT_EQ(ev->find("event: gap"), std::string::npos) << *ev;
        sse_got[field(*ev, "audience")].push_back(field(*ev, "id"));
    }
    for (const auto* got : {&ws_got, &sse_got}) {
        EXPECT_EQ(got->at(a), (std::vector<std::string>{"a2", "a3"}));
        EXPECT_EQ(got->at(b), (std::vector<std::string>{"b2"}));
    }
    announce(b, "b3");
    auto live = ws2.read_data_frame(10000);
    ASSERT_TRUE(live);
    EXPECT_EQ(field(live->payload, "id"), "b3");
    auto live_event = sse2.read_sse_event(10000);
    ASSERT_TRUE(live_event);
    EXPECT_EQ(field(*live_event, "id"), "b3");
    EXPECT_FALSE(ws2.read_data_frame(300)) << "duplicate";
    EXPECT_FALSE(sse2.read_sse_event(300)) << "duplicate";
    EXPECT_EQ(metric_value(d.metrics(), "herald_recoveries_total", "result=\"complete\""), 4);
    EXPECT_EQ(metric_value(d.metrics(), "herald_recovered_frames_total"), 6);
}

// The embedded Kafka starts empty at every heraldd start, so sequence
// numbers start again: a client resuming from before the restart is told
// `gap` (both epochs named), never silently handed the new numbers' tail.
TEST(Recovery, ARestartOfTheEmbeddedClusterChangesTheEpochAndGivesAGap) {
    std::string before;
    {
        daemon d;
        kafka_producer producer(d.brokers);
        peer ws(connect_tcp("127.0.0.1", d.client_port));
        ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=news"));
        for (int i = 0; i < 3; ++i)
            ASSERT_TRUE(producer.produce_json(
                "herald.announcements", "news",
                R"({"id":"old)" + std::to_string(i) + R"(","audience":"news","text":"x"})"));
        for (int i = 0; i < 3; ++i) {
            auto f = ws.read_data_frame(15000);
            ASSERT_TRUE(f) << d.log();
            before = position_of(f->payload);
        }
        EXPECT_EQ(d.terminate(), 0);
    }
    daemon d;
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "news",
                                      R"({"id":"new0","audience":"news","text":"x"})"));
    wait_for_broadcasts(d, 1);
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=news&since=" + before));
    auto notice = ws.read_data_frame(10000);
    ASSERT_TRUE(notice) << d.log();
    EXPECT_EQ(field(notice->payload, "type"), "gap") << notice->payload;
    const std::string old_epoch = before.substr(5, 16);
    EXPECT_EQ(field(notice->payload, "since_epoch"), old_epoch);
    EXPECT_NE(field(notice->payload, "epoch"), old_epoch) << "the restarted embedded cluster kept its epoch";
    auto replayed = ws.read_data_frame(10000);
    ASSERT_TRUE(replayed);
    EXPECT_EQ(field(replayed->payload, "id"), "new0");
    EXPECT_EQ(metric_value(d.metrics(), "herald_recoveries_total", "result=\"gap\""), 1);
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
    std::string epoch;
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
            epoch = field(f->payload, "epoch");
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
        EXPECT_EQ(field(f->payload, "epoch"), epoch)
            << "the epoch changed across a restart on the same cluster";
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
