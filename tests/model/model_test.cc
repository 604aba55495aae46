#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "model/broadcast.h"
#include "model/build.h"
#include "model/fundamental.h"
#include "model/position.h"
#include "model/sequencer.h"
#include "wire/frame_codec.h"

namespace herald::model {
namespace {

using namespace std::chrono_literals;

kafka_position at(std::int32_t partition, std::int64_t offset) {
    return {kafka_partition(partition), kafka_offset(offset)};
}

// --- fundamental types ---------------------------------------------------

TEST(KafkaPosition, Known) {
    EXPECT_FALSE(kafka_position{}.known());
    EXPECT_TRUE(at(0, 0).known());
    EXPECT_TRUE(at(3, 12345).known());
    EXPECT_FALSE(at(-1, 5).known());
    EXPECT_FALSE(at(2, -1).known());
    EXPECT_EQ(at(1, 2), at(1, 2));
    EXPECT_FALSE(at(1, 2) == at(1, 3));
    EXPECT_FALSE(at(1, 2) == at(2, 2));
}

TEST(SeqAt, IsOffsetPlusOne) {
    EXPECT_EQ(seq_at(kafka_offset(0)), seq_no(1));
    EXPECT_EQ(seq_at(kafka_offset(41)), seq_no(42));
    EXPECT_EQ(seq_at(kafka_offset(std::int64_t{1} << 40)), seq_no((std::uint64_t{1} << 40) + 1));
}

TEST(SeqAt, NegativeOffsetIsOne) {
    EXPECT_EQ(seq_at(kafka_offset(-1)), seq_no(1));
    EXPECT_EQ(seq_at(kafka_offset(-1000)), seq_no(1));
}

// --- audience_sequencer --------------------------------------------------

TEST(AudienceSequencer, FirstRecordGetsOffsetPlusOne) {
    audience_sequencer s;
    EXPECT_EQ(s.next("lineup.rock", at(0, 10)), seq_no(11));
    audience_sequencer t;
    EXPECT_EQ(t.next("lineup.rock", at(4, 0)), seq_no(1));
}

TEST(AudienceSequencer, IncreasesPerAudience) {
    audience_sequencer s;
    EXPECT_EQ(s.next("a", at(0, 10)), seq_no(11));
    EXPECT_EQ(s.next("a", at(0, 11)), seq_no(12));
    EXPECT_EQ(s.next("a", at(0, 20)), seq_no(21));  // not dense
    EXPECT_EQ(s.next("a", at(0, 21)), seq_no(22));
}

TEST(AudienceSequencer, LowerOffsetFromAnotherPartitionIsRaised) {
    audience_sequencer s;
    EXPECT_EQ(s.next("a", at(0, 100)), seq_no(101));
    // An unkeyed producer put the next record of "a" on partition 1 at a lower offset.
    EXPECT_EQ(s.next("a", at(1, 3)), seq_no(102));
    EXPECT_EQ(s.next("a", at(1, 4)), seq_no(103));
    // A higher natural seq wins again over the raised one.
    EXPECT_EQ(s.next("a", at(2, 500)), seq_no(501));
    EXPECT_EQ(s.next("a", at(0, 101)), seq_no(502));
}

TEST(AudienceSequencer, ReadAgainFromSamePartitionKeepsItsSeqAndState) {
    audience_sequencer s;
    EXPECT_EQ(s.next("a", at(0, 10)), seq_no(11));
    EXPECT_EQ(s.next("a", at(0, 15)), seq_no(16));
    EXPECT_EQ(s.next("a", at(0, 20)), seq_no(21));

    // The partition is assigned again: records up to offset 20 are read again.
    EXPECT_EQ(s.next("a", at(0, 10)), seq_no(11));
    EXPECT_EQ(s.next("a", at(0, 15)), seq_no(16));
    EXPECT_EQ(s.next("a", at(0, 20)), seq_no(21));
    // Still "read again" (the state still says offset 20 was the last one)...
    EXPECT_EQ(s.next("a", at(0, 16)), seq_no(17));
    // ... and still seq 21: a lower record from another partition is raised to 22.
    EXPECT_EQ(s.next("a", at(1, 0)), seq_no(22));
}

TEST(AudienceSequencer, ReadAgainDoesNotLowerTheNextSeq) {
    audience_sequencer s;
    EXPECT_EQ(s.next("a", at(0, 20)), seq_no(21));
    EXPECT_EQ(s.next("a", at(0, 5)), seq_no(6));  // read again
    // The state is still seq 21: a low record from another partition goes above it.
    EXPECT_EQ(s.next("a", at(1, 1)), seq_no(22));
    EXPECT_EQ(s.next("a", at(1, 30)), seq_no(31));
}

TEST(AudienceSequencer, AudiencesAreIndependent) {
    audience_sequencer s;
    EXPECT_EQ(s.next("a", at(0, 100)), seq_no(101));
    EXPECT_EQ(s.next("b", at(0, 5)), seq_no(6));  // not raised above "a"
    EXPECT_EQ(s.next("b", at(1, 2)), seq_no(7));  // raised above "b"'s own 6 only
    EXPECT_EQ(s.next("a", at(0, 101)), seq_no(102));
    EXPECT_EQ(s.next("c", at(1, 0)), seq_no(1));
}

// --- build_broadcast -----------------------------------------------------

herald::v1::Announcement sample() {
    herald::v1::Announcement a;
    a.set_id("a1");
    a.set_audience("lineup.rock-am-ring");
    a.set_text("Headliner moved to 21:00");
    a.set_collapse_key("headliner");
    return a;
}

void set_wall(google::protobuf::Timestamp* t, base::wall_time w) {
    const std::int64_t ns = base::to_ns(w);
    t->set_seconds(ns / 1'000'000'000);
    t->set_nanos(static_cast<std::int32_t>(ns % 1'000'000'000));
}

TEST(BuildBroadcast, CopiesIdsAndDefaultsTenant) {
    const auto b = build_broadcast(sample(), seq_no(7), at(3, 6));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->id, "a1");
    EXPECT_EQ(b->audience, "lineup.rock-am-ring");
    EXPECT_EQ(b->collapse_key, "headliner");
    EXPECT_EQ(b->tenant, "default");
    EXPECT_EQ(b->text, "Headliner moved to 21:00");
    EXPECT_EQ(b->seq, seq_no(7));
    EXPECT_EQ(b->source, at(3, 6));
    EXPECT_FALSE(b->history_only);

    auto a = sample();
    a.set_tenant("acme");
    a.clear_collapse_key();
    const auto c = build_broadcast(a, seq_no(1), kafka_position{});
    EXPECT_EQ(c->tenant, "acme");
    EXPECT_EQ(c->collapse_key, "");
    EXPECT_FALSE(c->source.known());
}

TEST(BuildBroadcast, Priority) {
    auto a = sample();
    EXPECT_EQ(build_broadcast(a, seq_no(1), at(0, 0))->priority, 2);  // unspecified -> normal
    EXPECT_EQ(herald::v1::PRIORITY_NORMAL, 2);
    a.set_priority(herald::v1::PRIORITY_LOW);
    EXPECT_EQ(build_broadcast(a, seq_no(1), at(0, 0))->priority, herald::v1::PRIORITY_LOW);
    a.set_priority(herald::v1::PRIORITY_HIGH);
    EXPECT_EQ(build_broadcast(a, seq_no(1), at(0, 0))->priority, herald::v1::PRIORITY_HIGH);
    a.set_priority(herald::v1::PRIORITY_CRITICAL);
    EXPECT_EQ(build_broadcast(a, seq_no(1), at(0, 0))->priority, herald::v1::PRIORITY_CRITICAL);
}

TEST(BuildBroadcast, ExpiresAtFromTheAnnouncement) {
    auto a = sample();
    a.mutable_expires_at()->set_seconds(2'000'000'000);
    a.mutable_expires_at()->set_nanos(5);
    const auto b = build_broadcast(a, seq_no(1), at(0, 0));
    const base::wall_time when = base::wall_from_ns(2'000'000'000LL * 1'000'000'000LL + 5);
    EXPECT_EQ(b->expires_at, when);
    EXPECT_EQ(wall_of(a.expires_at()), when);
    EXPECT_TRUE(b->expires());
    EXPECT_FALSE(b->expired_at(when - 1ns));
    EXPECT_TRUE(b->expired_at(when));
    EXPECT_TRUE(b->expired_at(when + 1s));
    EXPECT_FALSE(b->expired_at(base::wall_now()));  // 2033 is in the future
}

TEST(BuildBroadcast, NoExpiresAtNeverExpires) {
    const auto b = build_broadcast(sample(), seq_no(1), at(0, 0));
    EXPECT_EQ(b->expires_at, base::wall_time{});
    EXPECT_FALSE(b->expires());
    EXPECT_FALSE(b->expired_at(base::wall_now()));
    EXPECT_FALSE(b->expired_at(base::wall_from_ns(std::int64_t{1} << 62)));
}

TEST(BuildBroadcast, PastExpiryIsExpiredNow) {
    auto a = sample();
    set_wall(a.mutable_expires_at(), base::wall_now() - 1s);
    const auto b = build_broadcast(a, seq_no(1), at(0, 0));
    EXPECT_TRUE(b->expires());
    EXPECT_TRUE(b->expired_at(base::wall_now()));
}

TEST(BuildBroadcast, ReleaseIsNowWithoutDeliverAt) {
    const base::mono_time before = base::mono_now();
    const auto b = build_broadcast(sample(), seq_no(1), at(0, 0));
    const base::mono_time after = base::mono_now();
    EXPECT_GE(b->release_at, before);
    EXPECT_LE(b->release_at, after);
}

TEST(BuildBroadcast, ReleaseFollowsDeliverAt) {
    auto a = sample();
    set_wall(a.mutable_deliver_at(), base::wall_now() + 10s);
    const auto b = build_broadcast(a, seq_no(1), at(0, 0));
    const auto ahead = b->release_at - base::mono_now();
    EXPECT_GT(ahead, 9s);
    EXPECT_LE(ahead, 10s + 100ms);

    // A deliver_at in the past releases at once (in the monotonic past).
    set_wall(a.mutable_deliver_at(), base::wall_now() - 10s);
    const auto c = build_broadcast(a, seq_no(1), at(0, 0));
    EXPECT_LT(c->release_at, base::mono_now() - 9s);
}

/// The payload of an unmasked server frame; fails the test on a bad header.
std::string websocket_payload(const std::string& frame, std::uint8_t& first_byte) {
    EXPECT_GE(frame.size(), 2u);
    if (frame.size() < 2)
        return {};
    first_byte = static_cast<std::uint8_t>(frame[0]);
    const auto b1 = static_cast<std::uint8_t>(frame[1]);
    EXPECT_EQ(b1 & 0x80, 0) << "server frames are not masked";
    std::uint64_t len = b1 & 0x7F;
    std::size_t header = 2;
    if (len == 126) {
        len = (std::uint64_t(std::uint8_t(frame[2])) << 8) | std::uint8_t(frame[3]);
        header = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | std::uint8_t(frame[2 + i]);
        header = 10;
    }
    EXPECT_EQ(frame.size(), header + len);
    return frame.substr(header);
}

TEST(BuildBroadcast, WebSocketFrameCarriesPayloadJson) {
    const auto b = build_broadcast(sample(), seq_no(7), at(0, 6));
    EXPECT_EQ(b->payload_json, wire::encode_live_json(sample(), 7));
    EXPECT_NE(b->payload_json.find("\"seq\":7"), std::string::npos) << b->payload_json;
    EXPECT_NE(b->payload_json.find("\"id\":\"a1\""), std::string::npos) << b->payload_json;

    std::uint8_t first = 0;
    EXPECT_EQ(websocket_payload(b->websocket_frame, first), b->payload_json);
    EXPECT_EQ(first, 0x81);  // FIN + text

    // A payload long enough for the 16-bit length form.
    auto a = sample();
    a.set_text(std::string(300, 'x'));
    const auto c = build_broadcast(a, seq_no(8), at(0, 7));
    EXPECT_EQ(websocket_payload(c->websocket_frame, first), c->payload_json);
    EXPECT_EQ(first, 0x81);
}

TEST(BuildBroadcast, SseFrameCarriesSeqAndPayloadJson) {
    const auto b = build_broadcast(sample(), seq_no(1234), at(0, 1233));
    const std::string& sse = b->sse_frame;
    ASSERT_EQ(sse.rfind("id: 1234\n", 0), 0u) << sse;
    ASSERT_GE(sse.size(), 2u);
    EXPECT_EQ(sse.substr(sse.size() - 2), "\n\n");  // an event ends with an empty line

    // Join the data: lines back together.
    std::string data;
    std::size_t pos = sse.find('\n') + 1;
    int lines = 0;
    while (pos < sse.size()) {
        const std::size_t nl = sse.find('\n', pos);
        ASSERT_NE(nl, std::string::npos);
        const std::string line = sse.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty())
            break;
        ASSERT_EQ(line.rfind("data: ", 0), 0u) << line;
        if (lines++ > 0)
            data += '\n';
        data += line.substr(6);
    }
    EXPECT_EQ(pos, sse.size());
    EXPECT_GE(lines, 1);
    EXPECT_EQ(data, b->payload_json);
}

TEST(BuildBroadcast, AnnouncementPbParsesBack) {
    auto a = sample();
    a.set_tenant("acme");
    a.set_priority(herald::v1::PRIORITY_HIGH);
    (*a.mutable_labels())["k1"] = "v1";
    (*a.mutable_labels())["k2"] = "v2";
    set_wall(a.mutable_created_at(), base::wall_now());
    const auto b = build_broadcast(a, seq_no(3), at(0, 2));

    herald::v1::Announcement back;
    ASSERT_TRUE(back.ParseFromString(b->announcement_pb));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a, back)) << a.DebugString() << "\nvs\n"
                                                                             << back.DebugString();
}

TEST(BuildBroadcast, WhatsAppLabels) {
    auto a = sample();
    const auto plain = build_broadcast(a, seq_no(1), at(0, 0));
    EXPECT_EQ(plain->whatsapp_template, "");
    EXPECT_EQ(plain->whatsapp_language, "");
    EXPECT_FALSE(plain->whatsapp_free_text);

    (*a.mutable_labels())["whatsapp.template"] = "lineup_change";
    (*a.mutable_labels())["whatsapp.language"] = "de";
    const auto templated = build_broadcast(a, seq_no(1), at(0, 0));
    EXPECT_EQ(templated->whatsapp_template, "lineup_change");
    EXPECT_EQ(templated->whatsapp_language, "de");
    EXPECT_FALSE(templated->whatsapp_free_text);

    (*a.mutable_labels())["whatsapp.type"] = "text";
    EXPECT_TRUE(build_broadcast(a, seq_no(1), at(0, 0))->whatsapp_free_text);
    (*a.mutable_labels())["whatsapp.type"] = "template";
    EXPECT_FALSE(build_broadcast(a, seq_no(1), at(0, 0))->whatsapp_free_text);
}

TEST(BuildBroadcast, LiveProgressStartsEmpty) {
    const auto b = build_broadcast(sample(), seq_no(1), at(0, 0));
    EXPECT_EQ(b->live.shards_pending.load(), 0u);
    EXPECT_EQ(b->live.recipients.load(), 0u);
    EXPECT_EQ(b->live.final_fate(), broadcast_fate::delivered);
}

}  // namespace
// Positions: AUDIENCE:EPOCH:SEQ, parsed from the right because audience
// names may contain ':'; the bare SEQ of old clients; refusals that say why.
TEST(Positions, ParseListsBareSeqsAndAudiencesWithColons) {
    auto one = parse_positions("41", 16);
    ASSERT_TRUE(one);
    ASSERT_EQ(one->size(), 1u);
    EXPECT_EQ((*one)[0], (audience_position{"", "", seq_no(41)}));
    auto two = parse_positions("lineup.main:0123456789abcdef:42,cup:final:0000000000000001:7", 16);
    ASSERT_TRUE(two);
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0], (audience_position{"lineup.main", "0123456789abcdef", seq_no(42)}));
    EXPECT_EQ((*two)[1], (audience_position{"cup:final", "0000000000000001", seq_no(7)}));
    std::string text;
    append_position(text, "cup:final", "0000000000000001", seq_no(7));
    EXPECT_EQ(text, "cup:final:0000000000000001:7");
}

