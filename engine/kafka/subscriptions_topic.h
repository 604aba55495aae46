// Erasure has to reach Kafka. `forget` erases a person from the registry and
// writes a tombstone to herald.subscriptions, but their earlier records
// there (address included) are removed only by log compaction: within
// max.compaction.lag.ms when the topic sets it, whenever the log cleaner
// gets round to it otherwise, and never on a delete-policy topic (those keep
// records until retention ends). So on a real cluster heraldd creates the
// topic compacted with that bound (Admin API CreateTopics) when it is
// missing, reads its configuration back at start (DescribeConfigs, in the
// background: start-up does not wait for it) and says what it found, in a
// log line and in
//
//   herald_subscriptions_topic_compacted  1 compacted, 0 not, -1 unknown
//   herald_subscriptions_topic_max_compaction_lag_seconds  (once known)
//
// librdkafka's mock cluster (the embedded default) keeps records in memory
// only, never compacts and answers neither CreateTopics nor DescribeConfigs
// (2.0.2 has no controller to send them to), so there the gauge stays -1 and
// one info line says why. judge() is the pure decision, unit-tested.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/loop_thread.h"
#include "kafka/client_config.h"
#include "metrics/registry.h"

namespace RdKafka {
class Producer;
}

namespace herald::kafka {

enum class compaction : int { unknown = -1, off = 0, on = 1 };

struct compaction_verdict {
    compaction state = compaction::unknown;
    std::optional<std::int64_t> max_lag_ms;  // the topic's max.compaction.lag.ms, when compacted
    bool lag_too_long = false;               // compacted, but slower than the bound Herald promises
    std::string explanation;                 // one sentence for the log
};

/// A topic's configuration (DescribeConfigs: name -> value) judged against
/// `bound`: compacted (cleanup.policy includes compact) or not, and whether
/// max.compaction.lag.ms keeps within the bound (absent counts as unbounded).
[[nodiscard]] compaction_verdict judge(const std::map<std::string, std::string>& topic_config,
                                       std::chrono::milliseconds bound);

/// The topic configuration heraldd creates herald.subscriptions with.
[[nodiscard]] properties creation_config(std::chrono::milliseconds max_compaction_lag);

class subscriptions_topic {
  public:
    struct options {
        std::string bootstrap_servers;
        properties kafka_properties;  // the operator's
        std::string client_id = "heraldd";
        std::string topic = "herald.subscriptions";
        std::uint32_t partitions = 4;
        std::chrono::milliseconds max_compaction_lag{86400000};
        /// Bound of each Admin API call (and of the topic listing).
        std::chrono::milliseconds timeout{15000};
    };

    /// Registers the gauges (-1 until something is known).
    subscriptions_topic(options o, metrics::registry& metrics);
    ~subscriptions_topic();
    subscriptions_topic(const subscriptions_topic&) = delete;
    subscriptions_topic& operator=(const subscriptions_topic&) = delete;

    /// The embedded mock cluster: nothing to ask; one info line, gauge -1.
    void embedded();

    /// A real cluster: creates the topic compacted when it does not exist
    /// (waiting at most about 2 x timeout), then checks its configuration on
    /// a thread of its own. Failures are logged, never fatal: the registry
    /// feed reports a cluster it cannot use.
    [[nodiscard]] base::result<void> start();

    /// Ends the background check (within ~100 ms) and the admin client.
    void stop();

    [[nodiscard]] compaction state() const noexcept {
        return static_cast<compaction>(state_.load(std::memory_order_acquire));
    }

  private:
    void ensure_exists();
    void check();  // on loop_
    void report(const compaction_verdict& v);

    options options_;
    prometheus::Gauge* compacted_ = nullptr;
    prometheus::Family<prometheus::Gauge>* lag_ = nullptr;
    std::unique_ptr<RdKafka::Producer> admin_;
    std::atomic<int> state_{static_cast<int>(compaction::unknown)};
    std::atomic<bool> stopping_{false};
    base::loop_thread loop_{"herald-kadmin"};
};

}  // namespace herald::kafka
