// All outbound shards of an instance: routes subscriptions (by recipient id)
// and broadcasts (to every shard) to them, and writes each broadcast down in
// the checkpoint store before any of it is sent, so a crash neither skips
// anyone nor messages everyone again. A delivery checks the recipient's
// current state right before it is sent, so an opt-out consumed in the
// middle of a running broadcast stops it for that recipient at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "herald/v1/subscription.pb.h"
#include "metrics/registry.h"
#include "model/broadcast.h"
#include "outbound/options.h"
#include "outbound/status_board.h"

namespace herald::outbound {

class checkpoints;
class outbound_shard;
class probe;

enum class deliver_result : std::uint8_t {
    written_down,  // crash-safe: its Kafka offset may be committed
    known,         // written down before (redelivered): not sent again
    not_durable,   // being sent, but the checkpoint store failed: keep the offset uncommitted
};

class outbound_router {
  public:
    /// `cp` (optional) makes broadcasts crash-safe: written down before
    /// delivery, finished recipients checkpointed.
    outbound_router(const gateway_options& options, status_board& board, metrics::registry& metrics,
                    outcome_handler on_outcome, checkpoints* cp = nullptr);
    ~outbound_router();
    outbound_router(const outbound_router&) = delete;
    outbound_router& operator=(const outbound_router&) = delete;

    void start();
    void stop();

    /// Any thread. Subscriptions are applied in the order given per subscriber.
    void apply(const herald::v1::Subscription& s);
    /// Any thread: forget a subscriber (tenant/recipient_id).
    void forget(const std::string& subscriber_key);
    /// Any thread: whether any subscriber ever named this audience of a
    /// tenant (model::scope_of): a broadcast to another has nobody to reach
    /// and is not written down.
    [[nodiscard]] bool interested(const std::string& scope) const;
    /// Any thread: writes the broadcast down (crash safety), then delivers it
    /// to every opted-in subscriber of its audience.
    deliver_result deliver(const model::broadcast_ptr& b);
    /// After a restart: continue an interrupted broadcast for everyone not in
    /// `done`; those in `unknown` (options.h, unknown_after_crash) get
    /// OUTCOME_UNKNOWN and are not sent to again.
    void resume(const model::broadcast_ptr& b, std::shared_ptr<const std::unordered_set<std::string>> done,
                std::shared_ptr<const std::unordered_set<std::string>> unknown = {});

    enum class cancel_result : std::uint8_t {
        stopped,   // scheduled or running here: the rest of its recipients get "cancelled"
        finished,  // known here, but every recipient had an outcome already
        unknown,   // never delivered by this instance (or forgotten since)
    };
    /// Any thread: a cancel record for `tenant`/`id`. A scheduled broadcast
    /// is expanded at once (its recipients get their "cancelled" receipts
    /// now, not at its instant); a running one's queued deliveries are
    /// suppressed as they come up; the board shows it cancelled.
    cancel_result cancel(const std::string& tenant, const std::string& id);

    /// Subscribers known (opted in or not), all shards.
    [[nodiscard]] std::uint64_t recipients() const noexcept;
    /// Deliveries queued or in flight, all shards.
    [[nodiscard]] std::uint64_t pending() const noexcept;
    /// Broadcasts waiting for the backlog to make room, all shards.
    [[nodiscard]] std::uint64_t waiting() const noexcept;

  private:
    gateway_options options_;
    status_board& board_;
    std::unique_ptr<probe> probe_;
    outcome_handler on_outcome_;
    checkpoints* checkpoints_;
    std::vector<std::unique_ptr<outbound_shard>> shards_;
    mutable std::shared_mutex audiences_mutex_;
    std::unordered_set<std::string> audiences_;  // scopes named by any subscription since start
    /// Broadcasts handed to the shards, by checkpoints::key, for cancel: a
    /// weak reference, so a finished broadcast is not kept alive by it.
    void track(const model::broadcast_ptr& b);
    std::mutex running_mutex_;
    std::unordered_map<std::string, std::weak_ptr<const model::broadcast>> running_;
    std::size_t next_sweep_ = 1024;
};

}  // namespace herald::outbound