TEST(Positions, RefusesWhatCannotBeMeant) {
    for (const char* bad :
         {"", "yesterday", "-1", "a:0123456789abcdef:", "a:0123456789ABCDEF:1", "a:0123:1",
          ":0123456789abcdef:1", "A:0123456789abcdef:1", "a:0123456789abcdef:1,a:0123456789abcdef:2",
          "a:0123456789abcdef:1,,b:0123456789abcdef:2", "a:0123456789abcdef:x"}) {
        auto p = parse_positions(bad, 16);
        EXPECT_FALSE(p) << bad;
        if (!p)
            EXPECT_FALSE(p.err().detail.empty()) << bad;
    }
    EXPECT_FALSE(parse_positions("a:0123456789abcdef:1,b:0123456789abcdef:2", 1));
}

// The epoch names a partition's sequence space: the same on every instance
// and every start against one cluster, different for another cluster, topic
// or partition.
TEST(Positions, EpochIsStableAndChangesWithClusterTopicAndPartition) {
    const std::string e = epoch_of("kIt6aQ", "herald.announcements", 3);
    EXPECT_EQ(e.size(), 16u);
    EXPECT_EQ(e, epoch_of("kIt6aQ", "herald.announcements", 3));
    EXPECT_NE(e, epoch_of("other", "herald.announcements", 3));
    EXPECT_NE(e, epoch_of("kIt6aQ", "herald.announcements2", 3));
    EXPECT_NE(e, epoch_of("kIt6aQ", "herald.announcements", 4));
    EXPECT_NE(epoch_of("ab", "c", 0), epoch_of("a", "bc", 0));
    EXPECT_TRUE(parse_positions("a:" + e + ":1", 1));
}

// The SSE id of a broadcast is its position, and the body after it is what a
// connection of several audiences writes after its own id line.
TEST(Positions, BroadcastCarriesEpochInJsonAndPositionAsSseId) {
    herald::v1::Announcement a;
    a.set_id("x");
    a.set_audience("news");
    a.set_text("hello");
    const auto b = build_broadcast(a, seq_no(5), kafka_position{}, "00000000000000aa");
    EXPECT_EQ(b->epoch, "00000000000000aa");
    EXPECT_NE(b->payload_json.find(R"("seq":5,"epoch":"00000000000000aa")"), std::string::npos);
    EXPECT_EQ(b->sse_frame.rfind("id: news:00000000000000aa:5\n", 0), 0u) << b->sse_frame;
    EXPECT_EQ(b->sse_body().rfind("data: {", 0), 0u);
    const auto outbound = build_broadcast(a, seq_no(5), kafka_position{});
    EXPECT_EQ(outbound->payload_json.find("epoch"), std::string::npos);
}

}  // namespace herald::model
