#include "security/credentials.h"

#include <gtest/gtest.h>

#include <string>

namespace herald::security {
namespace {

using namespace std::string_literals;

TEST(BearerToken, TakesTheTokenOfABearerHeader) {
    const auto t = bearer_token("Bearer abc");
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(*t, "abc");
    // A JWT's characters (base64url and dots) pass unchanged.
    EXPECT_EQ(bearer_token("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-_nature").value_or(""),
              "eyJhbGciOiJIUzI1NiJ9.e30.sig-_nature");
}

TEST(BearerToken, SchemeIsCaseInsensitive) {
    EXPECT_EQ(bearer_token("bearer abc").value_or(""), "abc");
    EXPECT_EQ(bearer_token("BEARER abc").value_or(""), "abc");
    EXPECT_EQ(bearer_token("bEaReR abc").value_or(""), "abc");
}

TEST(BearerToken, ExtraSpacesAroundTheTokenAreDropped) {
    EXPECT_EQ(bearer_token("Bearer    abc").value_or(""), "abc");
    EXPECT_EQ(bearer_token("Bearer abc   ").value_or(""), "abc");
    EXPECT_EQ(bearer_token("Bearer   abc  ").value_or(""), "abc");
}

TEST(BearerToken, RefusesAnotherScheme) {
    EXPECT_FALSE(bearer_token("Basic x"));
    EXPECT_FALSE(bearer_token("Basic dXNlcjpwYXNz"));
    EXPECT_FALSE(bearer_token("Bearerx abc"));
    EXPECT_FALSE(bearer_token("Bear abc"));
    EXPECT_FALSE(bearer_token("Token abc"));
    // The allowed path with the same token, so the refusals above are about the scheme.
    EXPECT_TRUE(bearer_token("Bearer abc"));
}

TEST(BearerToken, RefusesAMissingOrEmptyToken) {
    EXPECT_FALSE(bearer_token(""));
    EXPECT_FALSE(bearer_token("Bearer"));
    EXPECT_FALSE(bearer_token("Bearer "));
    EXPECT_FALSE(bearer_token("Bearer      "));
    // The scheme must be followed by a space, not glued to the token.
    EXPECT_FALSE(bearer_token("Bearerabc"));
    EXPECT_TRUE(bearer_token("Bearer a"));
}

TEST(BearerToken, RefusesATokenWithASpaceOrControlCharacter) {
    EXPECT_FALSE(bearer_token("Bearer abc def"));
    EXPECT_FALSE(bearer_token("Bearer abc\tdef"));
    EXPECT_FALSE(bearer_token("Bearer abc\r\n"));
    EXPECT_FALSE(bearer_token("Bearer abc\ndef"));
    EXPECT_FALSE(
        bearer_token("Bearer \x01"
                     "abc"));
    EXPECT_FALSE(bearer_token("Bearer abc\x7f"));
    EXPECT_FALSE(bearer_token("Bearer abc\xc3\xa9"));  // non-ASCII
    EXPECT_FALSE(bearer_token("Bearer abc\0def"s));    // embedded NUL
    // A tab is not the separator either.
    EXPECT_FALSE(bearer_token("Bearer\tabc"));
    // Printable ASCII all the way is fine.
    EXPECT_EQ(bearer_token("Bearer !~abc").value_or(""), "!~abc");
}

TEST(PatternMatches, ExactNameMatchesOnlyItself) {
    EXPECT_TRUE(pattern_matches("lineup", "lineup"));
    EXPECT_FALSE(pattern_matches("lineup", "lineups"));
    EXPECT_FALSE(pattern_matches("lineup", "lineu"));
    EXPECT_FALSE(pattern_matches("lineup", "Lineup"));
    EXPECT_FALSE(pattern_matches("lineup", ""));
}

TEST(PatternMatches, PrefixStarMatchesEveryNameWithThePrefix) {
    EXPECT_TRUE(pattern_matches("lineup.*", "lineup.main"));
    EXPECT_TRUE(pattern_matches("lineup.*", "lineup.stage.2"));
    EXPECT_TRUE(pattern_matches("lineup.*", "lineup."));
    EXPECT_FALSE(pattern_matches("lineup.*", "lineupx"));
    EXPECT_FALSE(pattern_matches("lineup.*", "lineup"));
    EXPECT_FALSE(pattern_matches("lineup.*", "xlineup.main"));
    EXPECT_FALSE(pattern_matches("lineup.*", ""));
}

TEST(PatternMatches, StarAloneMatchesEverything) {
    EXPECT_TRUE(pattern_matches("*", "anything"));
    EXPECT_TRUE(pattern_matches("*", "lineup.main"));
    EXPECT_TRUE(pattern_matches("*", ""));
}

TEST(PatternMatches, StarInTheMiddleIsLiteral) {
    // Only a trailing * is a wildcard.
    EXPECT_FALSE(pattern_matches("a*b", "axxb"));
    EXPECT_TRUE(pattern_matches("a*b", "a*b"));
}

TEST(PatternMatches, EmptyPatternGrantsNoRealAudience) {
    EXPECT_FALSE(pattern_matches("", "lineup"));
    EXPECT_FALSE(pattern_matches("", "*"));
    EXPECT_FALSE(pattern_matches("", "a"));
    EXPECT_TRUE(pattern_matches("a", "a"));
}

}  // namespace
}  // namespace herald::security
