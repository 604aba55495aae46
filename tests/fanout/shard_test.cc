// The fan-out core end to end inside one process: real shards with their
// threads and io_contexts, real sessions doing the real WebSocket/SSE
// handshake over socketpairs, broadcasts built by the dispatcher.
#include "fanout/shard.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "fanout/dispatcher.h"
#include "metrics/registry.h"
#include "model/build.h"
#include "support/peer.h"

// Allocation counting for the "no per-recipient allocation" test. GCC sees
// through the replacement and warns about malloc/delete pairs; they match.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<bool> g_count_allocations{false};
static std::atomic<std::uint64_t> g_allocations{0};

void* operator new(std::size_t size) {
    if (g_count_allocations.load(std::memory_order_relaxed)) {
        g_allocations.fetch_add(1, std::memory_order_relaxed);
    }
    if (void* p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

#include "fanout/shard_fixture.h"

namespace herald::fanout {
namespace {

TEST_F(ShardTest, EveryMemberGetsIdenticalBytesAndOthersNothing) {
    std::vector<peer> rock, jazz;
    for (int i = 0; i < 20; ++i) rock.push_back(subscribe_ws(i % 2, "audience=lineup.rock"));
    for (int i = 0; i < 6; ++i) jazz.push_back(subscribe_ws(i % 2, "audience=lineup.jazz"));
    peer both = subscribe_ws(1, "audience=lineup.jazz&audience=lineup.rock");
    settle();

    auto b = announce("a1", "lineup.rock", "Headliner moved to 21:00", 41);
    ASSERT_TRUE(wait_done(1));
    EXPECT_EQ(b->seq, model::seq_no(42));
    EXPECT_EQ(b->live.recipients.load(), 21u);
    for (auto& p : rock) {
        auto f = p.read_data_frame();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->opcode, 0x1);
        EXPECT_EQ(p.raw_last_, b->websocket_frame);  // byte for byte the shared frame
        EXPECT_NE(f->payload.find("\"text\":\"Headliner moved to 21:00\""), std::string::npos) << f->payload;
    }
    auto f = both.read_data_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(both.raw_last_, b->websocket_frame);
    for (auto& p : jazz) {
        EXPECT_FALSE(p.read_data_frame(150)) << "a jazz listener got a rock announcement";
    }
}

// A one-audience SSE connection takes the shared event whole: its id is the
// audience's position, which Last-Event-ID brings back at a reconnect.
TEST_F(ShardTest, SseGetsEventWithPositionAsId) {
    peer sse = subscribe_sse(0, "audience=news.ticker");
    settle();
    auto b = announce("t1", "news.ticker", "1:0 in minute 67", 6);
    ASSERT_TRUE(wait_done(1));
    auto ev = sse.read_sse_event();
    ASSERT_TRUE(ev);
    EXPECT_EQ(*ev, b->sse_frame);
    EXPECT_EQ(ev->rfind("id: news.ticker:" + epoch_ + ":7\n", 0), 0u) << *ev;
    EXPECT_NE(ev->find("\"seq\":7,\"epoch\":\"" + epoch_ + "\""), std::string::npos) << *ev;
}

TEST_F(ShardTest, DeliverAtHoldsThenReleasesTogether) {
    std::vector<peer> peers;
    for (int i = 0; i < 8; ++i) peers.push_back(subscribe_ws(i % 2, "audience=gate.a12"));
    settle();
    const std::int64_t release_wall = base::wall_now_ns() + 400'000'000;
    announce("g1", "gate.a12", "Gate changed to B7", 0, [&](herald::v1::Announcement& a) {
        a.mutable_deliver_at()->set_seconds(release_wall / 1'000'000'000);
        a.mutable_deliver_at()->set_nanos(static_cast<int>(release_wall % 1'000'000'000));
    });
    // Held: nothing arrives well before the instant.
    EXPECT_FALSE(peers[0].read_data_frame(150));
    for (auto& p : peers) {
        ASSERT_TRUE(p.read_data_frame(3000));
        EXPECT_GE(base::wall_now_ns(), release_wall - 5'000'000);  // not early (5 ms clock slack)
    }
    ASSERT_TRUE(wait_done(1));
}

TEST_F(ShardTest, ExpiredIsNotDeliveredAndCounted) {
    peer p = subscribe_ws(0, "audience=ticker");
    settle();
    announce("old", "ticker", "stale", 0, [](herald::v1::Announcement& a) {
        a.mutable_expires_at()->set_seconds(base::wall_now_ns() / 1'000'000'000 - 10);
    });
    ASSERT_TRUE(wait_done(1));
    EXPECT_EQ(done_[0]->live.final_fate(), model::broadcast_fate::expired);
    EXPECT_FALSE(p.read_data_frame(150));
    EXPECT_NE(registry_.render().find("herald_drops_total{reason=\"expired\"} 1"), std::string::npos);
}

TEST_F(ShardTest, NewerCollapseKeySupersedesPendingOlder) {
    peer p = subscribe_ws(0, "audience=score");
    settle();
    const std::int64_t at = base::wall_now_ns() + 300'000'000;
    auto held = [&](herald::v1::Announcement& a) {
        a.set_collapse_key("match-1");
        a.mutable_deliver_at()->set_seconds(at / 1'000'000'000);
        a.mutable_deliver_at()->set_nanos(static_cast<int>(at % 1'000'000'000));
    };
    announce("s1", "score", "1:0", 0, held);
    announce("s2", "score", "2:0", 1, held);
    auto f = p.read_data_frame(3000);
    ASSERT_TRUE(f);
    EXPECT_NE(f->payload.find("2:0"), std::string::npos);
    EXPECT_FALSE(p.read_data_frame(200)) << "superseded announcement was delivered";
    ASSERT_TRUE(wait_done(2));
}

// Priority moves a crisis ahead of other audiences' queued work, never ahead
// of an earlier seq of its own audience: a client that keeps the last seq it
// saw per audience must never be able to skip one.
TEST_F(ShardTest, CriticalOvertakesOtherAudiencesButNotItsOwnEarlierSeq) {
    make_shards(1, {});
    peer p = subscribe_ws(0, "audience=site&audience=camp&audience=shop");
    settle();
    // Block the shard thread so the queue builds up.
    std::promise<void> release_gate;
    auto gate = release_gate.get_future().share();
    boost::asio::post(shards_[0]->io_context(), [gate] { gate.wait(); });
    announce("shop1", "shop", "merch", 0, [](auto& a) { a.set_priority(herald::v1::PRIORITY_LOW); });
    announce("camp1", "camp", "quiet hours", 1);
    announce("camp2", "camp", "leave the camping area", 2,
             [](auto& a) { a.set_priority(herald::v1::PRIORITY_CRITICAL); });
    announce("site1", "site", "map update", 3, [](auto& a) { a.set_priority(herald::v1::PRIORITY_HIGH); });
    release_gate.set_value();
    std::vector<std::string> order;
    for (int i = 0; i < 4; ++i) {
        auto f = p.read_data_frame();
        ASSERT_TRUE(f);
        const auto at = f->payload.find("\"id\":\"");
        order.push_back(f->payload.substr(at + 6, f->payload.find('"', at + 6) - at - 6));
    }
    // camp1 rides with its audience's crisis, in seq order; then high, then low.
    EXPECT_EQ(order, (std::vector<std::string>{"camp1", "camp2", "site1", "shop1"}));
}

// A burst that queued up while the shard was busy goes out as merged writes
// (one gathered sendmsg per connection per audience run): still every frame
// exactly once, in order per audience, for WebSocket and SSE alike, and a
// connection in two audiences gets both runs.
TEST_F(ShardTest, QueuedBurstIsDeliveredCompleteAndInOrderPerAudience) {
    make_shards(1, {});
    peer ws = subscribe_ws(0, "audience=ticker.x");
    peer sse = subscribe_sse(0, "audience=ticker.x");
    peer both = subscribe_ws(0, "audience=ticker.x&audience=ticker.y");
    settle();
    std::promise<void> release_gate;
    auto gate = release_gate.get_future().share();
    boost::asio::post(shards_[0]->io_context(), [gate] { gate.wait(); });
    std::vector<broadcast_ptr> x_frames;
    constexpr int burst = 80;  // more than one merged run (32) per audience
    for (int i = 0; i < burst; ++i) {
        const std::string audience = i % 2 == 0 ? "ticker.x" : "ticker.y";
        auto b = announce("t" + std::to_string(i), audience, "tick " + std::to_string(i), i);
        if (i % 2 == 0)
            x_frames.push_back(b);
    }
    release_gate.set_value();
    for (const auto& b : x_frames) {
        auto f = ws.read_data_frame();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->payload, b->websocket_frame.substr(b->websocket_frame.size() - f->payload.size()));
        auto ev = sse.read_sse_event();
        ASSERT_TRUE(ev);
        EXPECT_EQ(*ev, b->sse_frame);
    }
    std::vector<int> x_seen, y_seen;
    for (int i = 0; i < burst; ++i) {
        auto f = both.read_data_frame();
        ASSERT_TRUE(f) << "after " << i << " frames";
        const auto at = f->payload.find("\"id\":\"t");
        ASSERT_NE(at, std::string::npos) << f->payload;
        const int n = std::stoi(f->payload.substr(at + 7));
        (n % 2 == 0 ? x_seen : y_seen).push_back(n);
    }
    ASSERT_EQ(x_seen.size(), static_cast<std::size_t>(burst / 2));
    ASSERT_EQ(y_seen.size(), static_cast<std::size_t>(burst / 2));
    for (int i = 0; i < burst / 2; ++i) {
        EXPECT_EQ(x_seen[i], 2 * i);
        EXPECT_EQ(y_seen[i], 2 * i + 1);
    }
    EXPECT_FALSE(ws.read_data_frame(100)) << "a frame arrived twice";
    EXPECT_FALSE(both.read_data_frame(100)) << "a frame arrived twice";
    ASSERT_TRUE(wait_done(burst));
}

TEST_F(ShardTest, ReconnectWithSinceGetsWhatItMissedInOrderThenLive) {
    peer first = subscribe_ws(0, "audience=lineup.x");
    settle();
    std::vector<broadcast_ptr> sent;
    for (int i = 0; i < 5; ++i)
        sent.push_back(announce("m" + std::to_string(i), "lineup.x", "change " + std::to_string(i), 10 + i));
    ASSERT_TRUE(wait_done(5));
    ASSERT_TRUE(first.read_data_frame());
    ASSERT_TRUE(first.read_data_frame());
    // The client saw seq 11 and 12, then lost its connection.
    peer again = subscribe_ws(1, "audience=lineup.x&since=" + std::to_string(sent[1]->seq.get()));
    settle();
    for (int i = 2; i < 5; ++i) {
        auto f = again.read_data_frame();
        ASSERT_TRUE(f) << "missed announcement " << i << " not replayed";
        EXPECT_EQ(again.raw_last_, sent[static_cast<std::size_t>(i)]->websocket_frame);
    }
    auto live = announce("m5", "lineup.x", "change 5", 15);
    ASSERT_TRUE(wait_done(6));
    auto f = again.read_data_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(again.raw_last_, live->websocket_frame);
    EXPECT_FALSE(again.read_data_frame(150)) << "a duplicate after the live frame";
    const std::string m = registry_.render();
    EXPECT_NE(m.find("herald_recoveries_total{result=\"complete\"} 1"), std::string::npos) << m;
    EXPECT_NE(m.find("herald_recovered_frames_total 3"), std::string::npos) << m;
}

TEST_F(ShardTest, GapBeyondTheHistoryIsToldExplicitlyAndSseHonoursLastEventId) {
    shard_options opts;
    opts.history_max_per_audience = 2;
    make_shards(1, opts);
    std::vector<broadcast_ptr> sent;
    for (int i = 0; i < 5; ++i)
        sent.push_back(announce("t" + std::to_string(i), "ticker", "score " + std::to_string(i), 100 + i));
    ASSERT_TRUE(wait_done(5));
    // Saw only the first: three came after it, only two are still kept.
    peer sse = connect(0);
    auto head = sse.sse_handshake("/v1/sse?audience=ticker",
                                  "Last-Event-ID: " + std::to_string(sent[0]->seq.get()) + "\r\n");
    ASSERT_TRUE(head);
    ASSERT_TRUE(sse.read_until("\n\n", 5000));  // "retry: 2000"
    auto notice = sse.read_until("\n\n", 5000);
    ASSERT_TRUE(notice);
    EXPECT_NE(notice->find("event: gap"), std::string::npos) << *notice;
    EXPECT_NE(
        notice->find(R"("type":"gap","audience":"ticker","since":)" + std::to_string(sent[0]->seq.get())),
        std::string::npos)
        << *notice;
    EXPECT_EQ(sse.read_sse_event(), sent[3]->sse_frame);
    EXPECT_EQ(sse.read_sse_event(), sent[4]->sse_frame);

    // A since inside the history is complete; a malformed one is refused.
    peer ws = subscribe_ws(0, "audience=ticker&since=" + std::to_string(sent[3]->seq.get()));
    auto f = ws.read_data_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(ws.raw_last_, sent[4]->websocket_frame);
    peer bad = connect(0);
    auto refused = bad.websocket_handshake("/v1/ws?audience=ticker&since=yesterday");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->rfind("HTTP/1.1 400", 0), 0u) << *refused;
    const std::string m = registry_.render();
    EXPECT_NE(m.find("herald_recoveries_total{result=\"gap\"} 1"), std::string::npos) << m;
}

TEST_F(ShardTest, ReadBackHistoryIsRememberedNotSentAndServesRecoveryOnce) {
    peer live = subscribe_ws(0, "audience=news");
    settle();
    // Offsets 20..22 read back from Kafka at start-up (the refill began at 20),
    // one of them twice (a partition assigned again): remembered, not sent.
    for (const std::int64_t offset : {20, 21, 21, 22}) {
        herald::v1::Announcement a;
        a.set_id("old" + std::to_string(offset));
        a.set_audience("news");
        a.set_text("before the restart");
        dispatcher_->remember(a, at(offset), model::kafka_offset(20), epoch_);
    }
    settle();
    EXPECT_FALSE(live.read_data_frame(200)) << "a read-back announcement was delivered again";
    // Saw seq 21 (offset 20) before the restart: gets 22 and 23, complete.
    peer again = subscribe_ws(1, "audience=news&since=21");
    settle();
    for (const char* id : {"old21", "old22"}) {
        auto f = again.read_data_frame();
        ASSERT_TRUE(f) << "missed " << id;
        EXPECT_NE(f->payload.find(std::string("\"id\":\"") + id + "\""), std::string::npos) << f->payload;
    }
    EXPECT_FALSE(again.read_data_frame(150)) << "the duplicate read-back was kept twice";
    // From before the refill window: told there is a gap.
    peer far = subscribe_ws(1, "audience=news&since=5");
    auto notice = far.read_data_frame();
    ASSERT_TRUE(notice);
    EXPECT_NE(notice->payload.find(R"("type":"gap")"), std::string::npos) << notice->payload;
    // Live continues above the read-back.
    auto next = announce("new", "news", "after", 23);
    ASSERT_TRUE(wait_done(1));
    EXPECT_GT(next->seq, model::seq_no(23));
    ASSERT_TRUE(live.read_data_frame());
    EXPECT_EQ(live.raw_last_, next->websocket_frame);
    const std::string m = registry_.render();
    EXPECT_NE(m.find("herald_recoveries_total{result=\"complete\"} 1"), std::string::npos) << m;
}

TEST_F(ShardTest, SlowConsumerIsClosedWith1008AndOthersUnaffected) {
    shard_options opts;
    opts.session.send_queue_frames = 4;
    opts.session.send_queue_bytes = 1 << 20;
    make_shards(1, opts);
    peer slow = subscribe_ws(0, "audience=flood");
    peer healthy = subscribe_ws(0, "audience=flood");
    settle();
    const std::string big(64 * 1024, 'x');
    std::atomic<bool> reading{true};
    std::atomic<int> healthy_frames{0};
    std::thread reader([&] {
        while (reading) {
            if (auto f = healthy.read_data_frame(200))
                ++healthy_frames;
        }
    });
    // Paced by the healthy reader, so only the one that never reads falls behind.
    const int count = 64;  // 4 MiB: far more than socket buffers plus 4 queued frames
    for (int i = 0; i < count; ++i) {
        announce("f" + std::to_string(i), "flood", big, i);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (healthy_frames.load() <= i && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    ASSERT_TRUE(wait_done(count, 10000));
    // The slow one finally reads: some frames, then a close frame with 1008.
    std::optional<testing::ws_frame> last;
    while (auto f = slow.read_frame(1000)) {
        last = f;
        if (f->opcode == 0x8)
            break;
    }
    ASSERT_TRUE(last);
    EXPECT_EQ(last->opcode, 0x8);
    EXPECT_EQ(last->close_code(), 1008);
    reading = false;
    reader.join();
    EXPECT_EQ(healthy_frames.load(), count);
    EXPECT_NE(registry_.render().find("herald_drops_total{reason=\"slow_consumer\"}"), std::string::npos);
}

TEST_F(ShardTest, BadClientFrameClosesOnlyThatConnectionWith1002) {
    peer bad = subscribe_ws(0, "audience=x");
    peer good = subscribe_ws(0, "audience=x");
    settle();
    // Unmasked client frame: a protocol error.
    ASSERT_TRUE(bad.send_all(std::string("\x81\x02hi", 4)));
    auto f = bad.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 0x8);
    EXPECT_EQ(f->close_code(), 1002);
    announce("after", "x", "still here", 0);
    ASSERT_TRUE(good.read_data_frame());
}

TEST_F(ShardTest, PingIsAnsweredWithPong) {
    peer p = subscribe_ws(0, "audience=x");
    ASSERT_TRUE(p.send_frame(0x9, "are you there"));
    auto f = p.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 0xA);
    EXPECT_EQ(f->payload, "are you there");
}

TEST_F(ShardTest, HandshakeErrorsGetHttpStatus) {
    peer p = connect(0);
    auto head = p.websocket_handshake("/v1/ws?audience=Not%20Valid");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->rfind("HTTP/1.1 400", 0), 0u) << *head;
    peer q = connect(0);
    head = q.websocket_handshake("/v1/ws");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->rfind("HTTP/1.1 400", 0), 0u) << *head;
    peer r = connect(0);
    head = r.sse_handshake("/nowhere?audience=a");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->rfind("HTTP/1.1 404", 0), 0u) << *head;
}

// No allocation per recipient: a broadcast to 2,000 connections allocates no
// more than one to 10 connections.
TEST_F(ShardTest, NoPerRecipientAllocation) {
    make_shards(1, {});
    auto measure = [&](int recipients, const std::string& audience) -> std::uint64_t {
        std::vector<peer> peers;
        for (int i = 0; i < recipients; ++i) peers.push_back(subscribe_ws(0, "audience=" + audience));
        settle();
        std::int64_t offset = 1000;
        std::uint64_t result = 0;
        for (int round = 0; round < 3; ++round) {  // round 0 warms up queues and allocator caches
            herald::v1::Announcement a;
            a.set_id("alloc");
            a.set_audience(audience);
            a.set_text("same bytes for everyone");
            auto b = model::build_broadcast(a, model::seq_at(model::kafka_offset(offset)), at(offset));
            ++offset;
            b->live.shards_pending = 1;
            std::atomic<bool> done{false};
            // Completion is observed by polling the broadcast, not through a callback that allocates.
            g_allocations = 0;
            g_count_allocations = true;
            EXPECT_TRUE(shards_[0]->try_enqueue(b));
            while (b->live.shards_pending.load() != 0) std::this_thread::yield();
            g_count_allocations = false;
            result = g_allocations.load();
            for (auto& p : peers) EXPECT_TRUE(p.read_data_frame());
            (void)done;
        }
        return result;
    };
    const auto small = measure(10, "small");
    const auto large = measure(2000, "large");
    EXPECT_LE(large, small + 2) << "allocations grew with recipients: " << small << " for 10, " << large
                                << " for 2000";
}

// The value of a field of a frame's JSON ("seq":N or "epoch":"E").
std::string json_field(const std::string& json, const std::string& name) {
    const auto at = json.find("\"" + name + "\":");
    if (at == std::string::npos)
        return {};
    auto from = at + name.size() + 3;
    if (json[from] == '"')
        return json.substr(from + 1, json.find('"', from + 1) - from - 1);
    return json.substr(from, json.find_first_of(",}", from) - from);
}

std::string position(const broadcast_ptr& b) {
    std::string out;
    model::append_position(out, b->audience, b->epoch, b->seq);
    return out;
}

// Two audiences on different partitions (independent seq spaces): the
// client resumes each from its own position and gets exactly what each
// missed, in order — WebSocket with since=, SSE with the Last-Event-ID its
// browser would send (the last event's id, naming every position).
TEST_F(ShardTest, TwoAudiencesInDifferentPartitionsResumeEachFromItsOwnPosition) {
    make_shards(2, {});
    peer ws = subscribe_ws(0, "audience=lineup.main&audience=ticker.football");
    peer sse = subscribe_sse(1, "audience=lineup.main&audience=ticker.football");
    settle();
    // lineup.main lives on partition 0 at offsets 100..; ticker.football on 3 at 7..
    std::vector<broadcast_ptr> lineup, ticker;
    lineup.push_back(announce_on(0, "l0", "lineup.main", "stage A", 100));
    ticker.push_back(announce_on(3, "t0", "ticker.football", "1:0", 7));
    ticker.push_back(announce_on(3, "t1", "ticker.football", "2:0", 8));
    ASSERT_TRUE(wait_done(3));
    EXPECT_NE(lineup[0]->epoch, ticker[0]->epoch);
    std::string last_ws_lineup, last_ws_ticker;
    for (int i = 0; i < 3; ++i) {
        auto f = ws.read_data_frame();
        ASSERT_TRUE(f);
        const std::string aud = json_field(f->payload, "audience");
        std::string pos = aud + ":" + json_field(f->payload, "epoch") + ":" + json_field(f->payload, "seq");
        (aud == "lineup.main" ? last_ws_lineup : last_ws_ticker) = pos;
    }
    EXPECT_EQ(last_ws_lineup, position(lineup[0]));
    EXPECT_EQ(last_ws_ticker, position(ticker[1]));
    std::string last_event_id;
    for (int i = 0; i < 3; ++i) {
        auto ev = sse.read_sse_event();
        ASSERT_TRUE(ev);
        ASSERT_EQ(ev->rfind("id: ", 0), 0u) << *ev;
        last_event_id = ev->substr(4, ev->find('\n') - 4);
    }
    // The last event (ticker) still names lineup's position.
    EXPECT_EQ(last_event_id, position(lineup[0]) + "," + position(ticker[1]));

    // Both disconnect; each audience gets more.
    ws.close();
    sse.close();
    lineup.push_back(announce_on(0, "l1", "lineup.main", "stage B", 101));
    ticker.push_back(announce_on(3, "t2", "ticker.football", "2:1", 9));
    lineup.push_back(announce_on(0, "l2", "lineup.main", "stage C", 102));
    ASSERT_TRUE(wait_done(6));

    const std::vector<std::string> expected_ids{"l1", "t2", "l2"};
    peer ws2 = subscribe_ws(
        1, "audience=lineup.main&audience=ticker.football&since=" + last_ws_lineup + "," + last_ws_ticker);
    peer sse2 = connect(0);
    ASSERT_TRUE(sse2.sse_handshake("/v1/sse?audience=lineup.main&audience=ticker.football",
                                   "Last-Event-ID: " + last_event_id + "\r\n"));
    settle();
    std::vector<std::string> ws_got, sse_got;
    for (int i = 0; i < 3; ++i) {
        auto f = ws2.read_data_frame();
        ASSERT_TRUE(f) << "missed frame " << i;
        EXPECT_EQ(json_field(f->payload, "type"), "") << f->payload;
        ws_got.push_back(json_field(f->payload, "id"));
        auto ev = sse2.read_sse_event();
        ASSERT_TRUE(ev) << "missed event " << i;
        EXPECT_EQ(ev->find("event: gap"), std::string::npos) << *ev;
        sse_got.push_back(json_field(*ev, "id"));
    }
    // Per audience in order (the audiences' replays may come in either order).
    const auto per_audience = [](const std::vector<std::string>& got, char prefix) {
        std::vector<std::string> out;
        for (const auto& id : got)
            if (id[0] == prefix)
                out.push_back(id);
        return out;
    };
    for (const auto* got : {&ws_got, &sse_got}) {
        EXPECT_EQ(per_audience(*got, 'l'), (std::vector<std::string>{"l1", "l2"}));
        EXPECT_EQ(per_audience(*got, 't'), (std::vector<std::string>{"t2"}));
    }
    EXPECT_FALSE(ws2.read_data_frame(150)) << "a duplicate";
    EXPECT_FALSE(sse2.read_sse_event(150)) << "a duplicate";
    const std::string m = registry_.render();
    EXPECT_NE(m.find("herald_recoveries_total{result=\"complete\"} 4"), std::string::npos) << m;
    EXPECT_NE(m.find("herald_recovered_frames_total 6"), std::string::npos) << m;
}

// Sequence numbers restarted (the embedded cluster restarted, a topic was
// recreated): a position from the old epoch is never compared with the new
// numbers; the client is told `gap` with both epochs and gets what the
// current epoch still has.
TEST_F(ShardTest, APositionFromAnotherEpochIsAGapNeverSilence) {
    std::vector<broadcast_ptr> sent;
    for (int i = 0; i < 3; ++i)
        sent.push_back(announce("n" + std::to_string(i), "news", "item " + std::to_string(i), i));
    ASSERT_TRUE(wait_done(3));
    const std::string old_epoch = model::epoch_of("the-cluster-before", "herald.announcements", 0);
    // seq 2 of the old epoch is also a seq in the new one: without the epoch
    // the client would silently get only what came after it.
    peer p = subscribe_ws(0, "audience=news&since=news:" + old_epoch + ":2");
    auto notice = p.read_data_frame();
    ASSERT_TRUE(notice);
    EXPECT_EQ(json_field(notice->payload, "type"), "gap") << notice->payload;
    EXPECT_EQ(json_field(notice->payload, "since_epoch"), old_epoch);
    EXPECT_EQ(json_field(notice->payload, "epoch"), epoch_);
    EXPECT_EQ(json_field(notice->payload, "oldest_seq"), std::to_string(sent[0]->seq.get()));
    for (const auto& b : sent) {
        auto f = p.read_data_frame();
        ASSERT_TRUE(f);
        EXPECT_EQ(p.raw_last_, b->websocket_frame);
    }
    EXPECT_FALSE(p.read_data_frame(150));
}

// Recovery follows release order: a scheduled announcement keeps its seq (its
// Kafka position) but goes out at its instant, after later seqs; a client
// that saw those and reconnects still gets it.
TEST_F(ShardTest, AScheduledAnnouncementReleasedAfterHigherSeqsIsRecovered) {
    auto held = announce("doors", "lineup.x", "Doors open", 10, [](auto& a) {
        *a.mutable_deliver_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
            base::to_ns(base::wall_now()) + 300'000'000);
    });
    auto later = announce("late", "lineup.x", "stage change", 11);
    ASSERT_TRUE(wait_done(1));
    EXPECT_LT(held->seq, later->seq);
    // The client saw seq 12 ("late") and left; then "doors" (seq 11) went out.
    ASSERT_TRUE(wait_done(2, 5000));
    peer p = subscribe_ws(0, "audience=lineup.x&since=" + position(later));
    auto f = p.read_data_frame();
    ASSERT_TRUE(f) << "the scheduled announcement released after the client's position was not replayed";
    EXPECT_EQ(p.raw_last_, held->websocket_frame);
    EXPECT_FALSE(p.read_data_frame(150));
}

// The same when the client's own broadcast has already left the history
// (first in, first out in release order): everything still remembered came
// after it, the scheduled one with its lower seq too.
TEST_F(ShardTest, AScheduledAnnouncementIsRecoveredAfterTheClientsOwnWasEvicted) {
    shard_options opts;
    opts.history_max_per_audience = 3;
    make_shards(1, opts);
    announce("a", "x", "a", 10);
    auto seen = announce("b", "x", "b", 11);
    auto held = announce("s", "x", "scheduled", 12, [](auto& a) {
        *a.mutable_deliver_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
            base::to_ns(base::wall_now()) + 300'000'000);
    });
    ASSERT_TRUE(wait_done(2));
    // The client saw b (seq 12) and left before s went out.
    auto c = announce("c", "x", "c", 13);
    ASSERT_TRUE(wait_done(3));
    auto after_s_wait = wait_done(4, 5000);
    ASSERT_TRUE(after_s_wait);
    auto d = announce("d", "x", "d", 14);
    ASSERT_TRUE(wait_done(5));
    // Release order a, b, c, s, d; kept: c, s, d. b was evicted.
    peer p = subscribe_ws(0, "audience=x&since=" + position(seen));
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) {
        auto f = p.read_data_frame();
        ASSERT_TRUE(f) << "after " << got.size();
        got.push_back(json_field(f->payload, "id"));
    }
    EXPECT_EQ(got, (std::vector<std::string>{"c", "s", "d"}));
    EXPECT_FALSE(p.read_data_frame(150));
    (void)held;
    (void)c;
    (void)d;
}

// Positions are checked before anything is joined: a bare seq for several
// audiences, or a position for an audience the connection does not join,
// is a 400 that says why.
TEST_F(ShardTest, PositionsThatCannotBeMeantAreRefused) {
    for (const std::string query :
         {"audience=a&audience=b&since=5", "audience=a&since=b:00000000000000e1:5",
          "audience=a&since=a:nothex:5",
          "audience=a&audience=b&since=a:00000000000000e1:5,a:00000000000000e1:6"}) {
        peer p = connect(0);
        auto head = p.websocket_handshake("/v1/ws?" + query);
        ASSERT_TRUE(head) << query;
        EXPECT_EQ(head->rfind("HTTP/1.1 400", 0), 0u) << query << ": " << *head;
    }
}

// A replay is counted as recovered frames, never as delivery latency (its
// latency would be the time since the original release, or zero).
TEST_F(ShardTest, ReplaysStayOutOfTheLatencyHistogram) {
    peer live = subscribe_ws(0, "audience=news");
    settle();
    auto b = announce("n0", "news", "item", 0);
    ASSERT_TRUE(wait_done(1));
    ASSERT_TRUE(live.read_data_frame());
    const auto latency_count = [this] {
        const std::string m = registry_.render();
        const auto at = m.find("herald_delivery_latency_seconds_count");
        return at == std::string::npos ? std::string("none") : m.substr(at, m.find('\n', at) - at);
    };
    const std::string before = latency_count();
    peer again = subscribe_ws(1, "audience=news&since=news:" + epoch_ + ":0");
    ASSERT_TRUE(again.read_data_frame());
    EXPECT_EQ(again.raw_last_, b->websocket_frame);
    // The shard folds its tallies into Prometheus on its next tick (250 ms).
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    settle();
    EXPECT_EQ(latency_count(), before);
    EXPECT_NE(registry_.render().find("herald_recovered_frames_total 1"), std::string::npos);
}

}  // namespace
}  // namespace herald::fanout
