// Durable live schedules. A broadcast due on Saturday that a shard held in
// memory from Wednesday would keep its Kafka offset (and every offset behind
// it) uncommitted for three days: a restart in between re-sent everything
// since, and the offset tracker grew. Written down here instead, its offset
// is finished at once; the scheduler releases it from here shortly before
// its instant, after any number of restarts.
//
// Two tables in <data_dir>/schedules.sqlite3 (this instance's own: live
// delivery is once per instance):
//   scheduled: what waits, with everything needed to build its broadcast
//              again (the announcement as protobuf, its seq, its Kafka
//              position) and what the ops API lists;
//   ended:     ids released or cancelled within `ended_retention`, so a
//              record consumed again (its commit had not landed before a
//              kill -9) is not scheduled a second time, and an outbound
//              broadcast cancelled here is not resumed after a restart.
// Synchronous writes (synchronous=FULL): the caller commits the Kafka
// offset right after add() returns. Times are wall-clock nanoseconds,
// passed in (the store reads no clock), so tests drive them.
// Not thread-safe: the scheduler serialises every call.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/fundamental.h"

struct sqlite3;

namespace herald::schedule {

/// One scheduled live broadcast.
struct entry {
    std::string tenant;
    std::string id;
    std::string audience;
    std::int64_t deliver_at_ns = 0;  // wall clock
    std::int64_t created_at_ns = 0;  // wall clock (the announcement's created_at)
    model::seq_no seq;
    model::kafka_position source;
    std::string announcement;  // herald.v1.Announcement, protobuf binary
};

/// Why an id is in the ended table.
enum class ending : std::uint8_t { released = 1, cancelled = 2 };

class store {
  public:
    /// How long released and cancelled ids are remembered.
    static constexpr std::chrono::hours ended_retention{1};

    /// Opens (creating) <dir>/schedules.sqlite3.
    [[nodiscard]] static base::result<std::unique_ptr<store>> open(const std::string& dir);
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    /// Writes `e` down. False (nothing written) when it is scheduled already
    /// or ended within the retention.
    [[nodiscard]] base::result<bool> add(const entry& e);
    /// Removes a scheduled one (if there) and remembers it as `why` at `now_ns`.
    [[nodiscard]] base::result<void> end(const std::string& tenant, const std::string& id, ending why,
                                         std::int64_t now_ns);
    /// Everything scheduled, earliest instant first.
    [[nodiscard]] std::vector<entry> scheduled();
    /// Ended ids remembered at `now_ns` (older ones are forgotten first).
    struct ended_id {
        std::string tenant;
        std::string id;
        ending why = ending::released;
        std::int64_t at_ns = 0;
    };
    [[nodiscard]] std::vector<ended_id> ended(std::int64_t now_ns);

    [[nodiscard]] const std::string& path() const noexcept { return path_; }

  private:
    store() = default;
    base::result<void> exec(const char* sql);
    base::failure error(const std::string& what) const;

    sqlite3* db_ = nullptr;
    std::string path_;
};

}  // namespace herald::schedule
