// The outbound checkpoint store across an upgrade: a store written before
// broadcasts were keyed by tenant still resumes its interrupted broadcast
// with the recipients it had finished, and still refuses a redelivery.
// And the started marks of at-most-once channels: they survive a crash (the
// store reopened without a stop), a finished or refused delivery is not
// "interrupted", and only WhatsApp/SMS deliveries the crash interrupted
// become `unknown` — webhooks and the channels named in
// resend_unknown_channels are sent again.
#include "outbound/checkpoints.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "herald/v1/announcement.pb.h"
#include "outbound/options.h"

namespace herald::outbound {
namespace {

/// A broadcasts row as a store from before per-tenant keys holds it: the bare id.
bool insert_bare_broadcast(sqlite3* db, const std::string& blob, int seq) {
    sqlite3_stmt* insert = nullptr;
    if (sqlite3_prepare_v2(db, "INSERT INTO broadcasts VALUES ('alert-1', ?1, ?2, 0)", -1, &insert,
                           nullptr) != SQLITE_OK)
        return false;
    sqlite3_bind_blob(insert, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
    sqlite3_bind_int(insert, 2, seq);
    const bool ok = sqlite3_step(insert) == SQLITE_DONE;
    sqlite3_finalize(insert);
    return ok;
}

/// A fresh data directory per test, removed even when an assertion fails.
class Checkpoints : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/herald-ckpt-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
    }
    void TearDown() override {
        if (!dir.empty())
            std::filesystem::remove_all(dir);
    }
    std::string dir;
};

TEST_F(Checkpoints, AStoreWithBareIdsIsReKeyedByTenantAndStillResumes) {
    herald::v1::Announcement a;
    a.set_id("alert-1");
    a.set_tenant("fest-b");
    a.set_audience("lineup.x");
    const std::string blob = a.SerializeAsString();
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((dir + "/outbound.sqlite3").c_str(), &db), SQLITE_OK);
        for (const char* sql :
             {"CREATE TABLE broadcasts (id TEXT PRIMARY KEY, announcement BLOB NOT NULL, seq INTEGER NOT "
              "NULL, "
              "started INTEGER NOT NULL) WITHOUT ROWID",
              "CREATE TABLE finished (broadcast_id TEXT NOT NULL, recipient_id TEXT NOT NULL, PRIMARY KEY "
              "(broadcast_id, recipient_id)) WITHOUT ROWID",
              "CREATE TABLE completed (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID",
              "INSERT INTO finished VALUES ('alert-1', 'r1')",
              "INSERT INTO completed VALUES ('old-1', strftime('%s','now') * 1000000000)"}) {
            ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql;
        }
        ASSERT_TRUE(insert_bare_broadcast(db, blob, 7));
        sqlite3_close(db);
    }

    auto store = checkpoints::open(dir, std::chrono::milliseconds(200));
    ASSERT_TRUE(store) << store.err().detail;
    const auto interrupted = (*store)->load_unfinished();
    ASSERT_EQ(interrupted.size(), 1u);
    EXPECT_EQ(interrupted[0].seq, model::seq_no(7));
    ASSERT_TRUE(interrupted[0].done);
    EXPECT_EQ(interrupted[0].done->count("fest-b/r1"), 1u) << "the recipients it had finished were lost";

    auto again = (*store)->started(checkpoints::key("fest-b", "alert-1"), blob, model::seq_no(7));
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again) << "the running broadcast was not recognised under its tenant";
    auto redelivered = (*store)->started(checkpoints::key("default", "old-1"), blob, model::seq_no(3));
    ASSERT_TRUE(redelivered);
    EXPECT_FALSE(*redelivered) << "a recently completed broadcast would be sent again";
    auto other_tenant = (*store)->started(checkpoints::key("fest-b", "old-1"), blob, model::seq_no(4));
    ASSERT_TRUE(other_tenant);
    EXPECT_TRUE(*other_tenant);
    store->reset();
}

TEST_F(Checkpoints, BothFormsOfAKeyInOneStoreStillOpen) {
    // A data directory used by an old and a new version in turn: the re-keyed
    // form must not collide with the one already there.
    herald::v1::Announcement a;
    a.set_id("alert-1");
    const std::string blob = a.SerializeAsString();
    {
        auto store = checkpoints::open(dir, std::chrono::milliseconds(200));
        ASSERT_TRUE(store) << store.err().detail;
        auto first = (*store)->started(checkpoints::key("default", "alert-1"), blob, model::seq_no(1));
        ASSERT_TRUE(first && *first);
    }
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((dir + "/outbound.sqlite3").c_str(), &db), SQLITE_OK);
        ASSERT_TRUE(insert_bare_broadcast(db, blob, 1));
        for (const char* sql : {"INSERT INTO finished VALUES ('alert-1', 'r1')",
                                "INSERT INTO finished VALUES ('default' || char(31) || 'alert-1', 'r1')",
                                "INSERT INTO completed VALUES ('old-1', 1)",
                                "INSERT INTO completed VALUES ('default' || char(31) || 'old-1', 1)"}) {
            ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql;
        }
        sqlite3_close(db);
    }
    auto store = checkpoints::open(dir, std::chrono::milliseconds(200));
    ASSERT_TRUE(store) << store.err().detail;
    const auto interrupted = (*store)->load_unfinished();
    ASSERT_EQ(interrupted.size(), 1u);
    EXPECT_EQ(interrupted[0].done->count("default/r1"), 1u);
    store->reset();
}

using herald::v1::CHANNEL_SMS;
using herald::v1::CHANNEL_WEBHOOK;
using herald::v1::CHANNEL_WHATSAPP;

