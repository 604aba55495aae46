// The registry's durable store: subscriptions and change-feed positions in
// <dir>/registry.sqlite3, what survives a reopen, and that an erased person
// is gone from the database file and its write-ahead log.
#include "registry/store.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

namespace herald::registry {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

herald::v1::Subscription subscription(const std::string& id, const std::string& address) {
    herald::v1::Subscription s;
    s.set_recipient_id(id);
    s.set_tenant("fest-a");
    s.add_audiences("lineup.rock");
    s.add_audiences("news");
    s.set_channel(herald::v1::CHANNEL_WEBHOOK);
    s.set_address(address);
    s.mutable_consent()->mutable_given_at()->set_seconds(1714557600);
    s.mutable_consent()->set_source("web-form");
    s.add_tags("vip");
    return s;
}

bool same(const herald::v1::Subscription& a, const herald::v1::Subscription& b) {
    return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

/// The bytes of a file; empty when it does not exist.
std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A fresh data directory per test, removed even when an assertion fails.
class RegistryStore : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/herald-registry-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
    }
    void TearDown() override {
        if (!dir.empty())
            std::filesystem::remove_all(dir);
    }

    std::unique_ptr<store> open_store() {
        auto s = store::open(dir);
        EXPECT_TRUE(s) << s.err().describe();
        return s ? std::move(*s) : nullptr;
    }

    std::set<std::string> stored_ids(store& st) {
        std::set<std::string> ids;
        auto n = st.for_each([&](herald::v1::Subscription&& s) { ids.insert(s.recipient_id()); });
        EXPECT_TRUE(n) << n.err().describe();
        if (n) {
            EXPECT_EQ(*n, ids.size());
        }
        return ids;
    }

    std::string dir;
};

TEST_F(RegistryStore, OpenCreatesTheDatabaseFile) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    const std::string expected = dir + "/registry.sqlite3";
    EXPECT_EQ(st->path(), expected);
    EXPECT_TRUE(std::filesystem::is_regular_file(expected));
}

TEST_F(RegistryStore, OpenCreatesMissingNestedDirectories) {
    const std::string nested = dir + "/a/b/c";
    auto st = store::open(nested);
    ASSERT_TRUE(st) << st.err().describe();
    EXPECT_TRUE(std::filesystem::is_directory(nested));
    EXPECT_TRUE(std::filesystem::is_regular_file(nested + "/registry.sqlite3"));
    EXPECT_EQ((*st)->path(), nested + "/registry.sqlite3");
}

TEST_F(RegistryStore, OpenOnAFileInsteadOfADirectoryFailsNamingThePath) {
    const std::string file = dir + "/not-a-dir";
    std::ofstream(file) << "x";
    ASSERT_TRUE(std::filesystem::is_regular_file(file));

    auto st = store::open(file);
    ASSERT_FALSE(st);
    EXPECT_TRUE(st.err().code);
    EXPECT_THAT(st.err().detail, HasSubstr(file));

    const std::string below = file + "/data";
    st = store::open(below);
    ASSERT_FALSE(st);
    EXPECT_TRUE(st.err().code);
    EXPECT_THAT(st.err().detail, HasSubstr(below));
    EXPECT_EQ(read_bytes(file), "x") << "the file in the way was modified";
}

TEST_F(RegistryStore, PutThenGetReturnsAnEqualMessage) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    auto s = subscription("user-1", "https://hooks.example.com/one");
    s.mutable_last_inbound_at()->set_seconds(1714590000);
    ASSERT_TRUE(st->put(s));
    const auto got = st->get("fest-a", "user-1");
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(same(*got, s)) << got->DebugString();
}

