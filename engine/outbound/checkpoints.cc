#include "outbound/checkpoints.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>

#include "base/log.h"
#include "herald/v1/announcement.pb.h"

namespace herald::outbound {
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
    bool step_done() {
        const bool ok = sqlite3_step(s) == SQLITE_DONE;
        sqlite3_reset(s);
        return ok;
    }
};

}  // namespace

base::result<void> checkpoints::exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        std::string detail = message != nullptr ? message : "unknown";
        sqlite3_free(message);
        return base::failure(std::make_error_code(std::errc::io_error), detail + " (" + path_ + ")");
    }
    return {};
}

base::result<std::unique_ptr<checkpoints>> checkpoints::open(const std::string& dir,
                                                             std::chrono::milliseconds interval) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return base::failure(ec, "cannot create data directory " + dir);
    std::unique_ptr<checkpoints> c(new checkpoints());
    c->interval_ = interval;
    c->path_ = (std::filesystem::path(dir) / "outbound.sqlite3").string();
    if (sqlite3_open_v2(c->path_.c_str(), &c->db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
        return base::failure(std::make_error_code(std::errc::io_error), "cannot open " + c->path_);
    }
    sqlite3_busy_timeout(c->db_, 5000);
    for (const char* sql :
         {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA secure_delete=ON",
          "CREATE TABLE IF NOT EXISTS broadcasts (id TEXT PRIMARY KEY, announcement BLOB NOT NULL, "
          "seq INTEGER NOT NULL, started INTEGER NOT NULL) WITHOUT ROWID",
          "CREATE TABLE IF NOT EXISTS finished (broadcast_id TEXT NOT NULL, recipient_id TEXT NOT NULL, "
          "PRIMARY KEY (broadcast_id, recipient_id)) WITHOUT ROWID",
          "CREATE INDEX IF NOT EXISTS finished_by_recipient ON finished (recipient_id)",
          // At-most-once channels: deliveries whose request may have left.
          "CREATE TABLE IF NOT EXISTS started (broadcast_id TEXT NOT NULL, recipient_id TEXT NOT NULL, "
          "channel INTEGER NOT NULL, PRIMARY KEY (broadcast_id, recipient_id)) WITHOUT ROWID",
          "CREATE INDEX IF NOT EXISTS started_by_recipient ON started (recipient_id)",
          "CREATE TABLE IF NOT EXISTS completed (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID",
          "CREATE INDEX IF NOT EXISTS completed_by_time ON completed (at)"}) {
        if (auto r = c->exec(sql); !r)
            return base::failure(r.err());
    }
    if (auto r = c->rekey_by_tenant(); !r)
        return base::failure(r.err());
    // Marks of a broadcast that was never written down (its started() failed)
    // or finished in a race with the mark: nothing would ever read them.
    if (auto r = c->exec("DELETE FROM started WHERE broadcast_id NOT IN (SELECT id FROM broadcasts)"); !r)
        return base::failure(r.err());
    const std::pair<const char*, sqlite3_stmt**> prepared[] = {
        {"INSERT OR IGNORE INTO started (broadcast_id, recipient_id, channel) "
         "VALUES (?1 || char(31) || ?2, ?3, ?4)",
         &c->mark_},
        // Not for a broadcast already deleted as done: its last recipients'
        // rows can arrive after the flush that found it done.
        {"INSERT OR IGNORE INTO finished (broadcast_id, recipient_id) SELECT ?1, ?2 "
         "WHERE EXISTS (SELECT 1 FROM broadcasts WHERE id = ?1)",
         &c->finish_},
        {"DELETE FROM started WHERE broadcast_id = ?1 AND recipient_id = ?2", &c->unstart_},
        {"BEGIN", &c->begin_},
        {"COMMIT", &c->commit_}};
    for (const auto& [sql, stmt] : prepared) {
        if (sqlite3_prepare_v2(c->db_, sql, -1, stmt, nullptr) != SQLITE_OK)
            return base::failure(std::make_error_code(std::errc::io_error),
                                 std::string("cannot prepare the started marks of ") + c->path_);
    }
    return c;
}

