#include "security/admin_keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace herald::security {
namespace {

using ::testing::HasSubstr;

std::string sha256_hex(std::string_view data) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char b : d) {
        out += hex[b >> 4];
        out += hex[b & 0xf];
    }
    return out;
}

std::string line(std::string_view name, std::string_view role, std::string_view tenant,
                 std::string_view key) {
    return std::string(name) + " " + std::string(role) + " " + std::string(tenant) +
           " sha256:" + sha256_hex(key);
}

// ---- parse ----------------------------------------------------------------

TEST(AdminKeysParse, ReadsLinesWithCommentsBlankLinesAndCrlf) {
    const std::string text =
        "# Herald ops keys\n"
        "\n" +
        line("ops", "admin", "*", "key-ops") + "\r\n" + "   \t \n" + "  # indented comment\n" +
        line("fest-pub", "publisher", "fest", "key-pub") + "\r\n" + "\t" +
        line("dash", "viewer", "fest", "key-view") + "   \n";
    const auto keys = admin_keys::parse(text, "keys.txt");
    ASSERT_TRUE(keys) << keys.err().describe();
    EXPECT_EQ(keys->size(), 3u);

    const auto ops = keys->authenticate("key-ops");
    ASSERT_TRUE(ops);
    EXPECT_EQ(ops->name, "ops");
    EXPECT_EQ(ops->role, role::admin);
    EXPECT_EQ(ops->tenant, "*");

    const auto pub = keys->authenticate("key-pub");
    ASSERT_TRUE(pub);
    EXPECT_EQ(pub->name, "fest-pub");
    EXPECT_EQ(pub->role, role::publisher);
    EXPECT_EQ(pub->tenant, "fest");

    const auto view = keys->authenticate("key-view");
    ASSERT_TRUE(view);
    EXPECT_EQ(view->name, "dash");
    EXPECT_EQ(view->role, role::viewer);
    EXPECT_EQ(view->tenant, "fest");
}

