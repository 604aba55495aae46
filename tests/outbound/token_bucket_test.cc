// The token bucket and the retry policy: exact rates over simulated time,
// pauses, full-jitter bounds, Retry-After floors and the 4^n pair-limit wait.
#include "outbound/token_bucket.h"

#include <gtest/gtest.h>

#include <random>

#include "outbound/retry_policy.h"

namespace herald::outbound {
namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t s = 1'000'000'000;

TEST(TokenBucket, StartsFullThenHoldsTheRateWithinOneToken) {
    token_bucket b(200, 200, 0);
    int taken = 0;
    for (std::int64_t t = 0; t <= 10 * s; t += ms) {
        while (b.try_take(t)) ++taken;
    }
    // Burst of 200 at t=0, then 200/s for 10 s.
    EXPECT_GE(taken, 200 + 2000 - 1);
    EXPECT_LE(taken, 200 + 2000);
}

TEST(TokenBucket, NoOneSecondWindowExceedsRatePlusBurst) {
    token_bucket b(80, 80, 0);
    std::vector<std::int64_t> at;
    for (std::int64_t t = 0; t <= 5 * s; t += 100'000) {
        while (b.try_take(t)) at.push_back(t);
    }
    std::size_t lo = 0;
    std::size_t most = 0;
    for (std::size_t hi = 0; hi < at.size(); ++hi) {
        while (at[hi] - at[lo] >= s) ++lo;
        most = std::max(most, hi - lo + 1);
    }
    EXPECT_LE(most, 160u);
    EXPECT_GE(most, 80u);
}

TEST(TokenBucket, NextTokenTimeIsWhenTryTakeSucceeds) {
    token_bucket b(10, 1, 0);
    ASSERT_TRUE(b.try_take(0));
    EXPECT_FALSE(b.try_take(50 * ms));
    const auto next = b.next_token_ns(50 * ms);
    EXPECT_NEAR(static_cast<double>(next), 100.0 * ms, 1.0 * ms);
    EXPECT_FALSE(b.try_take(next - 2 * ms));
    EXPECT_TRUE(b.try_take(next));
}

TEST(TokenBucket, PauseEmptiesTheBucketAndBlocksUntilItEnds) {
    token_bucket b(100, 100, 0);
    b.pause_until(2 * s);
    EXPECT_FALSE(b.try_take(1 * s));
    EXPECT_EQ(b.next_token_ns(1 * s), 2 * s + 10 * ms + 1);
    EXPECT_FALSE(b.try_take(2 * s));  // empty at the end of the pause: no burst into the same wall
    EXPECT_TRUE(b.try_take(2 * s + 11 * ms));
}

TEST(TokenBucket, AvailableTakesNothing) {
    token_bucket b(1, 1, 0);
    EXPECT_TRUE(b.available(0));
    EXPECT_TRUE(b.available(0));
    EXPECT_TRUE(b.try_take(0));
    EXPECT_FALSE(b.available(0));
}

TEST(RetryPolicy, FullJitterStaysWithinTheDoublingCeilingAndTheCap) {
    retry_limits lim;
    lim.base_ns = 500 * ms;
    lim.cap_ns = 8 * s;
    std::mt19937_64 rng(42);
    for (std::uint32_t attempt = 1; attempt <= 10; ++attempt) {
        const double ceiling = std::min(8.0 * s, 500.0 * ms * (1 << (attempt - 1)));
        std::int64_t most = 0;
        for (int i = 0; i < 2000; ++i) {
            const auto w = backoff_ns(lim, attempt, 0, rng);
            ASSERT_GE(w, 0);
            ASSERT_LE(w, static_cast<std::int64_t>(ceiling));
            most = std::max(most, w);
        }
        EXPECT_GT(most, static_cast<std::int64_t>(ceiling * 0.9)) << "jitter should cover the range";
    }
}

TEST(RetryPolicy, RetryAfterIsAFloor) {
    retry_limits lim;
    std::mt19937_64 rng(1);
    for (int i = 0; i < 100; ++i) EXPECT_GE(backoff_ns(lim, 1, 3 * s, rng), 3 * s);
}

TEST(RetryPolicy, PairLimitWaitsFourToTheN) {
    EXPECT_EQ(pair_limit_wait_ns(1), 4 * s);
    EXPECT_EQ(pair_limit_wait_ns(2), 16 * s);
    EXPECT_EQ(pair_limit_wait_ns(3), 64 * s);
    EXPECT_EQ(pair_limit_wait_ns(20), 3600 * s);
}

}  // namespace
}  // namespace herald::outbound