/// A store with one running broadcast (default/b1), as the router leaves it.
std::unique_ptr<checkpoints> store_with_broadcast(const std::string& dir) {
    auto store = checkpoints::open(dir, std::chrono::milliseconds(200));
    if (!store)
        return nullptr;
    herald::v1::Announcement a;
    a.set_id("b1");
    a.set_audience("fest");
    auto started =
        (*store)->started(checkpoints::key("default", "b1"), a.SerializeAsString(), model::seq_no(4));
    if (!started || !*started)
        return nullptr;
    return std::move(*store);
}

/// What the crashed process left: the store closed without stop() (nothing
/// is pending at the call sites, so the destructor's flush writes nothing).
void crash(std::unique_ptr<checkpoints>& store) {
    store.reset();
}

TEST_F(Checkpoints, StartedMarksSurviveACrashAndOnlyUnansweredOnesAreInterrupted) {
    auto store = store_with_broadcast(dir);
    ASSERT_TRUE(store);
    const std::string b1 = checkpoints::key("default", "b1");
    // Finished before the batch below: written with it, in its transaction.
    store->finished(b1, "default/answered-early");
    ASSERT_TRUE(store->mark_started({{"default", "b1", "default/w1", CHANNEL_WHATSAPP},
                                     {"default", "b1", "default/s1", CHANNEL_SMS},
                                     {"default", "b1", "default/h1", CHANNEL_WEBHOOK},
                                     {"default", "b1", "default/w2", CHANNEL_WHATSAPP},
                                     {"default", "b1", "default/w3", CHANNEL_WHATSAPP},
                                     {"default", "b1", "default/answered-early", CHANNEL_WHATSAPP}}));
    EXPECT_EQ(store->start_batches(), 1u) << "one transaction per batch";
    store->finished(b1, "default/w2");     // answered, checkpointed
    store->not_started(b1, "default/w3");  // throttled: certainly not accepted, will be sent again
    store->flush();
    crash(store);  // w1, s1, h1: requests sent, no answer checkpointed

    auto reopened = checkpoints::open(dir, std::chrono::milliseconds(200));
    ASSERT_TRUE(reopened) << reopened.err().detail;
    const auto interrupted = (*reopened)->load_unfinished();
    ASSERT_EQ(interrupted.size(), 1u);
    const auto& u = interrupted[0];
    ASSERT_TRUE(u.done && u.interrupted);
    EXPECT_EQ(u.done->count("default/w2"), 1u);
    EXPECT_EQ(u.done->count("default/answered-early"), 1u)
        << "a finished delivery pending at the batch was not written with it";
    std::map<std::string, herald::v1::Channel> got(u.interrupted->begin(), u.interrupted->end());
    const std::map<std::string, herald::v1::Channel> want{
        {"default/w1", CHANNEL_WHATSAPP}, {"default/s1", CHANNEL_SMS}, {"default/h1", CHANNEL_WEBHOOK}};
    EXPECT_EQ(got, want);
}

TEST_F(Checkpoints, InterruptedWhatsAppAndSmsBecomeUnknownWebhooksAndChosenChannelsAreResent) {
    const std::unordered_map<std::string, herald::v1::Channel> interrupted{
        {"default/w1", CHANNEL_WHATSAPP}, {"default/s1", CHANNEL_SMS}, {"default/h1", CHANNEL_WEBHOOK}};
    gateway_options defaults;
    EXPECT_TRUE(at_most_once(CHANNEL_WHATSAPP, defaults));
    EXPECT_TRUE(at_most_once(CHANNEL_SMS, defaults));
    EXPECT_FALSE(at_most_once(CHANNEL_WEBHOOK, defaults)) << "webhooks carry idempotency keys";
    EXPECT_EQ(unknown_after_crash(interrupted, defaults),
              (std::unordered_set<std::string>{"default/w1", "default/s1"}));

    gateway_options resend_whatsapp;
    resend_whatsapp.resend_unknown_whatsapp = true;
    EXPECT_FALSE(at_most_once(CHANNEL_WHATSAPP, resend_whatsapp));
    EXPECT_EQ(unknown_after_crash(interrupted, resend_whatsapp),
              (std::unordered_set<std::string>{"default/s1"}));

    gateway_options resend_both;
    resend_both.resend_unknown_whatsapp = true;
    resend_both.resend_unknown_sms = true;
    EXPECT_TRUE(unknown_after_crash(interrupted, resend_both).empty());
}

TEST_F(Checkpoints, AFinishedBroadcastAndAForgottenPersonLeaveNoStartedMarks) {
    auto store = store_with_broadcast(dir);
    ASSERT_TRUE(store);
    const std::string b1 = checkpoints::key("default", "b1");
    ASSERT_TRUE(store->mark_started({{"default", "b1", "default/w1", CHANNEL_WHATSAPP},
                                     {"default", "b1", "default/w2", CHANNEL_WHATSAPP}}));
    store->forget("default/w2");
    crash(store);
    {
        auto reopened = checkpoints::open(dir, std::chrono::milliseconds(200));
        ASSERT_TRUE(reopened);
        const auto interrupted = (*reopened)->load_unfinished();
        ASSERT_EQ(interrupted.size(), 1u);
        EXPECT_EQ(interrupted[0].interrupted->size(), 1u);
        EXPECT_EQ(interrupted[0].interrupted->count("default/w1"), 1u) << "forget left a started mark";
        // The broadcast finishes: its rows, started marks included, go.
        (*reopened)->start([](const std::string&) { return true; });
        (*reopened)->stop();
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir + "/outbound.sqlite3").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM started", -1, &q, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(q, 0), 0) << "a finished broadcast kept its started marks";
    sqlite3_finalize(q);
    sqlite3_close(db);
}

}  // namespace
}  // namespace herald::outbound