base::result<void> checkpoints::rekey_by_tenant() {
    // Stores written before ids were keyed per tenant hold bare ids: give each
    // its tenant (from the announcement itself) so an interrupted broadcast
    // still resumes, and its finished recipients still count, after an upgrade.
    // Completed ids carry no announcement: they are taken as the default
    // tenant's (the only one most deployments have).
    // OR IGNORE and the deletes after: a store used by old and new versions
    // in turn may hold both forms of a key; the new form wins.
    constexpr const char* rekey_completed =
        "UPDATE OR IGNORE completed SET id = 'default' || char(31) || id WHERE instr(id, char(31)) = 0;"
        "DELETE FROM completed WHERE instr(id, char(31)) = 0";
    std::vector<std::pair<std::string, std::string>> renames;
    {
        statement q(db_, "SELECT id, announcement FROM broadcasts WHERE instr(id, char(31)) = 0");
        while (sqlite3_step(q.s) == SQLITE_ROW) {
            const std::string id(reinterpret_cast<const char*>(sqlite3_column_text(q.s, 0)),
                                 static_cast<std::size_t>(sqlite3_column_bytes(q.s, 0)));
            herald::v1::Announcement a;
            (void)a.ParseFromArray(sqlite3_column_blob(q.s, 1), sqlite3_column_bytes(q.s, 1));
            renames.emplace_back(id, key(a.tenant().empty() ? "default" : a.tenant(), id));
        }
    }
    if (renames.empty())
        return exec(rekey_completed);
    if (auto r = exec("BEGIN"); !r)
        return r;
    bool ok = true;
    {
        statement broadcast(db_, "UPDATE OR IGNORE broadcasts SET id = ?1 WHERE id = ?2");
        statement finished(db_, "UPDATE OR IGNORE finished SET broadcast_id = ?1 WHERE broadcast_id = ?2");
        statement stale_broadcast(db_, "DELETE FROM broadcasts WHERE id = ?1");
        statement stale_finished(db_, "DELETE FROM finished WHERE broadcast_id = ?1");
        for (const auto& [from, to] : renames) {
            broadcast.text(1, to);
            broadcast.text(2, from);
            finished.text(1, to);
            finished.text(2, from);
            stale_broadcast.text(1, from);
            stale_finished.text(1, from);
            ok = broadcast.step_done() && finished.step_done() && stale_broadcast.step_done() &&
                 stale_finished.step_done() && ok;
        }
    }
    ok = static_cast<bool>(exec(rekey_completed)) && ok;
    if (!ok) {
        (void)exec("ROLLBACK");
        return base::failure(std::make_error_code(std::errc::io_error),
                             "cannot re-key the broadcasts of " + path_ + " by tenant");
    }
    HERALD_LOG_INFO("outbound", "re-keyed ", renames.size(), " broadcast(s) of ", path_, " by tenant");
    return exec("COMMIT");
}

checkpoints::~checkpoints() {
    flusher_.stop();
    // The status board behind is_done_ may already be gone on an early exit.
    is_done_ = nullptr;
    flush();
    for (sqlite3_stmt* s : {mark_, finish_, unstart_, begin_, commit_}) sqlite3_finalize(s);
    sqlite3_close(db_);
}

std::vector<checkpoints::unfinished> checkpoints::load_unfinished() {
    std::lock_guard lock(db_mutex_);
    std::vector<unfinished> out;
    std::map<std::string, std::size_t> at;
    {
        statement q(db_, "SELECT id, announcement, seq FROM broadcasts ORDER BY started");
        while (sqlite3_step(q.s) == SQLITE_ROW) {
            unfinished u;
            u.announcement.assign(static_cast<const char*>(sqlite3_column_blob(q.s, 1)),
                                  static_cast<std::size_t>(sqlite3_column_bytes(q.s, 1)));
            u.seq = model::seq_no(static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 2)));
            at[reinterpret_cast<const char*>(sqlite3_column_text(q.s, 0))] = out.size();
            out.push_back(std::move(u));
        }
    }
    std::vector<std::unordered_set<std::string>> done(out.size());
    {
        statement q(db_, "SELECT broadcast_id, recipient_id FROM finished");
        while (sqlite3_step(q.s) == SQLITE_ROW) {
            const auto it = at.find(reinterpret_cast<const char*>(sqlite3_column_text(q.s, 0)));
            if (it == at.end())
                continue;
            std::string who = reinterpret_cast<const char*>(sqlite3_column_text(q.s, 1));
            // Rows from before subscribers were tenant/recipient_id name the
            // bare id: it was a recipient of the broadcast's own tenant.
            if (who.find('/') == std::string::npos)
                who = tenant_of(it->first) + "/" + who;
            done[it->second].insert(std::move(who));
        }
    }
    std::vector<std::unordered_map<std::string, herald::v1::Channel>> interrupted(out.size());
    {
        statement q(db_,
                    "SELECT s.broadcast_id, s.recipient_id, s.channel FROM started s WHERE NOT EXISTS "
                    "(SELECT 1 FROM finished f WHERE f.broadcast_id = s.broadcast_id AND "
                    "f.recipient_id = s.recipient_id)");
        while (sqlite3_step(q.s) == SQLITE_ROW) {
            const auto it = at.find(reinterpret_cast<const char*>(sqlite3_column_text(q.s, 0)));
            if (it == at.end())
                continue;
            interrupted[it->second].emplace(reinterpret_cast<const char*>(sqlite3_column_text(q.s, 1)),
                                            static_cast<herald::v1::Channel>(sqlite3_column_int(q.s, 2)));
        }
    }
    for (const auto& [id, i] : at) {
        out[i].done = std::make_shared<const std::unordered_set<std::string>>(std::move(done[i]));
        out[i].interrupted = std::make_shared<const std::unordered_map<std::string, herald::v1::Channel>>(
            std::move(interrupted[i]));
        open_.push_back(id);
    }
    return out;
}

