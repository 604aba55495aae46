#include "base/result.h"

#include <gtest/gtest.h>

namespace herald::base {
namespace {

result<int> parse_positive(int v) {
    if (v <= 0) {
        return failure(std::make_error_code(std::errc::invalid_argument), "must be positive");
    }
    return v;
}

TEST(Result, CarriesValue) {
    auto r = parse_positive(3);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 3);
}

TEST(Result, CarriesErrorWithDetail) {
    auto r = parse_positive(-1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, std::errc::invalid_argument);
    EXPECT_NE(r.err().describe().find("must be positive"), std::string::npos);
}

TEST(Result, VoidResult) {
    result<void> ok;
    EXPECT_TRUE(ok);
    result<void> bad = failure(std::make_error_code(std::errc::io_error));
    EXPECT_FALSE(bad);
}

}  // namespace
}  // namespace herald::base
