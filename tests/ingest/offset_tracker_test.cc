#include "ingest/offset_tracker.h"

#include <gtest/gtest.h>

namespace herald::ingest {
namespace {

using positions = std::vector<std::pair<std::int32_t, std::int64_t>>;

TEST(OffsetTracker, CommitsOnlyContiguousFinishedWork) {
    offset_tracker t;
    t.started(0, 10);
    t.started(0, 11);
    t.started(0, 12);
    EXPECT_EQ(t.take_committable(),
              (positions{{0, 10}}));  // nothing done yet: position is the first outstanding
    t.finished(0, 12);
    EXPECT_TRUE(t.take_committable().empty());  // 10 and 11 still outstanding
    t.finished(0, 10);
    EXPECT_EQ(t.take_committable(), (positions{{0, 11}}));
    t.finished(0, 11);
    EXPECT_EQ(t.take_committable(), (positions{{0, 13}}));
    EXPECT_EQ(t.outstanding(), 0u);
}

TEST(OffsetTracker, HeldBroadcastBlocksCommitBehindIt) {
    offset_tracker t;
    t.started(3, 0);  // e.g. deliver_at in an hour
    t.started(3, 1);
    t.finished(3, 1);
    EXPECT_EQ(t.take_committable(), (positions{}));  // position 0 == initial committed 0: nothing new
    t.finished(3, 0);
    EXPECT_EQ(t.take_committable(), (positions{{3, 2}}));
}

TEST(OffsetTracker, PartitionsAreIndependentAndForgettable) {
    offset_tracker t;
    t.started(0, 5);
    t.started(1, 7);
    t.finished(1, 7);
    auto c = t.take_committable();
    std::sort(c.begin(), c.end());
    EXPECT_EQ(c, (positions{{0, 5}, {1, 8}}));
    t.forget(0);
    t.finished(0, 5);  // ignored
    EXPECT_TRUE(t.take_committable().empty());
}

}  // namespace
}  // namespace herald::ingest
