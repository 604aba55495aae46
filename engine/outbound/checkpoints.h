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
// At most once where the channel cannot de-duplicate: the WhatsApp Cloud API
// ignores idempotency keys, so a request re-sent after a crash is a second
// message. Before such a request leaves, its delivery is marked started
// (mark_started, one transaction per batch an outbound shard sends); after a
// crash, started and not finished means "maybe delivered": the caller
// settles those as `unknown` instead of sending them again (options.h,
// unknown_after_crash). Webhooks are not marked.
//
// Why SQLite, in its own file (<data_dir>/outbound.sqlite3): the same
// durable, inspectable store as the registry without contending for its
// lock; one small transaction per interval is nothing on the hot path, and a
// Kafka topic would need compaction and a read-back at start for the same job.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/loop_thread.h"
#include "base/result.h"
#include "herald/v1/subscription.pb.h"
#include "model/fundamental.h"

struct sqlite3;
struct sqlite3_stmt;

namespace herald::outbound {

class checkpoints {
  public:
    struct unfinished {
        std::string announcement;  // herald.v1.Announcement, protobuf binary
        model::seq_no seq;
        std::shared_ptr<const std::unordered_set<std::string>> done;  // subscriber keys already finished
        /// Marked started and not finished (subscriber key -> channel): the
        /// crash came between their request and its checkpoint.
        std::shared_ptr<const std::unordered_map<std::string, herald::v1::Channel>> interrupted;
    };

    /// One delivery about to be sent on an at-most-once channel. Views: they
    /// only need to live through mark_started().
    struct start_mark {
        std::string_view tenant;
        std::string_view broadcast_id;
        std::string_view subscriber_key;
        herald::v1::Channel channel = herald::v1::CHANNEL_WEBHOOK;
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
    /// Before their requests are sent (an outbound shard's thread, blocking):
    /// marks a batch of deliveries started in one transaction, together with
    /// the finished subscribers and refusals pending now. A WAL append, no
    /// fsync (synchronous=NORMAL): it survives a crash of the process.
    base::result<void> mark_started(const std::vector<start_mark>& batch);
    /// A marked delivery the gateway certainly did not accept (throttled,
    /// pair limit, sender paused): unmarked with the next transaction, so a
    /// crash before its next attempt sends it rather than calls it unknown.
    void not_started(const std::string& key, const std::string& subscriber_key);
    /// Erases a forgotten subscriber from every checkpoint.
    void forget(const std::string& subscriber_key);
    /// Writes what is pending now.
    void flush();

    [[nodiscard]] std::uint64_t flushes() const noexcept { return flushes_; }
    /// Transactions of mark_started() so far.
    [[nodiscard]] std::uint64_t start_batches() const noexcept {
        return start_batches_.load(std::memory_order_relaxed);
    }

  private:
    checkpoints() = default;
    base::result<void> exec(const char* sql);
    base::result<void> rekey_by_tenant();  // stores from before ids were keyed per tenant
    using pairs = std::vector<std::pair<std::string, std::string>>;  // (broadcast key, subscriber key)
    /// Inside a transaction (db_mutex_ held): the pending finished rows and
    /// unmarks. Taken under db_mutex_ so an unmark and the next mark of the
    /// same delivery land in the order they were made.
    bool write_pending(pairs& finished, pairs& unstarted);
    void take_pending(pairs& finished, pairs& unstarted);
    void give_back(pairs& finished, pairs& unstarted);
    bool step(sqlite3_stmt* s);  // runs a prepared statement to its end and resets it

    sqlite3* db_ = nullptr;
    std::string path_;
    std::chrono::milliseconds interval_{1000};
    std::mutex db_mutex_;
    std::mutex pending_mutex_;
    pairs pending_;
    pairs unstarted_;
    // Prepared once (db_mutex_): a batch of marks is a few dozen
    // microseconds, and preparing the statements each time was a share of it.
    sqlite3_stmt* mark_ = nullptr;     // the started insert
    sqlite3_stmt* finish_ = nullptr;   // the finished insert
    sqlite3_stmt* unstart_ = nullptr;  // the started delete
    sqlite3_stmt* begin_ = nullptr;
    sqlite3_stmt* commit_ = nullptr;
    std::atomic<std::uint64_t> start_batches_{0};
    std::vector<std::string> open_;  // broadcasts started and not yet found done
    std::function<bool(const std::string&)> is_done_;
    std::uint64_t flushes_ = 0;
    base::loop_thread flusher_{"herald-checkpts"};
};

}  // namespace herald::outbound
