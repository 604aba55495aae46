// A consumer of herald.announcements: reads records, validates each one,
// hands the valid ones to its owner and commits offsets only once the owner
// says a record is finished (at-least-once).
//
// heraldd runs two, because live and outbound delivery need different
// ownership of the same records:
//   * live: every instance must see every announcement (its connections could
//     be in any audience), so each instance consumes in a group of its own
//     ("herald-live-<instance>"); a record is finished when every shard has
//     released it.
//   * outbound: each opted-in subscriber must get one message however many
//     instances run, so all instances share one group ("herald-outbound") and
//     Kafka gives each partition to exactly one of them; a record is
//     finished once the broadcast is written down in the instance's
//     checkpoint store. This consumer also dead-letters refused records, so
//     a cluster writes one dead letter per bad record, not one per instance.
// A bad record never crashes a consumer and never stalls its partition. Each
// pauses its own partitions when its side is overloaded, so a slow gateway
// does not stall live fan-out and a flood of live tickers does not grow
// Herald's memory: the backlog stays in Kafka.
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/loop_thread.h"
#include "base/result.h"
#include "herald/v1/announcement.pb.h"
#include "ingest/decoder.h"
#include "ingest/probe.h"
#include "kafka/client_config.h"
#include "model/fundamental.h"

namespace RdKafka {
class KafkaConsumer;
class Producer;
class Message;
}  // namespace RdKafka

namespace herald::config {
struct config;
}

namespace herald::ingest {

struct consumer_options {
    /// "live" or "outbound": the `consumer` label of its metrics and its log name.
    std::string name = "live";
    std::string bootstrap_servers;
    std::string group_id;
    std::string client_id = "heraldd";
    std::string topic = "herald.announcements";
    std::string dlq_topic = "herald.dlq";
    std::string offset_reset = "latest";
    bool embedded_cluster = false;  // tune group timeouts for the mock
    std::chrono::milliseconds commit_interval{1000};
    std::chrono::milliseconds fetch_wait_max{0};  // 0 = 2 ms against the mock cluster, 100 ms otherwise
    /// What librdkafka may prefetch per partition (queued.max.messages.kbytes):
    /// the only buffer between Kafka and the shard queues.
    std::uint32_t prefetch_kib = 4096;
    /// Asked before every poll: true pauses the assigned partitions until it
    /// turns false (full shard queues, memory ceiling); the backlog stays in Kafka.
    std::function<bool()> overloaded;
    /// Refused records go to dlq_topic with their reason (one consumer group
    /// of a cluster should do this); otherwise they are skipped.
    bool dead_letter = true;
    /// Read-back at assignment (live consumer): the last
    /// `history_refill_max_records` records of a partition before the
    /// committed position go to the history handler instead of being
    /// delivered, so clients reconnecting across a restart recover them.
    /// 0 = off.
    std::uint32_t history_refill_max_records = 0;
    /// The operator's librdkafka properties (--kafka-property), for the
    /// consumer and its dead-letter producer alike.
    kafka::properties kafka_properties;
    limits decode_limits;

    /// heraldd's live consumer: a group of its own per instance (every
    /// instance serves its connections with every announcement), refused
    /// records skipped, history read back at assignment.
    [[nodiscard]] static consumer_options live(const config::config& cfg,
                                               const std::string& bootstrap_servers, bool embedded_cluster);
    /// heraldd's outbound consumer: the group every instance shares (one
    /// message per subscriber), refused records dead-lettered, commits soon.
    [[nodiscard]] static consumer_options outbound(const config::config& cfg,
                                                   const std::string& bootstrap_servers,
                                                   bool embedded_cluster);
};

class announcement_consumer {
  public:
    /// Consumer thread: a valid announcement. Returns true when the record is
    /// finished at once; false when the owner calls finished() later.
    using handler = std::function<bool(const herald::v1::Announcement&, model::kafka_position)>;
    /// Consumer thread: an announcement read back for the history; every
    /// record of its partition from `refill_from_offset` on is read back.
    using history_handler = std::function<void(const herald::v1::Announcement&, model::kafka_position,
                                               model::kafka_offset refill_from)>;

    announcement_consumer(consumer_options options, probe& probe);
    ~announcement_consumer();
    announcement_consumer(const announcement_consumer&) = delete;
    announcement_consumer& operator=(const announcement_consumer&) = delete;

    /// Connects, subscribes and starts the consumer thread.
    base::result<void> start(handler on_announcement, history_handler on_history = {});

    /// Any thread: the record at `p` is finished; its offset may be committed.
    void finished(model::kafka_position p);

    /// True once the group assignment is in place and the history read back (for /readyz).
    [[nodiscard]] bool ready() const noexcept {
        return assigned_.load(std::memory_order_acquire) && refilling_.load(std::memory_order_acquire) == 0;
    }

    /// Consumer thread only (inside a handler): the epoch of a partition's
    /// sequence space (model/position.h), from the cluster id Kafka reports.
    [[nodiscard]] const std::string& epoch_of(model::kafka_partition partition);

    /// Stops reading new records; completions and commits continue.
    void stop_consuming() noexcept { consuming_.store(false, std::memory_order_release); }

    /// Final commit (waiting at most `deadline` for Kafka's answer), leave
    /// the group, end the thread. Call after the shards have finished (or
    /// cancelled) every dispatched broadcast. Idempotent.
    void finish(std::chrono::milliseconds deadline = std::chrono::seconds(5));

    class rebalancer;  // librdkafka callbacks, defined in the .cc

  private:
    /// One round of the consumer loop: pause or resume, consume, finish
    /// completions, commit and measure lag when due.
    void step();
    void set_paused(bool pause);
    void handle(RdKafka::Message& m);  // a record or an event from consume()
    void process(RdKafka::Message& m);
    void end_refill(std::int32_t partition);
    /// True when `m` was part of a partition's read-back (and handled as such).
    bool refill(RdKafka::Message& m);
    /// True when queued: the record's offset is finished by the delivery report.
    bool dead_letter(RdKafka::Message& m, const base::error& why);
    void drain_completions();
    /// Commits what is finished; true when a commit was sent.
    bool commit(bool synchronous);
    void update_lag(bool paused);

    consumer_options options_;
    probe& probe_;
    handler on_announcement_;
    history_handler on_history_;
    std::unique_ptr<rebalancer> callbacks_;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
    std::unique_ptr<RdKafka::Producer> dlq_;
    moodycamel::ConcurrentQueue<model::kafka_position> done_;
    std::atomic<bool> assigned_{false};
    std::atomic<std::uint32_t> refilling_{0};  // partitions still reading back
    std::atomic<bool> consuming_{true};
    // Consumer-thread state below.
    std::chrono::steady_clock::time_point next_commit_{};
    std::chrono::steady_clock::time_point next_lag_{};
    bool paused_ = false;
    std::uint64_t paused_polls_ = 0;
    std::string cluster_id_;              // asked once a record arrived (metadata is known then)
    std::vector<std::string> epochs_;     // by partition
    bool closing_ = false;                // the final commit is done: a revocation commits nothing more
    bool closed_ = false;                 // the group is left
    std::uint64_t commits_sent_ = 0;      // asynchronous commits sent...
    std::uint64_t commits_answered_ = 0;  // ...and answered (offset_commit_cb)
    base::loop_thread loop_;
};

}  // namespace herald::ingest
