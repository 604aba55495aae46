// The fan-out core end to end inside one process: real shards with their
// threads and io_contexts, real sessions doing the real WebSocket/SSE
// handshake over socketpairs, broadcasts built by the dispatcher.
#include "fanout/shard.h"

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

TEST_F(ShardTest, SseGetsEventWithSequenceAsId) {
    peer sse = subscribe_sse(0, "audience=news.ticker");
    settle();
    auto b = announce("t1", "news.ticker", "1:0 in minute 67", 6);
    ASSERT_TRUE(wait_done(1));
    auto ev = sse.read_sse_event();
    ASSERT_TRUE(ev);
    EXPECT_EQ(*ev, b->sse_frame);
    EXPECT_EQ(ev->rfind("id: 7\n", 0), 0u) << *ev;
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

TEST_F(ShardTest, CriticalOvertakesQueuedLowPriority) {
    make_shards(1, {});
    peer p = subscribe_ws(0, "audience=site");
    settle();
    // Block the shard thread so the queue builds up, then enqueue low before critical.
    std::promise<void> release_gate;
    auto gate = release_gate.get_future().share();
    boost::asio::post(shards_[0]->io_context(), [gate] { gate.wait(); });
    announce("m1", "site", "marketing", 0, [](auto& a) { a.set_priority(herald::v1::PRIORITY_LOW); });
    announce("c1", "site", "leave the camping area", 1,
             [](auto& a) { a.set_priority(herald::v1::PRIORITY_CRITICAL); });
    release_gate.set_value();
    auto first = p.read_data_frame();
    ASSERT_TRUE(first);
    EXPECT_NE(first->payload.find("\"id\":\"c1\""), std::string::npos) << first->payload;
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
        dispatcher_->remember(a, at(offset), model::kafka_offset(20));
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

}  // namespace
}  // namespace herald::fanout
