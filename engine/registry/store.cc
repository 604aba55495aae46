#include "registry/store.h"

#include <sqlite3.h>

#include <filesystem>
#include <system_error>

#include "base/log.h"

namespace herald::registry {

base::failure store::fail(const char* what) const {
    return base::failure(std::make_error_code(std::errc::io_error),
                         std::string(what) + ": " + (db_ != nullptr ? sqlite3_errmsg(db_) : "no database") +
                             " (" + path_ + ")");
}

base::result<void> store::exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        std::string detail = message != nullptr ? message : "unknown";
        sqlite3_free(message);
        return base::failure(std::make_error_code(std::errc::io_error), detail + " (" + path_ + ")");
    }
    return {};
}

base::result<std::unique_ptr<store>> store::open(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        return base::failure(ec, "cannot create data directory " + dir);
    }
    std::unique_ptr<store> s(new store());
    s->path_ = (std::filesystem::path(dir) / "registry.sqlite3").string();
    if (sqlite3_open_v2(s->path_.c_str(), &s->db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
        return s->fail("open");
    }
    sqlite3_busy_timeout(s->db_, 5000);
    for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                            // An erased person must not linger in free pages.
                            "PRAGMA secure_delete=ON",
                            // A subscriber is (tenant, recipient_id): two tenants' ids never meet.
                            "CREATE TABLE IF NOT EXISTS subscribers (tenant TEXT NOT NULL, recipient_id TEXT "
                            "NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tenant, recipient_id)) WITHOUT ROWID",
                            "CREATE TABLE IF NOT EXISTS feed_offsets (partition INTEGER PRIMARY KEY, "
                            "next_offset INTEGER NOT NULL)"}) {
        if (auto r = s->exec(sql); !r) {
            return base::failure(r.err());
        }
    }
    const auto prepare = [&](const char* sql, sqlite3_stmt** out) {
        return sqlite3_prepare_v3(s->db_, sql, -1, SQLITE_PREPARE_PERSISTENT, out, nullptr) == SQLITE_OK;
    };
    if (auto migrated = s->migrate_global_ids(); !migrated)
        return base::failure(migrated.err());
    if (!prepare("INSERT INTO subscribers (tenant, recipient_id, body) VALUES (?1, ?2, ?3) "
                 "ON CONFLICT(tenant, recipient_id) DO UPDATE SET body = excluded.body",
                 &s->put_) ||
        !prepare("DELETE FROM subscribers WHERE tenant = ?1 AND recipient_id = ?2", &s->erase_) ||
        !prepare("INSERT INTO feed_offsets (partition, next_offset) VALUES (?1, ?2) "
                 "ON CONFLICT(partition) DO UPDATE SET next_offset = excluded.next_offset",
                 &s->offset_) ||
        !prepare("SELECT body FROM subscribers WHERE tenant = ?1 AND recipient_id = ?2", &s->get_)) {
        return s->fail("prepare");
    }
    return s;
}