base::result<bool> checkpoints::started(const std::string& key, const std::string& announcement,
                                        model::seq_no seq) {
    std::lock_guard lock(db_mutex_);
    {
        statement q(db_, "SELECT 1 FROM completed WHERE id = ?1");
        q.text(1, key);
        if (sqlite3_step(q.s) == SQLITE_ROW)
            return false;
    }
    statement q(db_,
                "INSERT OR IGNORE INTO broadcasts (id, announcement, seq, started) VALUES (?1, ?2, ?3, ?4)");
    q.text(1, key);
    q.blob(2, announcement);
    sqlite3_bind_int64(q.s, 3, static_cast<sqlite3_int64>(seq.get()));
    sqlite3_bind_int64(
        q.s, 4, static_cast<sqlite3_int64>(std::chrono::system_clock::now().time_since_epoch().count()));
    if (!q.step_done())
        return base::failure(std::make_error_code(std::errc::io_error),
                             std::string("checkpoint: ") + sqlite3_errmsg(db_));
    if (sqlite3_changes(db_) == 0)
        return false;  // running already (resumed after a restart)
    return true;
}

void checkpoints::opened(const std::string& key) {
    std::lock_guard p(pending_mutex_);
    open_.push_back(key);
}

void checkpoints::finished(const std::string& key, const std::string& subscriber_key) {
    std::lock_guard lock(pending_mutex_);
    pending_.emplace_back(key, subscriber_key);
}

void checkpoints::not_started(const std::string& key, const std::string& subscriber_key) {
    std::lock_guard lock(pending_mutex_);
    unstarted_.emplace_back(key, subscriber_key);
}

void checkpoints::take_pending(pairs& finished, pairs& unstarted) {
    std::lock_guard p(pending_mutex_);
    finished.swap(pending_);
    unstarted.swap(unstarted_);
}

void checkpoints::give_back(pairs& finished, pairs& unstarted) {
    std::lock_guard p(pending_mutex_);
    pending_.insert(pending_.end(), std::make_move_iterator(finished.begin()),
                    std::make_move_iterator(finished.end()));
    unstarted_.insert(unstarted_.end(), std::make_move_iterator(unstarted.begin()),
                      std::make_move_iterator(unstarted.end()));
}

