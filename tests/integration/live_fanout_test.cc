// Live fan-out through the real daemon: announcements from the herald CLI,
// from a plain librdkafka producer (JSON and protobuf binary) and from kcat
// reach every WebSocket and SSE subscriber of their audience exactly once,
// with identical bytes, and nobody else.
#include <gtest/gtest.h>

#include <set>

#include "base/clock.h"
#include "herald/v1/announcement.pb.h"
#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

std::string field(const std::string& json, const std::string& key) {
    const auto at = json.find("\"" + key + "\":");
    if (at == std::string::npos)
        return {};
    auto start = at + key.size() + 3;
    if (json[start] == '"') {
        const auto end = json.find('"', start + 1);
        return json.substr(start + 1, end - start - 1);
    }
    const auto end = json.find_first_of(",}", start);
    return json.substr(start, end - start);
}

std::string sse_data(const std::string& event) {
    const auto at = event.find("data: ");
    return event.substr(at + 6, event.find('\n', at) - at - 6);
}

struct audience_clients {
    std::vector<peer> ws;
    std::vector<peer> sse;
};

audience_clients subscribe(const daemon& d, const std::string& audience, int ws, int sse) {
    audience_clients c;
    for (int i = 0; i < ws; ++i) {
        peer p(connect_tcp("127.0.0.1", d.client_port));
        auto head = p.websocket_handshake("/v1/ws?audience=" + audience);
        EXPECT_TRUE(head && head->rfind("HTTP/1.1 101", 0) == 0);
        c.ws.push_back(std::move(p));
    }
    for (int i = 0; i < sse; ++i) {
        peer p(connect_tcp("127.0.0.1", d.client_port));
        auto head = p.sse_handshake("/v1/sse?audience=" + audience);
        EXPECT_TRUE(head && head->rfind("HTTP/1.1 200", 0) == 0);
        c.sse.push_back(std::move(p));
    }
    return c;
}

/// Reads `n` frames from every client of `c`, checks identical bytes per
/// channel and returns the announcement ids in arrival order (from the first client).
std::vector<std::string> expect_frames(audience_clients& c, std::size_t n, const std::string& audience) {
    std::vector<std::string> ids;
    std::vector<std::string> reference_ws, reference_sse;
    for (std::size_t i = 0; i < c.ws.size(); ++i) {
        for (std::size_t k = 0; k < n; ++k) {
            auto f = c.ws[i].read_data_frame(15000);
            EXPECT_TRUE(f) << "websocket client " << i << " missed frame " << k;
            if (!f)
                return ids;
            EXPECT_EQ(field(f->payload, "audience"), audience);
            if (i == 0) {
                reference_ws.push_back(c.ws[i].raw_last_);
                ids.push_back(field(f->payload, "id"));
            } else {
                EXPECT_EQ(c.ws[i].raw_last_, reference_ws[k]) << "frame bytes differ between recipients";
            }
        }
    }
    for (std::size_t i = 0; i < c.sse.size(); ++i) {
        for (std::size_t k = 0; k < n; ++k) {
            auto ev = c.sse[i].read_sse_event(15000);
            EXPECT_TRUE(ev) << "sse client " << i << " missed event " << k;
            if (!ev)
                return ids;
            if (i == 0) {
                reference_sse.push_back(*ev);
                if (!reference_ws.empty()) {
                    // Same JSON object on both channels.
                    EXPECT_NE(reference_ws[k].find(sse_data(*ev)), std::string::npos);
                }
            } else {
                EXPECT_EQ(*ev, reference_sse[k]);
            }
        }
    }
    return ids;
}

void expect_silence(audience_clients& c, int ms) {
    for (auto& p : c.ws) EXPECT_FALSE(p.read_data_frame(ms / 4)) << "unexpected extra frame";
    for (auto& p : c.sse) EXPECT_FALSE(p.read_sse_event(ms / 4)) << "unexpected extra event";
}

