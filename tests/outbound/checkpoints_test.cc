// The outbound checkpoint store across an upgrade: a store written before
// broadcasts were keyed by tenant still resumes its interrupted broadcast
// with the recipients it had finished, and still refuses a redelivery.
#include "outbound/checkpoints.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "herald/v1/announcement.pb.h"

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

}  // namespace
}  // namespace herald::outbound