TEST(AdminKeysParse, LastLineWithoutNewlineAndUppercaseHex) {
    std::string hex = sha256_hex("k");
    for (auto& c : hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto keys = admin_keys::parse("a admin * sha256:" + hex, "f");
    ASSERT_TRUE(keys) << keys.err().describe();
    EXPECT_TRUE(keys->authenticate("k"));
}

struct malformed_case {
    std::string text;
    std::string field;  // what the error must name
    int line;
    friend void PrintTo(const malformed_case& c, std::ostream* os) { *os << '"' << c.text << '"'; }
};

class AdminKeysMalformed : public ::testing::TestWithParam<malformed_case> {};

TEST_P(AdminKeysMalformed, IsRefusedWithFileLineAndField) {
    const auto& c = GetParam();
    const std::string valid = line("good", "admin", "*", "secret") + "\n";
    // The bad line comes after a valid one and a comment, so the line number is counted.
    const std::string text = valid + "# comment\n" + c.text + "\n";
    const auto keys = admin_keys::parse(text, "/etc/herald/keys");
    ASSERT_FALSE(keys) << "accepted: " << c.text;
    EXPECT_EQ(keys.err().code, std::make_error_code(std::errc::invalid_argument));
    EXPECT_THAT(keys.err().detail, HasSubstr("/etc/herald/keys:" + std::to_string(c.line) + ":"));
    EXPECT_THAT(keys.err().detail, HasSubstr(c.field));
}

const std::string good_secret = "sha256:" + std::string(64, 'a');
const std::string name_65 = std::string(65, 'n') + " admin * " + good_secret;
const std::string tenant_65 = "n admin " + std::string(65, 't') + " " + good_secret;
const std::string name_bad = "bad/name admin * " + good_secret;
const std::string role_bad = "n root * " + good_secret;
const std::string role_case = "n Admin * " + good_secret;
const std::string tenant_upper = "n admin Fest " + good_secret;
const std::string tenant_star2 = "n admin ** " + good_secret;
const std::string secret_short = "n admin * sha256:" + std::string(63, 'a');
const std::string secret_long = "n admin * sha256:" + std::string(65, 'a');
const std::string secret_nonhex = "n admin * sha256:" + std::string(63, 'a') + "g";
const std::string secret_prefix = "n admin * sha512:" + std::string(64, 'a');
const std::string secret_plain = "n admin * herald_plaintextkey";
const std::string three = "n admin *";
const std::string five = "n admin * " + good_secret + " extra";
const std::string dup = "good viewer * " + good_secret;

INSTANTIATE_TEST_SUITE_P(
    Fields, AdminKeysMalformed,
    ::testing::Values(malformed_case{name_65, "NAME", 3}, malformed_case{name_bad, "NAME", 3},
                      malformed_case{role_bad, "ROLE", 3}, malformed_case{role_case, "ROLE", 3},
                      malformed_case{tenant_65, "TENANT", 3}, malformed_case{tenant_upper, "TENANT", 3},
                      malformed_case{tenant_star2, "TENANT", 3}, malformed_case{secret_short, "SECRET", 3},
                      malformed_case{secret_long, "SECRET", 3}, malformed_case{secret_nonhex, "SECRET", 3},
                      malformed_case{secret_prefix, "SECRET", 3}, malformed_case{secret_plain, "SECRET", 3},
                      malformed_case{three, "got 3 field(s)", 3}, malformed_case{five, "got 5 field(s)", 3},
                      malformed_case{dup, "\"good\" is used twice", 3}));

TEST(AdminKeysParse, EachFieldAtItsLimitIsAccepted) {
    // The allowed side of the limits refused above.
    const std::string text = std::string(64, 'n') + " admin " + std::string(64, 't') + " " + good_secret +
                             "\n" + "A.b_c-9 viewer fest-1.x_y " + good_secret + "\n";
    const auto keys = admin_keys::parse(text, "f");
    ASSERT_TRUE(keys) << keys.err().describe();
    EXPECT_EQ(keys->size(), 2u);
}

TEST(AdminKeysParse, EmptyFileOrOnlyCommentsIsRefused) {
    for (const char* text : {"", "\n\n", "# nothing here\n", "   \r\n"}) {
        const auto keys = admin_keys::parse(text, "keys.txt");
        ASSERT_FALSE(keys) << "accepted: \"" << text << "\"";
        EXPECT_THAT(keys.err().detail, HasSubstr("keys.txt"));
        EXPECT_THAT(keys.err().detail, HasSubstr("holds no key"));
    }
    EXPECT_TRUE(admin_keys::parse(line("a", "admin", "*", "k"), "keys.txt"));
}

TEST(AdminKeysLoadFile, MissingFileIsAnErrorNamingIt) {
    const auto keys = admin_keys::load_file("/nonexistent/herald/keys.txt");
    ASSERT_FALSE(keys);
    EXPECT_THAT(keys.err().detail, HasSubstr("/nonexistent/herald/keys.txt"));
}

// ---- authenticate ---------------------------------------------------------

TEST(AdminKeysAuthenticate, OnlyTheExactKeyIsAccepted) {
    const std::string key = "herald_s3cr3t-KEY_value";
    const auto keys = admin_keys::parse(line("ops", "publisher", "fest", key), "f");
    ASSERT_TRUE(keys);

    const auto who = keys->authenticate(key);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->name, "ops");
    EXPECT_EQ(who->role, role::publisher);
    EXPECT_EQ(who->tenant, "fest");

    EXPECT_FALSE(keys->authenticate("wrong"));
    EXPECT_FALSE(keys->authenticate("herald_s3cr3t-KEY_valuf"));  // last character differs
    EXPECT_FALSE(keys->authenticate("herald_s3cr3t-KEY_valu"));   // prefix
    EXPECT_FALSE(keys->authenticate(key + " "));
    EXPECT_FALSE(keys->authenticate(""));
    // The file's digest itself is not a key.
    EXPECT_FALSE(keys->authenticate(admin_keys::digest_text(key)));
}

