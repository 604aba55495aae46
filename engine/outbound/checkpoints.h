// Crash-safe outbound broadcasts. A broadcast to 200,000 WhatsApp subscribers
// takes 40 minutes at 80 messages/s; a crash in the middle must neither skip
// anyone nor message everyone again. So every outbound broadcast is written
// down before its Kafka offset can be committed, and the recipients it has
// finished are checkpointed in batches every `interval`. After a restart the
// unfinished broadcasts are resumed for everyone not checkpointed: the only
// recipients who can get a second attempt are those finished within the last
// interval before the crash, and those carry the same idempotency key
// (webhook-id / idempotency-key) as the first, so the gateway discards them.
//
// Kafka may deliver an announcement again (a restart before the outbound
// consumer's commit landed). started() recognises a broadcast that is running
// or finished here within `completed_retention` and says so, so this
// instance does not send it to everyone a second time. The store is this
// instance's own: when the partition moves to another instance before the
// commit (a crash; a rebalance commits first), that one sends again, with the
// same idempotency keys.
//
// Why SQLite, in its own file (<data_dir>/outbound.sqlite3): the same
// durable, inspectable store as the registry without contending for its
// lock; one small transaction per interval is nothing on the hot path, and a
// Kafka topic would need compaction and a read-back at start for the same job.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/loop_thread.h"
#include "base/result.h"
#include "model/fundamental.h"

struct sqlite3;

namespace herald::outbound {

class checkpoints {
  public:
    struct unfinished {
        std::string announcement;  // herald.v1.Announcement, protobuf binary
        model::seq_no seq;
        std::shared_ptr<const std::unordered_set<std::string>> done;  // subscriber keys already finished
    };

    /// Opens (creating) <dir>/outbound.sqlite3; `interval` is the checkpoint cadence.
    [[nodiscard]] static base::result<std::unique_ptr<checkpoints>> open(const std::string& dir,
                                                                         std::chrono::milliseconds interval);
    ~checkpoints();
    checkpoints(const checkpoints&) = delete;
    checkpoints& operator=(const checkpoints&) = delete;

    /// Broadcasts that were started and not finished, oldest first.
    [[nodiscard]] std::vector<unfinished> load_unfinished();

    /// Starts the flusher. `is_done(key)` says whether a broadcast has no
    /// pending recipients left (then its rows are deleted).
    void start(std::function<bool(const std::string&)> is_done);
    /// Flushes what is pending and stops the flusher.
    void stop();

    /// How long a finished broadcast's id is remembered against redelivery.
    static constexpr std::chrono::hours completed_retention{1};

    /// A broadcast's key here: ids are unique per tenant only.
    [[nodiscard]] static std::string key(const std::string& tenant, const std::string& id) {
        return tenant + '\x1f' + id;
    }
    /// The tenant inside a key.
    [[nodiscard]] static std::string tenant_of(const std::string& key) {
        return key.substr(0, key.find('\x1f'));
    }
    /// The announcement id inside a key.
    [[nodiscard]] static std::string id_of(const std::string& key) {
        return key.substr(key.find('\x1f') + 1);
    }

    /// Before delivery: writes the broadcast down (synchronously). False when
    /// it is running or finished recently: then it must not be sent again.
    base::result<bool> started(const std::string& key, const std::string& announcement, model::seq_no seq);
    /// After started() and once the broadcast is on the status board: the
    /// flusher may now ask whether it is done (asked earlier, a broadcast not
    /// yet on the board would look finished and lose its rows).
    void opened(const std::string& key);
    /// A subscriber (tenant/recipient_id) reached a final outcome (any thread; batched).
    void finished(const std::string& key, const std::string& subscriber_key);
    /// Erases a forgotten subscriber from every checkpoint.
    void forget(const std::string& subscriber_key);
    /// Writes what is pending now.
    void flush();

    [[nodiscard]] std::uint64_t flushes() const noexcept { return flushes_; }

  private:
    checkpoints() = default;
    base::result<void> exec(const char* sql);
    base::result<void> rekey_by_tenant();  // stores from before ids were keyed per tenant

    sqlite3* db_ = nullptr;
    std::string path_;
    std::chrono::milliseconds interval_{1000};
    std::mutex db_mutex_;
    std::mutex pending_mutex_;
    std::vector<std::pair<std::string, std::string>> pending_;
    std::vector<std::string> open_;  // broadcasts started and not yet found done
    std::function<bool(const std::string&)> is_done_;
    std::uint64_t flushes_ = 0;
    base::loop_thread flusher_{"herald-checkpts"};
};

}  // namespace herald::outbound
