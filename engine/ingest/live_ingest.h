// The live consumer: reads herald.announcements, validates each record,
// sends refused records to herald.dlq with their reason, hands the rest to
// the dispatcher, and commits offsets only once the broadcast is done on
// every shard (at-least-once).
//
// Every heraldd instance must see every announcement (its live connections
// could be in any audience), so each instance consumes in a consumer group
// of its own ("herald-live-<instance>"), which also stores its offsets. A
// bad record never crashes ingest and never stalls its partition: it is
// dead-lettered, counted and its offset moves on like any other.
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/result.h"
#include "fanout/broadcast.h"
#include "fanout/dispatcher.h"
#include "ingest/decoder.h"
#include "ingest/probe.h"

namespace RdKafka {
class KafkaConsumer;
class Producer;
class Message;
}  // namespace RdKafka

namespace herald::ingest {

struct live_ingest_options {
    std::string bootstrap_servers;
    std::string group_id;
    std::string client_id = "heraldd";
    std::string topic = "herald.announcements";
    std::string dlq_topic = "herald.dlq";
    std::string offset_reset = "latest";
    bool embedded_cluster = false;  // tune group timeouts for the mock
    std::uint32_t commit_interval_ms = 1000;
    std::uint32_t fetch_wait_max_ms = 0;  // 0 = 2 against the mock cluster, 100 otherwise
    /// What librdkafka may prefetch per partition (queued.max.messages.kbytes):
    /// the only buffer between Kafka and the shard queues.
    std::uint32_t prefetch_kib = 4096;
    /// Asked before every poll: true pauses the assigned partitions until it
    /// turns false (full shard queues, memory ceiling); the backlog stays in Kafka.
    std::function<bool()> overloaded;
    limits decode_limits;
};

class live_ingest {
  public:
    live_ingest(live_ingest_options options, probe& probe);
    ~live_ingest();
    live_ingest(const live_ingest&) = delete;
    live_ingest& operator=(const live_ingest&) = delete;

    /// Connects, subscribes and starts the ingest thread.
    base::result<void> start(fanout::dispatcher& dispatcher);

    /// Any thread: a broadcast finished on every shard.
    void on_broadcast_done(const fanout::broadcast_ptr& b);

    /// True once the group assignment is in place (for /readyz).
    [[nodiscard]] bool ready() const noexcept { return assigned_.load(std::memory_order_acquire); }

    /// Stops reading new records; completions and commits continue.
    void stop_consuming() noexcept { consuming_.store(false, std::memory_order_release); }

    /// Final commit, leave the group, join the thread. Call after the shards
    /// have finished (or cancelled) every dispatched broadcast.
    void finish();

    class rebalancer;  // librdkafka callbacks, defined in the .cc

  private:
    void run();
    void process(RdKafka::Message& m);
    void dead_letter(RdKafka::Message& m, const base::error& why);
    void drain_completions();
    void commit(bool synchronous);
    void update_lag();

    live_ingest_options options_;
    probe& probe_;
    fanout::dispatcher* dispatcher_ = nullptr;
    std::unique_ptr<rebalancer> callbacks_;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
    std::unique_ptr<RdKafka::Producer> dlq_;
    moodycamel::ConcurrentQueue<fanout::kafka_position> done_;
    std::atomic<bool> assigned_{false};
    std::atomic<bool> consuming_{true};
    std::atomic<bool> finishing_{false};
    std::thread thread_;
};

}  // namespace herald::ingest