bool checkpoints::write_pending(pairs& finished, pairs& unstarted) {
    const auto run = [](sqlite3_stmt* s, const std::string& b, const std::string& r) {
        sqlite3_bind_text(s, 1, b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
        sqlite3_bind_text(s, 2, r.data(), static_cast<int>(r.size()), SQLITE_STATIC);
        const bool ok = sqlite3_step(s) == SQLITE_DONE;
        sqlite3_reset(s);
        return ok;
    };
    bool ok = true;
    for (const auto& [b, r] : unstarted) ok = run(unstart_, b, r) && ok;
    for (const auto& [b, r] : finished) ok = run(finish_, b, r) && ok;
    return ok;
}

bool checkpoints::step(sqlite3_stmt* s) {
    const bool ok = sqlite3_step(s) == SQLITE_DONE;
    sqlite3_reset(s);
    return ok;
}

base::result<void> checkpoints::mark_started(const std::vector<start_mark>& batch) {
    pairs finished;
    pairs unstarted;
    std::lock_guard lock(db_mutex_);
    take_pending(finished, unstarted);
    bool ok = step(begin_);
    ok = write_pending(finished, unstarted) && ok;
    for (const start_mark& m : batch) {
        sqlite3_bind_text(mark_, 1, m.tenant.data(), static_cast<int>(m.tenant.size()), SQLITE_STATIC);
        sqlite3_bind_text(mark_, 2, m.broadcast_id.data(), static_cast<int>(m.broadcast_id.size()),
                          SQLITE_STATIC);
        sqlite3_bind_text(mark_, 3, m.subscriber_key.data(), static_cast<int>(m.subscriber_key.size()),
                          SQLITE_STATIC);
        sqlite3_bind_int(mark_, 4, static_cast<int>(m.channel));
        ok = sqlite3_step(mark_) == SQLITE_DONE && ok;
        sqlite3_reset(mark_);
    }
    ok = ok && step(commit_);
    if (!ok) {
        std::string detail = std::string("started marks: ") + sqlite3_errmsg(db_) + " (" + path_ + ")";
        (void)exec("ROLLBACK");
        give_back(finished, unstarted);  // the flusher tries them again
        return base::failure(std::make_error_code(std::errc::io_error), std::move(detail));
    }
    start_batches_.fetch_add(1, std::memory_order_relaxed);
    return {};
}

void checkpoints::forget(const std::string& subscriber_key) {
    {
        std::lock_guard p(pending_mutex_);
        std::erase_if(pending_, [&](const auto& e) { return e.second == subscriber_key; });
        std::erase_if(unstarted_, [&](const auto& e) { return e.second == subscriber_key; });
    }
    std::lock_guard lock(db_mutex_);
    statement q(db_, "DELETE FROM finished WHERE recipient_id = ?1");
    q.text(1, subscriber_key);
    (void)q.step_done();
    statement marks(db_, "DELETE FROM started WHERE recipient_id = ?1");
    marks.text(1, subscriber_key);
    (void)marks.step_done();
    // Rows from before subscribers were tenant/recipient name the bare id,
    // under broadcasts of the subscriber's tenant.
    const auto slash = subscriber_key.find('/');
    if (slash != std::string::npos) {
        const std::string bare_id = subscriber_key.substr(slash + 1);
        const std::string prefix = subscriber_key.substr(0, slash) + '\x1f';
        statement bare(db_,
                       "DELETE FROM finished WHERE recipient_id = ?1 AND substr(broadcast_id, 1, ?3) = ?2");
        bare.text(1, bare_id);
        bare.text(2, prefix);
        sqlite3_bind_int(bare.s, 3, static_cast<int>(slash + 1));
        (void)bare.step_done();
    }
    (void)exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

void checkpoints::flush() {
    pairs batch;
    pairs unstarted;
    std::vector<std::string> open;
    // db_mutex_ before the pending lists: see write_pending().
    std::lock_guard lock(db_mutex_);
    take_pending(batch, unstarted);
    {
        std::lock_guard p(pending_mutex_);
        open = open_;
    }
    std::vector<std::string> done;
    if (is_done_) {
        for (const auto& id : open) {
            if (is_done_(id))
                done.push_back(id);
        }
    }
    if (batch.empty() && unstarted.empty() && done.empty())
        return;
    bool ok = static_cast<bool>(exec("BEGIN"));
    {
        ok = write_pending(batch, unstarted) && ok;
        statement del_b(db_, "DELETE FROM broadcasts WHERE id = ?1");
        statement del_f(db_, "DELETE FROM finished WHERE broadcast_id = ?1");
        statement del_s(db_, "DELETE FROM started WHERE broadcast_id = ?1");
        statement keep(db_, "INSERT OR REPLACE INTO completed (id, at) VALUES (?1, ?2)");
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        for (const auto& id : done) {
            del_b.text(1, id);
            del_f.text(1, id);
            del_s.text(1, id);
            keep.text(1, id);
            sqlite3_bind_int64(keep.s, 2, static_cast<sqlite3_int64>(now.count()));
            ok = del_b.step_done() && del_f.step_done() && del_s.step_done() && keep.step_done() && ok;
        }
        statement expire(db_, "DELETE FROM completed WHERE at < ?1");
        sqlite3_bind_int64(
            expire.s, 1,
            static_cast<sqlite3_int64>(
                (now - std::chrono::duration_cast<std::chrono::system_clock::duration>(completed_retention))
                    .count()));
        ok = expire.step_done() && ok;
    }
    ok = static_cast<bool>(exec("COMMIT")) && ok;
    if (!ok)
        HERALD_LOG_ERROR("outbound", "checkpoint to ", path_, " failed: ", sqlite3_errmsg(db_));
    ++flushes_;
    if (!done.empty()) {
        std::lock_guard p(pending_mutex_);
        std::erase_if(open_, [&](const std::string& id) {
            return std::find(done.begin(), done.end(), id) != done.end();
        });
    }
}

void checkpoints::start(std::function<bool(const std::string&)> is_done) {
    is_done_ = std::move(is_done);
    flusher_.every(interval_, [this] { flush(); });
    flusher_.start();
}

void checkpoints::stop() {
    flusher_.stop();
    flush();
}

}  // namespace herald::outbound
