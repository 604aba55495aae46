#include "base/assert.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace herald::base {
namespace {

/// How often `where` has been reported so far (0 if never).
std::uint64_t count_of(const std::string& where) {
    for (const auto& [w, n] : internal_errors()) {
        if (w == where)
            return n;
    }
    return 0;
}

bool listed(const std::string& where) {
    for (const auto& [w, n] : internal_errors()) {
        if (w == where)
            return true;
    }
    return false;
}

#ifdef NDEBUG

TEST(HeraldBug, ReleaseBuildLogsAndCountsInsteadOfAborting) {
    const std::string where = "test.assert_release_bug";
    const std::uint64_t before = count_of(where);  // counts are process-wide (--gtest_repeat)

    int broken = 1;
    testing::internal::CaptureStderr();
    HERALD_BUG(broken == 0, "test.assert_release_bug");
    const std::string log = testing::internal::GetCapturedStderr();

    EXPECT_EQ(count_of(where), before + 1);
    EXPECT_TRUE(listed(where));
    EXPECT_NE(log.find(where), std::string::npos) << log;
    EXPECT_NE(log.find("broken == 0"), std::string::npos) << log;
    EXPECT_NE(log.find("assert_test.cc"), std::string::npos) << log;

    testing::internal::CaptureStderr();
    HERALD_BUG(broken == 0, "test.assert_release_bug");
    HERALD_BUG(broken == 0, "test.assert_release_bug");
    (void)testing::internal::GetCapturedStderr();
    EXPECT_EQ(count_of(where), before + 3);
}

TEST(HeraldBug, CountsEachWhereSeparately) {
    const std::uint64_t a = count_of("test.assert_where_a");
    const std::uint64_t b = count_of("test.assert_where_b");
    testing::internal::CaptureStderr();
    HERALD_BUG(false, "test.assert_where_a");
    HERALD_BUG(false, "test.assert_where_b");
    HERALD_BUG(false, "test.assert_where_b");
    (void)testing::internal::GetCapturedStderr();
    EXPECT_EQ(count_of("test.assert_where_a"), a + 1);
    EXPECT_EQ(count_of("test.assert_where_b"), b + 2);
}

#else

TEST(HeraldBug, DebugBuildAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(HERALD_BUG(1 + 1 == 3, "test.assert_debug_bug"), "1 \\+ 1 == 3");
}

#endif

TEST(HeraldBug, TrueConditionCountsNothing) {
    const std::string where = "test.assert_true_bug";
    int evaluated = 0;
    testing::internal::CaptureStderr();
    HERALD_BUG(++evaluated == 1, "test.assert_true_bug");
    const std::string log = testing::internal::GetCapturedStderr();
    EXPECT_EQ(evaluated, 1);  // the condition is evaluated exactly once
    EXPECT_FALSE(listed(where));
    EXPECT_EQ(log.find(where), std::string::npos) << log;
}

#if defined(HERALD_ASSERTIONS) && HERALD_ASSERTIONS

TEST(HeraldAssertDeathTest, FalseConditionAbortsWithConditionAndFile) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const int answer = 42;
    EXPECT_DEATH(HERALD_ASSERT(answer == 41), "assertion failed.*assert_test\\.cc:[0-9]+: answer == 41");
}

TEST(HeraldAssertDeathTest, TrueConditionDoesNothing) {
    int evaluated = 0;
    HERALD_ASSERT(++evaluated == 1);
    EXPECT_EQ(evaluated, 1);
    HERALD_ASSERT(true);
    SUCCEED();
}

#else

TEST(HeraldAssertDeathTest, SkippedWithoutAssertions) {
    GTEST_SKIP() << "HERALD_ASSERTIONS is off in this build";
}

#endif

}  // namespace
}  // namespace herald::base