TEST(AdminKeysAuthenticate, PicksThePrincipalOfTheMatchingKey) {
    const auto keys = admin_keys::parse(
        line("a", "admin", "*", "key-a") + "\n" + line("b", "viewer", "other", "key-b") + "\n", "f");
    ASSERT_TRUE(keys);
    EXPECT_EQ(keys->authenticate("key-a").value().name, "a");
    EXPECT_EQ(keys->authenticate("key-b").value().name, "b");
    EXPECT_EQ(keys->authenticate("key-b").value().role, role::viewer);
    EXPECT_FALSE(keys->authenticate("key-c"));
}

// ---- digest_text, new_key -------------------------------------------------

TEST(AdminKeysDigest, IsSha256PrefixAndLowercaseHex) {
    for (const std::string& key :
         std::vector<std::string>{"", "abc", "herald_0123456789", std::string(1000, 'x')}) {
        const std::string d = admin_keys::digest_text(key);
        EXPECT_EQ(d, "sha256:" + sha256_hex(key));
        EXPECT_EQ(d.size(), 7u + 64u);
    }
    // A well-known vector.
    EXPECT_EQ(admin_keys::digest_text("abc"),
              "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_NE(admin_keys::digest_text("abc"), admin_keys::digest_text("abd"));
}

TEST(AdminKeysDigest, RoundTripsThroughAKeysFile) {
    const std::string key = admin_keys::new_key();
    const auto keys = admin_keys::parse("cli admin * " + admin_keys::digest_text(key), "f");
    ASSERT_TRUE(keys) << keys.err().describe();
    EXPECT_TRUE(keys->authenticate(key));
    EXPECT_FALSE(keys->authenticate(admin_keys::new_key()));
}

TEST(AdminKeysNewKey, IsHeraldPrefixAnd43Base64UrlCharacters) {
    std::set<std::string> seen;
    for (int i = 0; i < 32; ++i) {
        const std::string k = admin_keys::new_key();
        ASSERT_EQ(k.size(), 7u + 43u) << k;
        EXPECT_EQ(k.substr(0, 7), "herald_");
        for (const char c : k.substr(7)) {
            EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')
                << "character '" << c << "' in " << k;
        }
        seen.insert(k);
    }
    EXPECT_EQ(seen.size(), 32u) << "new_key() repeated a key";
}

// ---- generated ------------------------------------------------------------

class AdminKeysGenerated : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/herald-admin-keys-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(root_, ec);
    }
    static mode_t mode_of(const std::string& path) {
        struct stat st {};
        EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
        return st.st_mode & 07777;
    }
    static std::string first_line(const std::string& path) {
        std::ifstream in(path);
        std::string l;
        std::getline(in, l);
        return l;
    }

    std::string root_;
};

TEST_F(AdminKeysGenerated, CreatesAKeyFileReadableOnlyByItsOwner) {
    const std::string dir = root_ + "/data";
    bool created = false;
    const auto keys = admin_keys::generated(dir, created);
    ASSERT_TRUE(keys) << keys.err().describe();
    EXPECT_TRUE(created);
    EXPECT_EQ(keys->size(), 1u);

    const std::string path = dir + "/admin.key";
    EXPECT_EQ(mode_of(path), 0600u);
    EXPECT_EQ(mode_of(dir), 0700u);

    const std::string key = first_line(path);
    EXPECT_EQ(key.size(), 50u);
    EXPECT_EQ(key.substr(0, 7), "herald_");
    const auto who = keys->authenticate(key);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->name, "admin");
    EXPECT_EQ(who->role, role::admin);
    EXPECT_EQ(who->tenant, "*");
    EXPECT_TRUE(who->all_tenants());
    EXPECT_FALSE(keys->authenticate(key.substr(0, key.size() - 1)));
}

TEST_F(AdminKeysGenerated, SecondStartReusesTheSameKey) {
    bool created = false;
    ASSERT_TRUE(admin_keys::generated(root_, created));
    ASSERT_TRUE(created);
    const std::string key = first_line(root_ + "/admin.key");

    bool again = true;
    const auto keys = admin_keys::generated(root_, again);
    ASSERT_TRUE(keys) << keys.err().describe();
    EXPECT_FALSE(again);
    EXPECT_EQ(first_line(root_ + "/admin.key"), key);
    EXPECT_TRUE(keys->authenticate(key));
    EXPECT_FALSE(keys->authenticate(admin_keys::new_key()));
}