TEST(LiveFanout, EachSubscriberGetsEachAnnouncementOnceIdenticalAndIsolated) {
    daemon d;
    auto rock = subscribe(d, "lineup.rock-am-ring", 60, 20);
    auto jazz = subscribe(d, "lineup.jazz", 30, 10);

    // 1. The herald CLI.
    auto cli = run_command(
        d.cli_env() + bin_dir() +
        "/herald announce --audience lineup.rock-am-ring --id cli-1 --text 'Headliner moved to 21:00'");
    ASSERT_EQ(cli.exit_code, 0) << cli.output;
    // 2. A plain Kafka producer writing the canonical JSON with the content-type header.
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "lineup.jazz",
                              R"({"id":"json-1","audience":"lineup.jazz","text":"Sax solo at 20:15"})"));
    // 3. The protobuf binary, no header.
    herald::v1::Announcement a;
    a.set_id("proto-1");
    a.set_audience("lineup.rock-am-ring");
    a.set_text("Bar queue: 5 min");
    ASSERT_TRUE(producer.produce("herald.announcements", a.audience(), a.SerializeAsString()));
    // 4. kcat, a Kafka client that is not ours.
    auto kcat = run_command(
        "printf '%s' '{\"id\":\"kcat-1\",\"audience\":\"lineup.jazz\",\"text\":\"Encore\"}' | kcat -P -b " +
        d.brokers + " -t herald.announcements -k lineup.jazz -H content-type=application/json");
    ASSERT_EQ(kcat.exit_code, 0) << kcat.output;

    const auto rock_ids = expect_frames(rock, 2, "lineup.rock-am-ring");
    const auto jazz_ids = expect_frames(jazz, 2, "lineup.jazz");
    EXPECT_EQ(std::set<std::string>(rock_ids.begin(), rock_ids.end()),
              (std::set<std::string>{"cli-1", "proto-1"}));
    EXPECT_EQ(std::set<std::string>(jazz_ids.begin(), jazz_ids.end()),
              (std::set<std::string>{"json-1", "kcat-1"}));
    expect_silence(rock, 400);
    expect_silence(jazz, 400);

    const std::string m = d.metrics();
    EXPECT_EQ(metric_value(m, "herald_announcements_consumed_total", "consumer=\"live\""), 4);
    EXPECT_EQ(metric_value(m, "herald_deliveries_total", "channel=\"websocket\",outcome=\"sent\""),
              2 * 60 + 2 * 30);
    EXPECT_EQ(metric_value(m, "herald_deliveries_total", "channel=\"sse\",outcome=\"sent\""),
              2 * 20 + 2 * 10);
    EXPECT_EQ(metric_value(m, "herald_broadcast_spread_seconds_count"), 4);
    EXPECT_EQ(metric_value(m, "herald_delivery_latency_seconds_count"), 240);
    EXPECT_EQ(metric_value(m, "herald_live_connections"), 120);
}

TEST(LiveFanout, SeveralAudiencesOnOneConnectionAndSequenceNumbersIncrease) {
    daemon d;
    peer p(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(p.websocket_handshake("/v1/ws?audience=a.one&audience=b.two"));
    kafka_producer producer(d.brokers);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", "a.one",
                                  R"({"id":"a)" + std::to_string(i) + R"(","audience":"a.one","text":"x"})"));
    }
    ASSERT_TRUE(producer.produce_json("herald.announcements", "b.two",
                                      R"({"id":"b0","audience":"b.two","text":"y"})"));
    std::vector<std::uint64_t> seqs_a;
    std::set<std::string> ids;
    for (int i = 0; i < 4; ++i) {
        auto f = p.read_data_frame(15000);
        ASSERT_TRUE(f);
        ids.insert(field(f->payload, "id"));
        if (field(f->payload, "audience") == "a.one")
            seqs_a.push_back(std::stoull(field(f->payload, "seq")));
    }
    EXPECT_EQ(ids, (std::set<std::string>{"a0", "a1", "a2", "b0"}));
    ASSERT_EQ(seqs_a.size(), 3u);
    EXPECT_LT(seqs_a[0], seqs_a[1]);
    EXPECT_LT(seqs_a[1], seqs_a[2]);
}

TEST(LiveFanout, DeliverAtIsHeldAndReleasedToAllTogether) {
    daemon d;
    auto c = subscribe(d, "gate.a12", 20, 5);
    const std::int64_t release_ms = base::wall_now_ns() / 1'000'000 + 2000;
    herald::v1::Announcement a;
    a.set_id("gate-1");
    a.set_audience("gate.a12");
    a.set_text("Gate changed to B7");
    a.mutable_deliver_at()->set_seconds(release_ms / 1000);
    a.mutable_deliver_at()->set_nanos(static_cast<int>(release_ms % 1000) * 1'000'000);
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce("herald.announcements", a.audience(), a.SerializeAsString()));
    // Held: nothing arrives before the instant.
    EXPECT_FALSE(c.ws[0].read_data_frame(800));
    for (auto& p : c.ws) {
        auto f = p.read_data_frame(10000);
        ASSERT_TRUE(f);
        EXPECT_GE(base::wall_now_ns() / 1'000'000, release_ms - 5) << "released early";
    }
    for (auto& p : c.sse) ASSERT_TRUE(p.read_sse_event(10000));
}

TEST(LiveFanout, ExpiredAnnouncementIsNotDeliveredButCounted) {
    daemon d;
    auto c = subscribe(d, "ticker.football", 5, 2);
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json(
        "herald.announcements", "ticker.football",
        R"({"id":"late","audience":"ticker.football","text":"1:0","expires_at":"2020-01-01T00:00:00Z"})"));
    ASSERT_TRUE(producer.produce_json("herald.announcements", "ticker.football",
                                      R"({"id":"fresh","audience":"ticker.football","text":"2:0"})"));
    auto ids = expect_frames(c, 1, "ticker.football");
    EXPECT_EQ(ids, (std::vector<std::string>{"fresh"}));
    expect_silence(c, 400);
    EXPECT_EQ(metric_value(d.metrics(), "herald_drops_total", "reason=\"expired\""), 1);
}

}  // namespace
}  // namespace herald::testing