TEST_F(RegistryStore, TheSubscribersOwnWebhookSecretSurvivesAReopenAndIsErasedWithThePerson) {
    // Stored in the subscription's blob (no schema change, no migration):
    // after a restart the subscriber still signs with it; after forget it is
    // gone from the files like the address.
    const std::string secret = "whsec_c3RvcmUtc2VjcmV0LTJkOGUxYTQ0Yzk=";
    const std::string db = dir + "/registry.sqlite3";
    auto s = subscription("user-1", "https://hooks.example.com/one");
    s.set_webhook_secret(secret);
    {
        auto st = open_store();
        ASSERT_NE(st, nullptr);
        ASSERT_TRUE(st->begin());
        ASSERT_TRUE(st->put(s));
        ASSERT_TRUE(st->commit());
    }
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    const auto got = st->get("fest-a", "user-1");
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->webhook_secret(), secret);
    ASSERT_TRUE(st->checkpoint());
    ASSERT_NE(read_bytes(db).find("c3RvcmUtc2VjcmV0"), std::string::npos) << "secret not found before erase";
    ASSERT_TRUE(st->begin());
    ASSERT_TRUE(st->erase("fest-a", "user-1"));
    ASSERT_TRUE(st->commit());
    ASSERT_TRUE(st->checkpoint());
    EXPECT_EQ((read_bytes(db) + read_bytes(db + "-wal")).find("c3RvcmUtc2VjcmV0"), std::string::npos);
}

TEST_F(RegistryStore, GetOfAnUnknownRecipientIsNullopt) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    EXPECT_FALSE(st->get("fest-a", "nobody").has_value());
    ASSERT_TRUE(st->put(subscription("user-1", "https://hooks.example.com/one")));
    EXPECT_FALSE(st->get("fest-a", "nobody").has_value());
    EXPECT_FALSE(st->get("fest-a", "user-").has_value());
}

TEST_F(RegistryStore, PutOfTheSameRecipientReplaces) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    ASSERT_TRUE(st->put(subscription("user-1", "https://hooks.example.com/old")));
    auto replacement = subscription("user-1", "https://hooks.example.com/new");
    replacement.clear_tags();
    replacement.mutable_opted_out_at()->set_seconds(1714600000);
    ASSERT_TRUE(st->put(replacement));

    const auto got = st->get("fest-a", "user-1");
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(same(*got, replacement)) << got->DebugString();
    EXPECT_EQ(stored_ids(*st), std::set<std::string>{"user-1"});
}

TEST_F(RegistryStore, EraseRemoves) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    ASSERT_TRUE(st->put(subscription("user-1", "https://hooks.example.com/one")));
    ASSERT_TRUE(st->put(subscription("user-2", "https://hooks.example.com/two")));
    ASSERT_TRUE(st->erase("fest-a", "user-1"));
    EXPECT_FALSE(st->get("fest-a", "user-1").has_value());
    EXPECT_TRUE(st->get("fest-a", "user-2").has_value());
    EXPECT_EQ(stored_ids(*st), std::set<std::string>{"user-2"});
}

TEST_F(RegistryStore, EraseOfAnUnknownRecipientIsFine) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    auto r = st->erase("fest-a", "nobody");
    EXPECT_TRUE(r) << r.err().describe();
    ASSERT_TRUE(st->put(subscription("user-1", "https://hooks.example.com/one")));
    r = st->erase("fest-a", "nobody");
    EXPECT_TRUE(r) << r.err().describe();
    EXPECT_TRUE(st->get("fest-a", "user-1").has_value());
}

