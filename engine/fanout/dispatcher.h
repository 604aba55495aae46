// The dispatcher turns a validated announcement into one immutable broadcast
// and hands it to every shard: O(shards) work per announcement, whatever the
// audience size. It runs on the live consumer's thread only. Sequence numbers
// come from model::audience_sequencer (seq = Kafka offset + 1, kept
// increasing per audience).
//
// Backpressure: when a shard's queue is full the dispatcher waits (and
// counts it) instead of buffering; the consumer thread stops polling Kafka
// meanwhile, so the backlog stays in Kafka, not in memory.
#pragma once

#include <atomic>
#include <functional>
#include <string_view>
#include <vector>

#include "fanout/probe.h"
#include "fanout/shard.h"
#include "herald/v1/announcement.pb.h"
#include "model/broadcast.h"
#include "model/sequencer.h"

namespace herald::fanout {

class dispatcher {
  public:
    /// Called once per broadcast when every shard is done with it (any thread).
    using completion_handler = std::function<void(const model::broadcast_ptr&)>;

    dispatcher(std::vector<shard*> shards, probe& probe, completion_handler on_complete);

    /// Consumer thread: builds the broadcast (encodes its frames once, with
    /// the partition's `epoch`) and queues it on every shard. Returns the
    /// broadcast, already complete if it had expired.
    model::broadcast_ptr publish(const herald::v1::Announcement& a, model::kafka_position source,
                                 std::string_view epoch);
    /// The same with the seq next_seq() gave it already.
    model::broadcast_ptr publish(const herald::v1::Announcement& a, model::kafka_position source,
                                 model::seq_no seq, std::string_view epoch);

    /// Consumer thread: the seq `a` at `source` gets (what publish() would give it),
    /// for a broadcast written to the schedule store instead of published now.
    [[nodiscard]] model::seq_no next_seq(const herald::v1::Announcement& a, model::kafka_position source) {
        return sequencer_.next(a.audience(), source);
    }

    /// Any thread (the scheduler's): queues a broadcast built elsewhere (a
    /// scheduled one, with its stored seq) on every shard, which hold it to
    /// its instant. Completes like a published one.
    model::broadcast_ptr release(std::shared_ptr<model::broadcast> b);

    /// Consumer thread: an announcement delivered before this process
    /// started, read back from Kafka so reconnecting clients can recover it.
    /// Every shard keeps it in its history; nobody receives it now. Dropped
    /// when it has expired or is not yet due.
    void remember(const herald::v1::Announcement& a, model::kafka_position source,
                  model::kafka_offset refill_from, std::string_view epoch);

    /// The completion path shards call into (last shard only).
    void on_shard_done(const model::broadcast_ptr& b);

    /// Makes publish() stop waiting on full queues (shutdown).
    void stop() noexcept { stopping_.store(true, std::memory_order_release); }

    /// Whether every shard's queue is empty (the drain waits for it).
    [[nodiscard]] bool queues_empty() const noexcept;

  private:
    std::vector<shard*> shards_;
    probe& probe_;
    completion_handler on_complete_;
    model::audience_sequencer sequencer_;
    std::atomic<bool> stopping_{false};
};

}  // namespace herald::fanout