base::result<void> store::migrate_global_ids() {
    // Stores from before subscribers were (tenant, recipient_id) kept one
    // row per recipient id; each row's body names its tenant.
    sqlite3_stmt* probe = nullptr;
    const bool old_table = sqlite3_prepare_v2(db_, "SELECT recipient_id, body FROM subscriptions", -1, &probe,
                                              nullptr) == SQLITE_OK;
    if (!old_table) {
        sqlite3_finalize(probe);
        return {};
    }
    if (auto r = exec("BEGIN"); !r) {
        sqlite3_finalize(probe);
        return r;
    }
    sqlite3_stmt* insert = nullptr;
    sqlite3_prepare_v2(db_,
                       "INSERT OR REPLACE INTO subscribers (tenant, recipient_id, body) VALUES (?1, ?2, ?3)",
                       -1, &insert, nullptr);
    std::size_t moved = 0;
    bool ok = insert != nullptr;
    int step = SQLITE_ROW;
    while (ok && (step = sqlite3_step(probe)) == SQLITE_ROW) {
        herald::v1::Subscription sub;
        if (!sub.ParseFromArray(sqlite3_column_blob(probe, 1), sqlite3_column_bytes(probe, 1))) {
            ok = false;  // nothing is dropped silently: the old table stays, start-up stops
            break;
        }
        const std::string tenant = sub.tenant().empty() ? "default" : sub.tenant();
        sqlite3_reset(insert);
        sqlite3_bind_text(insert, 1, tenant.data(), static_cast<int>(tenant.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 2, sub.recipient_id().data(), static_cast<int>(sub.recipient_id().size()),
                          SQLITE_TRANSIENT);
        sqlite3_bind_blob(insert, 3, sqlite3_column_blob(probe, 1), sqlite3_column_bytes(probe, 1),
                          SQLITE_TRANSIENT);
        ok = sqlite3_step(insert) == SQLITE_DONE;
        moved += ok ? 1 : 0;
    }
    ok = ok && step == SQLITE_DONE;
    sqlite3_finalize(insert);
    sqlite3_finalize(probe);
    if (!ok) {
        auto failure = fail("moving subscriptions to per-tenant keys");
        (void)exec("ROLLBACK");
        return failure;
    }
    if (auto r = exec("DROP TABLE subscriptions"); !r) {
        (void)exec("ROLLBACK");
        return r;
    }
    if (auto r = exec("COMMIT"); !r)
        return r;
    HERALD_LOG_INFO("registry", "moved ", moved, " subscription(s) of ", path_, " to per-tenant keys");
    return checkpoint();
}

store::~store() {
    sqlite3_finalize(put_);
    sqlite3_finalize(erase_);
    sqlite3_finalize(offset_);
    sqlite3_finalize(get_);
    sqlite3_close(db_);
}

base::result<void> store::checkpoint() {
    return exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

base::result<void> store::begin() {
    return exec("BEGIN");
}
base::result<void> store::commit() {
    return exec("COMMIT");
}

base::result<void> store::put(const herald::v1::Subscription& s) {
    const std::string body = s.SerializeAsString();
    const std::string_view tenant =
        s.tenant().empty() ? std::string_view("default") : std::string_view(s.tenant());
    sqlite3_reset(put_);
    sqlite3_bind_text(put_, 1, tenant.data(), static_cast<int>(tenant.size()), SQLITE_STATIC);
    sqlite3_bind_text(put_, 2, s.recipient_id().data(), static_cast<int>(s.recipient_id().size()),
                      SQLITE_STATIC);
    sqlite3_bind_blob(put_, 3, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
    if (sqlite3_step(put_) != SQLITE_DONE) {
        return fail("put");
    }
    return {};
}

base::result<void> store::erase(const std::string& tenant, const std::string& recipient_id) {
    sqlite3_reset(erase_);
    sqlite3_bind_text(erase_, 1, tenant.data(), static_cast<int>(tenant.size()), SQLITE_STATIC);
    sqlite3_bind_text(erase_, 2, recipient_id.data(), static_cast<int>(recipient_id.size()), SQLITE_STATIC);
    if (sqlite3_step(erase_) != SQLITE_DONE) {
        return fail("erase");
    }
    return {};
}

base::result<void> store::set_feed_offset(std::int32_t partition, std::int64_t next_offset) {
    sqlite3_reset(offset_);
    sqlite3_bind_int(offset_, 1, partition);
    sqlite3_bind_int64(offset_, 2, next_offset);
    if (sqlite3_step(offset_) != SQLITE_DONE) {
        return fail("feed offset");
    }
    return {};
}

std::vector<std::string> store::tenants_of(const std::string& recipient_id) {
    std::vector<std::string> out;
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT tenant FROM subscribers WHERE recipient_id = ?1", -1, &q, nullptr) ==
        SQLITE_OK) {
        sqlite3_bind_text(q, 1, recipient_id.data(), static_cast<int>(recipient_id.size()), SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW)
            out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
    }
    sqlite3_finalize(q);
    return out;
}

std::optional<herald::v1::Subscription> store::get(const std::string& tenant,
                                                   const std::string& recipient_id) {
    sqlite3_bind_text(get_, 1, tenant.data(), static_cast<int>(tenant.size()), SQLITE_STATIC);
    sqlite3_bind_text(get_, 2, recipient_id.data(), static_cast<int>(recipient_id.size()), SQLITE_STATIC);
    std::optional<herald::v1::Subscription> found;
    if (sqlite3_step(get_) == SQLITE_ROW) {
        herald::v1::Subscription s;
        if (s.ParseFromArray(sqlite3_column_blob(get_, 0), sqlite3_column_bytes(get_, 0)))
            found = std::move(s);
    }
    // Reset at once: a statement left on its row keeps a read transaction
    // open, and the checkpoint after an erase could not empty the WAL.
    sqlite3_reset(get_);
    sqlite3_clear_bindings(get_);
    return found;
}

std::map<std::int32_t, std::int64_t> store::feed_offsets() {
    std::map<std::int32_t, std::int64_t> out;
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT partition, next_offset FROM feed_offsets", -1, &q, nullptr) ==
        SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            out[sqlite3_column_int(q, 0)] = sqlite3_column_int64(q, 1);
        }
    }
    sqlite3_finalize(q);
    return out;
}

base::result<void> store::reset_feed_offsets() {
    return exec("DELETE FROM feed_offsets");
}

base::result<std::size_t> store::for_each(const std::function<void(herald::v1::Subscription&&)>& fn) {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT body FROM subscribers", -1, &q, nullptr) != SQLITE_OK) {
        return fail("load");
    }
    std::size_t n = 0;
    int rc = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        herald::v1::Subscription s;
        if (s.ParseFromArray(sqlite3_column_blob(q, 0), sqlite3_column_bytes(q, 0))) {
            fn(std::move(s));
            ++n;
        }
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        return fail("load");
    }
    return n;
}

}  // namespace herald::registry