TEST_F(RegistryStore, ForEachVisitsEverySubscriptionAndCountsThem) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    std::size_t calls = 0;
    auto n = st->for_each([&](herald::v1::Subscription&&) { ++calls; });
    ASSERT_TRUE(n) << n.err().describe();
    EXPECT_EQ(*n, 0u);
    EXPECT_EQ(calls, 0u);

    std::map<std::string, herald::v1::Subscription> put;
    ASSERT_TRUE(st->begin());
    for (int i = 0; i < 5; ++i) {
        auto s = subscription("user-" + std::to_string(i), "https://hooks.example.com/" + std::to_string(i));
        ASSERT_TRUE(st->put(s));
        put[s.recipient_id()] = s;
    }
    ASSERT_TRUE(st->commit());

    std::map<std::string, herald::v1::Subscription> seen;
    n = st->for_each([&](herald::v1::Subscription&& s) {
        EXPECT_EQ(seen.count(s.recipient_id()), 0u) << "visited twice: " << s.recipient_id();
        seen[s.recipient_id()] = std::move(s);
    });
    ASSERT_TRUE(n) << n.err().describe();
    EXPECT_EQ(*n, 5u);
    ASSERT_EQ(seen.size(), put.size());
    for (const auto& [id, s] : put) {
        ASSERT_EQ(seen.count(id), 1u) << id;
        EXPECT_TRUE(same(seen[id], s)) << id;
    }
}

TEST_F(RegistryStore, FeedOffsetsPerPartition) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    EXPECT_THAT(st->feed_offsets(), IsEmpty());

    ASSERT_TRUE(st->begin());
    ASSERT_TRUE(st->set_feed_offset(0, 10));
    ASSERT_TRUE(st->set_feed_offset(2, 7));
    ASSERT_TRUE(st->set_feed_offset(0, 12));  // a later position replaces the earlier one
    ASSERT_TRUE(st->set_feed_offset(5, std::int64_t{1} << 40));
    ASSERT_TRUE(st->commit());

    const std::map<std::int32_t, std::int64_t> expected = {{0, 12}, {2, 7}, {5, std::int64_t{1} << 40}};
    EXPECT_EQ(st->feed_offsets(), expected);

    ASSERT_TRUE(st->reset_feed_offsets());
    EXPECT_THAT(st->feed_offsets(), IsEmpty());
}

TEST_F(RegistryStore, ResetFeedOffsetsKeepsSubscriptions) {
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    ASSERT_TRUE(st->begin());
    ASSERT_TRUE(st->put(subscription("user-1", "https://hooks.example.com/one")));
    ASSERT_TRUE(st->set_feed_offset(1, 99));
    ASSERT_TRUE(st->commit());
    ASSERT_TRUE(st->reset_feed_offsets());
    EXPECT_THAT(st->feed_offsets(), IsEmpty());
    EXPECT_TRUE(st->get("fest-a", "user-1").has_value());
}

TEST_F(RegistryStore, CommittedChangesSurviveAReopen) {
    const auto one = subscription("user-1", "https://hooks.example.com/one");
    const auto two = subscription("user-2", "https://hooks.example.com/two");
    {
        auto st = open_store();
        ASSERT_NE(st, nullptr);
        ASSERT_TRUE(st->begin());
        ASSERT_TRUE(st->put(one));
        ASSERT_TRUE(st->put(two));
        ASSERT_TRUE(st->put(subscription("user-3", "https://hooks.example.com/three")));
        ASSERT_TRUE(st->erase("fest-a", "user-3"));
        ASSERT_TRUE(st->set_feed_offset(0, 41));
        ASSERT_TRUE(st->set_feed_offset(3, 8));
        ASSERT_TRUE(st->commit());
    }
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    const auto got1 = st->get("fest-a", "user-1");
    const auto got2 = st->get("fest-a", "user-2");
    ASSERT_TRUE(got1.has_value());
    ASSERT_TRUE(got2.has_value());
    EXPECT_TRUE(same(*got1, one));
    EXPECT_TRUE(same(*got2, two));
    EXPECT_FALSE(st->get("fest-a", "user-3").has_value());
    EXPECT_EQ(stored_ids(*st), (std::set<std::string>{"user-1", "user-2"}));
    const std::map<std::int32_t, std::int64_t> expected = {{0, 41}, {3, 8}};
    EXPECT_EQ(st->feed_offsets(), expected);
}

