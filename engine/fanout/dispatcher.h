// The dispatcher turns a validated announcement into one immutable Broadcast
// and hands it to every shard: O(shards) work per announcement, whatever the
// audience size. It runs on the ingest thread only.
//
// Sequence numbers: an audience's announcements share one Kafka partition
// (record key = audience), so the partition offset is already a durable,
// increasing per-audience position. seq = offset + 1, raised if needed to stay
// strictly above the audience's previous seq (covers producers that did not
// key by audience). Sequence numbers are therefore increasing but not dense.
//
// Backpressure: when a shard's queue is full the dispatcher waits (and
// counts it) instead of buffering; the ingest thread stops polling Kafka
// meanwhile, so the backlog stays in Kafka, not in memory.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "fanout/broadcast.h"
#include "fanout/probe.h"
#include "fanout/shard.h"
#include "herald/v1/announcement.pb.h"

namespace herald::fanout {

/// seq = offset + 1, raised to stay strictly above the audience's previous
/// seq. A record read again from the partition that carried the audience's
/// last one (a partition assigned again, a history read-back) keeps
/// offset + 1, the seq it had the first time — unless it had been raised
/// (an audience whose records came from several partitions). One per
/// consumer thread.
class audience_sequencer {
  public:
    std::uint64_t next(const std::string& audience, std::int64_t offset, std::int32_t partition = 0) {
        const auto at = static_cast<std::uint64_t>(std::max<std::int64_t>(offset, 0)) + 1;
        position& last = last_[audience];
        if (last.seq != 0 && partition == last.partition && offset <= last.offset)
            return at;  // read again: the same seq as before
        last.seq = std::max(last.seq + 1, at);
        last.partition = partition;
        last.offset = offset;
        return last.seq;
    }

  private:
    struct position {
        std::uint64_t seq = 0;
        std::int32_t partition = -1;
        std::int64_t offset = -1;
    };
    std::unordered_map<std::string, position> last_;
};

class dispatcher {
  public:
    /// Called once per broadcast when every shard is done with it (any thread).
    using completion_handler = std::function<void(const broadcast_ptr&)>;

    dispatcher(std::vector<shard*> shards, probe& probe, completion_handler on_complete);

    /// Ingest thread: builds the broadcast (encodes its frames once) and
    /// queues it on every shard. Returns the broadcast, already complete if
    /// it had expired.
    broadcast_ptr publish(const herald::v1::Announcement& a, kafka_position source);

    /// Ingest thread: an announcement delivered before this process started,
    /// read back from Kafka so reconnecting clients can recover it. Every
    /// shard keeps it in its history; nobody receives it now. Dropped when
    /// it has expired or is not yet due.
    void remember(const herald::v1::Announcement& a, kafka_position source, std::int64_t refill_from_offset);

    /// The completion path shards call into (last shard only).
    void on_shard_done(const broadcast_ptr& b);

    /// Makes publish() stop waiting on full queues (shutdown).
    void stop() noexcept { stopping_.store(true, std::memory_order_release); }

    /// Builds a broadcast without queuing it (also used by benchmarks).
    static std::shared_ptr<broadcast> build(const herald::v1::Announcement& a, std::uint64_t seq,
                                            kafka_position source);

  private:
    std::vector<shard*> shards_;
    probe& probe_;
    completion_handler on_complete_;
    audience_sequencer sequencer_;
    std::atomic<bool> stopping_{false};
};

}  // namespace herald::fanout