TEST_F(AdminKeysGenerated, TightensAnExistingDirectoryTo0700) {
    ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);
    bool created = false;
    ASSERT_TRUE(admin_keys::generated(root_, created));
    EXPECT_EQ(mode_of(root_), 0700u);
}

TEST_F(AdminKeysGenerated, ReusesAKeyFileWrittenByTheOperator) {
    {
        std::ofstream out(root_ + "/admin.key");
        out << "my-own-admin-key \r\n";
    }
    bool created = true;
    const auto keys = admin_keys::generated(root_, created);
    ASSERT_TRUE(keys) << keys.err().describe();
    EXPECT_FALSE(created);
    EXPECT_TRUE(keys->authenticate("my-own-admin-key"));
    EXPECT_FALSE(keys->authenticate("my-own-admin-key "));
    EXPECT_EQ(first_line(root_ + "/admin.key"), "my-own-admin-key \r");  // left as it was
}

TEST_F(AdminKeysGenerated, AnEmptyKeyFileIsAnError) {
    { std::ofstream out(root_ + "/admin.key"); }
    bool created = true;
    const auto keys = admin_keys::generated(root_, created);
    ASSERT_FALSE(keys);
    EXPECT_FALSE(created);
    EXPECT_THAT(keys.err().detail, HasSubstr("admin.key"));
    EXPECT_THAT(keys.err().detail, HasSubstr("empty"));
    // Not silently replaced by a new key either.
    EXPECT_EQ(std::filesystem::file_size(root_ + "/admin.key"), 0u);
}

TEST_F(AdminKeysGenerated, AnUncreatableDirectoryIsAnError) {
    {
        std::ofstream out(root_ + "/file");
        out << "x";
    }
    bool created = true;
    const auto keys = admin_keys::generated(root_ + "/file/data", created);
    EXPECT_FALSE(keys);
    EXPECT_FALSE(created);
}

// ---- principal, tenants ---------------------------------------------------

TEST(Principal, AllTenantsMayActForAnyTenant) {
    const principal all{"ops", role::admin, "*"};
    EXPECT_TRUE(all.all_tenants());
    EXPECT_TRUE(all.may_act_for("fest"));
    EXPECT_TRUE(all.may_act_for("default"));
}

TEST(Principal, ATenantPrincipalMayActOnlyForItsTenant) {
    const principal p{"pub", role::publisher, "fest"};
    EXPECT_FALSE(p.all_tenants());
    EXPECT_TRUE(p.may_act_for("fest"));
    EXPECT_FALSE(p.may_act_for("other"));
    EXPECT_FALSE(p.may_act_for("fest2"));
    EXPECT_FALSE(p.may_act_for("*"));
    EXPECT_FALSE(p.may_act_for(""));
}

TEST(RoleName, NamesEachRole) {
    EXPECT_EQ(role_name(role::admin), "admin");
    EXPECT_EQ(role_name(role::publisher), "publisher");
    EXPECT_EQ(role_name(role::viewer), "viewer");
}

TEST(IsValidTenant, AcceptsLowercaseDigitsDotUnderscoreDash) {
    EXPECT_TRUE(is_valid_tenant("default"));
    EXPECT_TRUE(is_valid_tenant("fest-2024.main_stage"));
    EXPECT_TRUE(is_valid_tenant("a"));
    EXPECT_TRUE(is_valid_tenant("0"));
    EXPECT_TRUE(is_valid_tenant(std::string(64, 'a')));
}

TEST(IsValidTenant, RefusesEverythingElse) {
    EXPECT_FALSE(is_valid_tenant(""));
    EXPECT_FALSE(is_valid_tenant(std::string(65, 'a')));
    EXPECT_FALSE(is_valid_tenant("Fest"));
    EXPECT_FALSE(is_valid_tenant("*"));
    EXPECT_FALSE(is_valid_tenant("fest main"));
    EXPECT_FALSE(is_valid_tenant("fest/main"));
    EXPECT_FALSE(is_valid_tenant("fest\n"));
    EXPECT_FALSE(is_valid_tenant("f\xc3\xa9te"));
    EXPECT_FALSE(is_valid_tenant(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace herald::security