TEST_F(RegistryStore, UncommittedChangesAreNotKept) {
    {
        auto st = open_store();
        ASSERT_NE(st, nullptr);
        ASSERT_TRUE(st->put(subscription("user-1", "https://hooks.example.com/one")));  // autocommit
        ASSERT_TRUE(st->begin());
        ASSERT_TRUE(st->put(subscription("user-2", "https://hooks.example.com/two")));
        ASSERT_TRUE(st->set_feed_offset(0, 5));
        // destroyed without commit()
    }
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    EXPECT_TRUE(st->get("fest-a", "user-1").has_value());
    EXPECT_FALSE(st->get("fest-a", "user-2").has_value());
    EXPECT_THAT(st->feed_offsets(), IsEmpty());
}

TEST_F(RegistryStore, AnErasedAddressIsGoneFromTheDatabaseAndItsLog) {
    const std::string marker = "https://erase-me-7f3a9c1d.example/hook";
    const std::string db = dir + "/registry.sqlite3";
    {
        auto st = open_store();
        ASSERT_NE(st, nullptr);
        ASSERT_TRUE(st->begin());
        ASSERT_TRUE(st->put(subscription("user-1", "https://hooks.example.com/keep")));
        ASSERT_TRUE(st->put(subscription("user-2", marker)));
        ASSERT_TRUE(st->put(subscription("user-3", "https://hooks.example.com/keep-too")));
        ASSERT_TRUE(st->commit());
        ASSERT_TRUE(st->checkpoint());
        // The test must be able to see the marker, or its absence proves nothing.
        const std::string before = read_bytes(db) + read_bytes(db + "-wal");
        ASSERT_NE(before.find(marker), std::string::npos) << "marker not found in the files before erase";

        ASSERT_TRUE(st->begin());
        ASSERT_TRUE(st->erase("fest-a", "user-2"));
        ASSERT_TRUE(st->commit());
        ASSERT_TRUE(st->checkpoint());

        EXPECT_EQ(read_bytes(db).find(marker), std::string::npos) << "erased address still in " << db;
        EXPECT_EQ(read_bytes(db + "-wal").find(marker), std::string::npos)
            << "erased address still in " << db << "-wal";
        EXPECT_TRUE(st->get("fest-a", "user-1").has_value());
        EXPECT_FALSE(st->get("fest-a", "user-2").has_value());
    }
    EXPECT_EQ(read_bytes(db).find(marker), std::string::npos) << "erased address in " << db << " after close";
    EXPECT_EQ(read_bytes(db + "-wal").find(marker), std::string::npos);
}

TEST_F(RegistryStore, AnErasedAddressIsGoneEvenAfterItWasRead) {
    // store::get() once left its statement on the row it found, holding a
    // read transaction open: the checkpoint after an erase then failed and
    // the erased address stayed in the file.
    const std::string marker = "https://erase-me-after-read-5b21e0.example/hook";
    const std::string db = dir + "/registry.sqlite3";
    auto st = open_store();
    ASSERT_NE(st, nullptr);
    ASSERT_TRUE(st->begin());
    ASSERT_TRUE(st->put(subscription("user-1", "https://hooks.example.com/keep")));
    ASSERT_TRUE(st->put(subscription("user-2", marker)));
    ASSERT_TRUE(st->commit());
    ASSERT_TRUE(st->checkpoint());
    ASSERT_NE(read_bytes(db).find(marker), std::string::npos) << "marker not found in the file before erase";

    const auto read = st->get("fest-a", "user-2");  // e.g. the ops API showing the subscription
    ASSERT_TRUE(read.has_value());
    EXPECT_EQ(read->address(), marker);

    ASSERT_TRUE(st->begin());
    ASSERT_TRUE(st->erase("fest-a", "user-2"));
    ASSERT_TRUE(st->commit());
    auto c = st->checkpoint();
    EXPECT_TRUE(c) << c.err().describe();

    EXPECT_EQ(read_bytes(db).find(marker), std::string::npos) << "erased address still in " << db;
    EXPECT_EQ(read_bytes(db + "-wal").find(marker), std::string::npos)
        << "erased address still in " << db << "-wal";
}

}  // namespace
}  // namespace herald::registry
