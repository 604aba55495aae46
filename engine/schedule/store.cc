#include "schedule/store.h"

#include <sqlite3.h>

#include <filesystem>
#include <system_error>

namespace herald::schedule {
namespace {

struct statement {
    sqlite3_stmt* s = nullptr;
    statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s, nullptr); }
    ~statement() { sqlite3_finalize(s); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    void text(int i, const std::string& v) {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    void blob(int i, const std::string& v) {
        sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    void integer(int i, std::int64_t v) { sqlite3_bind_int64(s, i, static_cast<sqlite3_int64>(v)); }
    [[nodiscard]] bool done() { return s != nullptr && sqlite3_step(s) == SQLITE_DONE; }
    [[nodiscard]] std::string column_text(int i) const {
        const auto* p = sqlite3_column_blob(s, i);
        return p == nullptr ? std::string()
                            : std::string(static_cast<const char*>(p),
                                          static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
    }
};

constexpr std::int64_t retention_ns =
    std::chrono::duration_cast<std::chrono::nanoseconds>(store::ended_retention).count();

}  // namespace

base::failure store::error(const std::string& what) const {
    return base::failure(
        std::make_error_code(std::errc::io_error),
        what + ": " + (db_ != nullptr ? sqlite3_errmsg(db_) : "not open") + " (" + path_ + ")");
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
    if (ec)
        return base::failure(ec, "cannot create data directory " + dir);
    std::unique_ptr<store> s(new store());
    s->path_ = (std::filesystem::path(dir) / "schedules.sqlite3").string();
    if (sqlite3_open_v2(s->path_.c_str(), &s->db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
        return base::failure(std::make_error_code(std::errc::io_error), "cannot open " + s->path_);
    }
    sqlite3_busy_timeout(s->db_, 5000);
    for (const char* sql :
         {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA secure_delete=ON",
          "CREATE TABLE IF NOT EXISTS scheduled (tenant TEXT NOT NULL, id TEXT NOT NULL, "
          "audience TEXT NOT NULL, deliver_at INTEGER NOT NULL, created_at INTEGER NOT NULL, "
          "seq INTEGER NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset INTEGER NOT NULL, "
          "announcement BLOB NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID",
          "CREATE TABLE IF NOT EXISTS ended (tenant TEXT NOT NULL, id TEXT NOT NULL, why INTEGER NOT NULL, "
          "at INTEGER NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID",
          "CREATE INDEX IF NOT EXISTS ended_by_time ON ended (at)"}) {
        if (auto r = s->exec(sql); !r)
            return base::failure(r.err());
    }
    return s;
}

store::~store() {
    sqlite3_close(db_);
}

base::result<bool> store::add(const entry& e) {
    {
        statement q(db_, "SELECT 1 FROM ended WHERE tenant = ?1 AND id = ?2");
        q.text(1, e.tenant);
        q.text(2, e.id);
        if (sqlite3_step(q.s) == SQLITE_ROW)
            return false;
    }
    statement ins(db_,
                  "INSERT OR IGNORE INTO scheduled (tenant, id, audience, deliver_at, created_at, seq, "
                  "kafka_partition, kafka_offset, announcement) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    ins.text(1, e.tenant);
    ins.text(2, e.id);
    ins.text(3, e.audience);
    ins.integer(4, e.deliver_at_ns);
    ins.integer(5, e.created_at_ns);
    ins.integer(6, static_cast<std::int64_t>(e.seq.get()));
    ins.integer(7, e.source.partition.get());
    ins.integer(8, e.source.offset.get());
    ins.blob(9, e.announcement);
    if (!ins.done())
        return error("cannot schedule " + e.id);
    return sqlite3_changes(db_) == 1;
}

base::result<void> store::end(const std::string& tenant, const std::string& id, ending why,
                              std::int64_t now_ns) {
    if (auto r = exec("BEGIN IMMEDIATE"); !r)
        return r;
    statement del(db_, "DELETE FROM scheduled WHERE tenant = ?1 AND id = ?2");
    del.text(1, tenant);
    del.text(2, id);
    statement keep(db_, "INSERT OR REPLACE INTO ended (tenant, id, why, at) VALUES (?1, ?2, ?3, ?4)");
    keep.text(1, tenant);
    keep.text(2, id);
    keep.integer(3, static_cast<std::int64_t>(why));
    keep.integer(4, now_ns);
    statement expire(db_, "DELETE FROM ended WHERE at < ?1");
    expire.integer(1, now_ns - retention_ns);
    if (!del.done() || !keep.done() || !expire.done()) {
        auto failed = error("cannot end " + id);
        (void)exec("ROLLBACK");
        return failed;
    }
    return exec("COMMIT");
}

std::vector<entry> store::scheduled() {
    std::vector<entry> out;
    statement q(db_,
                "SELECT tenant, id, audience, deliver_at, created_at, seq, kafka_partition, kafka_offset, "
                "announcement FROM scheduled ORDER BY deliver_at, tenant, id");
    while (sqlite3_step(q.s) == SQLITE_ROW) {
        entry e;
        e.tenant = q.column_text(0);
        e.id = q.column_text(1);
        e.audience = q.column_text(2);
        e.deliver_at_ns = sqlite3_column_int64(q.s, 3);
        e.created_at_ns = sqlite3_column_int64(q.s, 4);
        e.seq = model::seq_no(static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 5)));
        e.source = {model::kafka_partition(static_cast<std::int32_t>(sqlite3_column_int64(q.s, 6))),
                    model::kafka_offset(sqlite3_column_int64(q.s, 7))};
        e.announcement = q.column_text(8);
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<store::ended_id> store::ended(std::int64_t now_ns) {
    {
        statement expire(db_, "DELETE FROM ended WHERE at < ?1");
        expire.integer(1, now_ns - retention_ns);
        (void)expire.done();
    }
    std::vector<ended_id> out;
    statement q(db_, "SELECT tenant, id, why, at FROM ended ORDER BY at");
    while (sqlite3_step(q.s) == SQLITE_ROW) {
        out.push_back({q.column_text(0), q.column_text(1), static_cast<ending>(sqlite3_column_int(q.s, 2)),
                       sqlite3_column_int64(q.s, 3)});
    }
    return out;
}

}  // namespace herald::schedule
