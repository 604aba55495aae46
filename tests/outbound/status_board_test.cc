// Broadcast progress as `GET /v1/broadcasts/{id}` reports it.
#include "outbound/status_board.h"

#include <gtest/gtest.h>

namespace herald::outbound {
namespace {

TEST(StatusBoard, CountsOutcomesUntilNothingIsPending) {
    status_board board;
    board.started("a1", "default", "lineup.x", 2, 100);
    board.expanded("a1", "default", 3);
    auto p = board.get("a1", "default");
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->done()) << "one shard has not listed its recipients yet";
    board.expanded("a1", "default", 2);
    board.sent("a1", "default");
    board.sent("a1", "default");
    board.failed("a1", "default");
    board.suppressed("a1", "default", "opted_out");
    p = board.get("a1", "default");
    EXPECT_EQ(p->targeted, 5u);
    EXPECT_EQ(p->pending(), 1u);
    EXPECT_FALSE(p->done());
    board.suppressed("a1", "default", "opted_out");
    p = board.get("a1", "default");
    EXPECT_TRUE(p->done());
    const boost::json::object json = p->to_json(0);
    EXPECT_EQ(json.at("state").as_string(), "done") << json;
    EXPECT_EQ(json.at("suppressed_reasons"), (boost::json::object{{"opted_out", 2}})) << json;
    EXPECT_EQ(json.at("pending").to_number<std::int64_t>(), 0) << json;
    EXPECT_EQ(json.at("eta_seconds").to_number<std::int64_t>(), 0) << json;
}

TEST(StatusBoard, ACancelShowsCancelledAndOnlyForWhatTheBoardKnowsUnlessAsked) {
    status_board board;
    EXPECT_FALSE(board.cancel("nobody", "default")) << "an unknown id is not made up";
    EXPECT_FALSE(board.get("nobody", "default"));
    board.started("a1", "default", "lineup.x", 1, 100);
    board.expanded("a1", "default", 2);
    board.sent("a1", "default");
    EXPECT_TRUE(board.cancel("a1", "default"));
    board.suppressed("a1", "default", "cancelled");
    auto json = board.get("a1", "default")->to_json(0);
    EXPECT_EQ(json.at("state").as_string(), "cancelled") << json;
    EXPECT_EQ(json.at("suppressed_reasons"), (boost::json::object{{"cancelled", 1}})) << json;
    EXPECT_FALSE(board.get("a1", "other")) << "tenants stay apart";
    // A scheduled live one cancelled before the board heard of it.
    board.cancelled("s1", "t", "doors.main");
    json = board.get("s1", "t")->to_json(0);
    EXPECT_EQ(json.at("state").as_string(), "cancelled") << json;
    EXPECT_EQ(json.at("audience").as_string(), "doors.main") << json;
}

TEST(StatusBoard, EtaFromTheConfiguredRateBeforeAnySend) {
    broadcast_progress p;
    p.targeted = 1000;
    p.configured_rate_per_s = 200;
    EXPECT_DOUBLE_EQ(p.eta_seconds(0), 5.0);
}

TEST(StatusBoard, ForgetsTheOldestFinishedBeyondCapacity) {
    status_board board(2);
    board.started("a", "t", "x", 1, 1);
    board.expanded("a", "t", 0);  // finished: nobody to reach
    board.started("b", "t", "x", 1, 1);
    board.expanded("b", "t", 0);
    board.started("c", "t", "x", 1, 1);
    EXPECT_FALSE(board.get("a", "t"));
    EXPECT_TRUE(board.get("b", "t"));
    EXPECT_TRUE(board.get("c", "t"));
}

TEST(StatusBoard, KeepsARunningBroadcastHoweverManyFinishAfterIt) {
    // The checkpoint flusher takes a broadcast missing from the board as
    // finished: evicting a running one would drop its crash safety.
    status_board board(2);
    board.started("long", "t", "x", 1, 1);
    board.expanded("long", "t", 3);
    board.sent("long", "t");
    for (int i = 0; i < 10; ++i) {
        const std::string id = "tick" + std::to_string(i);
        board.started(id, "t", "y", 1, 1);
        board.expanded(id, "t", 0);
    }
    const auto p = board.get("long", "t");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->pending(), 2u);
    EXPECT_FALSE(board.get("tick0", "t"));
    EXPECT_TRUE(board.get("tick9", "t"));
}

TEST(StatusBoard, StaysAtCapacityWhenTheOldestAreAllRunning) {
    // More running broadcasts at the front than one eviction looks at: they
    // move aside, and finished ones behind them still make room.
    status_board board(100);
    for (int i = 0; i < 100; ++i) board.started("run" + std::to_string(i), "t", "x", 1, 1);
    for (int i = 0; i < 1000; ++i) {
        const std::string id = "done" + std::to_string(i);
        board.started(id, "t", "y", 1, 1);
        board.expanded(id, "t", 0);
    }
    int kept = 0;
    for (int i = 0; i < 1000; ++i) kept += board.get("done" + std::to_string(i), "t") ? 1 : 0;
    EXPECT_LE(kept, 10) << "finished broadcasts piled up behind running ones";
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(board.get("run" + std::to_string(i), "t")) << i;
}

TEST(StatusBoard, TheSameIdOfTwoTenantsIsTwoBroadcasts) {
    status_board board;
    board.started("alert-1", "festival-a", "x", 1, 1);
    board.expanded("alert-1", "festival-a", 2);
    board.started("alert-1", "festival-b", "y", 1, 1);
    board.expanded("alert-1", "festival-b", 5);
    board.sent("alert-1", "festival-a");
    const auto a = board.get("alert-1", "festival-a");
    const auto b = board.get("alert-1", "festival-b");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->targeted, 2u);
    EXPECT_EQ(a->sent, 1u);
    EXPECT_EQ(b->targeted, 5u);
    EXPECT_EQ(b->sent, 0u);
    EXPECT_EQ(b->audience, "y");
    const auto both = board.matching("alert-1");
    ASSERT_EQ(both.size(), 2u);
    EXPECT_EQ(both[0].tenant, "festival-a");
    EXPECT_EQ(both[1].tenant, "festival-b");
    EXPECT_TRUE(board.matching("alert-2").empty());
}

TEST(StatusBoard, AnEvictedBroadcastIsNoLongerFoundById) {
    status_board board(1);
    board.started("a", "t", "x", 1, 1);
    board.expanded("a", "t", 0);
    board.started("b", "t", "x", 1, 1);
    EXPECT_TRUE(board.matching("a").empty());
    EXPECT_EQ(board.matching("b").size(), 1u);
}

}  // namespace
}  // namespace herald::outbound
