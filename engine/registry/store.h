// The durable copy of the outbound registry: every subscription this instance
// knows, keyed by (tenant, recipient_id), and how far it has read the
// herald.subscriptions change feed, in one SQLite database on the data
// directory.
//
// Why SQLite: a Debian package on every machine, one file an operator can
// inspect and back up with the stock `sqlite3` tool, transactions that keep
// a subscription and its feed offset together, and WAL mode with
// synchronous=NORMAL makes a committed change survive a process crash without
// an fsync per change. The working set lives in memory (the audience index);
// the store is written on change and read once at start, which is exactly
// the load SQLite is good at. LMDB or RocksDB would load faster but add
// nothing Herald needs and take away the operator's familiar tool.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "herald/v1/subscription.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace herald::registry {

class store {
  public:
    /// Opens (creating if needed) `<dir>/registry.sqlite3`.
    [[nodiscard]] static base::result<std::unique_ptr<store>> open(const std::string& dir);
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    /// Changes are grouped: begin(), any number of put/erase, commit().
    base::result<void> begin();
    base::result<void> commit();
    /// Moves the write-ahead log into the database and empties it, so an
    /// erased subscription's old pages are gone from the log file too.
    base::result<void> checkpoint();

    base::result<void> put(const herald::v1::Subscription& s);
    base::result<void> erase(const std::string& tenant, const std::string& recipient_id);
    /// Next offset to read per partition of the change feed.
    base::result<void> set_feed_offset(std::int32_t partition, std::int64_t next_offset);

    [[nodiscard]] std::map<std::int32_t, std::int64_t> feed_offsets();
    /// The tenants that have a subscriber with this recipient id.
    [[nodiscard]] std::vector<std::string> tenants_of(const std::string& recipient_id);
    /// One subscriber's subscription.
    [[nodiscard]] std::optional<herald::v1::Subscription> get(const std::string& tenant,
                                                              const std::string& recipient_id);
    /// Calls `fn` for every stored subscription; returns how many.
    base::result<std::size_t> for_each(const std::function<void(herald::v1::Subscription&&)>& fn);
    /// Forgets the feed positions (the cluster they belong to is gone).
    base::result<void> reset_feed_offsets();

    [[nodiscard]] const std::string& path() const noexcept { return path_; }

  private:
    store() = default;
    base::result<void> exec(const char* sql);
    base::result<void> migrate_global_ids();  // stores from before per-tenant keys
    base::failure fail(const char* what) const;

    sqlite3* db_ = nullptr;
    sqlite3_stmt* put_ = nullptr;
    sqlite3_stmt* erase_ = nullptr;
    sqlite3_stmt* offset_ = nullptr;
    sqlite3_stmt* get_ = nullptr;
    std::string path_;
};

}  // namespace herald::registry
