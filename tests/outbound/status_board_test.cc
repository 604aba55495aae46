// Broadcast progress as `GET /v1/broadcasts/{id}` reports it.
#include "outbound/status_board.h"

#include <gtest/gtest.h>

namespace herald::outbound {
namespace {

TEST(StatusBoard, CountsOutcomesUntilNothingIsPending) {
    status_board board;
    board.started("a1", "default", "lineup.x", 2, 100);
    board.expanded("a1", 3);
    auto p = board.get("a1");
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->done()) << "one shard has not listed its recipients yet";
    board.expanded("a1", 2);
    board.sent("a1");
    board.sent("a1");
    board.failed("a1");
    board.suppressed("a1", "opted_out");
    p = board.get("a1");
    EXPECT_EQ(p->targeted, 5u);
    EXPECT_EQ(p->pending(), 1u);
    EXPECT_FALSE(p->done());
    board.suppressed("a1", "opted_out");
    p = board.get("a1");
    EXPECT_TRUE(p->done());
    const std::string json = p->to_json(0);
    EXPECT_NE(json.find(R"("state":"done")"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("suppressed_reasons":{"opted_out":2})"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("pending":0)"), std::string::npos) << json;
}

TEST(StatusBoard, EtaFromTheConfiguredRateBeforeAnySend) {
    broadcast_progress p;
    p.targeted = 1000;
    p.configured_rate_per_s = 200;
    EXPECT_DOUBLE_EQ(p.eta_seconds(0), 5.0);
}

TEST(StatusBoard, ForgetsTheOldestBeyondCapacity) {
    status_board board(2);
    board.started("a", "t", "x", 1, 1);
    board.started("b", "t", "x", 1, 1);
    board.started("c", "t", "x", 1, 1);
    EXPECT_FALSE(board.get("a"));
    EXPECT_TRUE(board.get("c"));
}

}  // namespace
}  // namespace herald::outbound
