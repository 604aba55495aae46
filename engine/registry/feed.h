// The outbound registry's change feed: every instance reads the whole
// herald.subscriptions topic (no consumer group — each needs every record),
// writes each change to its store together with the feed position, then
// applies it to the in-memory index. The ops API and the CLI write through
// the same topic, so every instance sees every change in the same order, and
// a write returns once this instance has applied it (read-your-writes).
//
// Records: key = tenant/recipient_id (a bare recipient_id, as written before
// tenants were part of the key, is the default tenant's); value = canonical JSON (header content-type:
// application/json) or protobuf binary of herald.v1.Subscription; an empty
// value (tombstone) erases the recipient. Invalid records are counted, never
// applied, and dead-lettered as their position, reason and subscriber —
// never their value, which holds the person's address. Plain http://
// webhooks are refused the same way unless allow_insecure_webhooks.
#pragma once

#include <prometheus/counter.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/loop_thread.h"
#include "base/result.h"
#include "herald/v1/subscription.pb.h"
#include "kafka/client_config.h"
#include "metrics/registry.h"
#include "registry/store.h"

namespace RdKafka {
class KafkaConsumer;
class Message;
class Producer;
}  // namespace RdKafka

namespace herald::config {
struct config;
}

namespace herald::registry {

struct feed_options {
    std::string bootstrap_servers;
    std::string topic = "herald.subscriptions";
    std::string dlq_topic = "herald.dlq";
    std::string client_id = "heraldd";
    /// The embedded mock cluster starts empty on every run: read from its
    /// beginning instead of the stored positions.
    bool embedded_cluster = false;
    /// Off: an active webhook subscription to a plain http:// URL is
    /// dead-lettered (insecure_webhook), like any other refused record.
    bool allow_insecure_webhooks = false;
    /// The operator's librdkafka properties (--kafka-property).
    kafka::properties kafka_properties;

    /// The change feed of a heraldd configuration on the given cluster.
    [[nodiscard]] static feed_options from(const config::config& cfg, const std::string& bootstrap_servers,
                                           bool embedded_cluster);
};

class subscription_feed {
  public:
    /// Receives every applied change on the feed thread: a subscription, or
    /// nullptr; and the subscriber's key (tenant/recipient_id, see
    /// subscription_codec.h) — of the one to forget when nullptr.
    using apply_handler =
        std::function<void(const herald::v1::Subscription*, const std::string& subscriber_key)>;

    subscription_feed(feed_options options, store& store, metrics::registry& metrics, apply_handler on_apply);
    ~subscription_feed();
    subscription_feed(const subscription_feed&) = delete;
    subscription_feed& operator=(const subscription_feed&) = delete;

    /// Loads the store into the index (through on_apply), then follows the topic.
    base::result<std::size_t> start();
    void stop();

    /// One change: a subscription's canonical JSON, or nullopt to erase the subscriber.
    struct change {
        std::string key;  // subscriber_key(tenant, recipient_id)
        std::optional<std::string> json;
    };
    /// Writes changes to the topic (in order) and waits until this instance
    /// has applied all of them.
    base::result<void> publish(const std::vector<change>& changes, std::chrono::milliseconds timeout);
    base::result<void> publish(const herald::v1::Subscription& s, std::chrono::milliseconds timeout);
    base::result<void> publish_tombstone(const std::string& tenant, const std::string& recipient_id,
                                         std::chrono::milliseconds timeout);

    /// The stored subscription of a tenant's recipient, if any.
    [[nodiscard]] std::optional<herald::v1::Subscription> get(const std::string& tenant,
                                                              const std::string& recipient_id);

  private:
    /// One round on the feed thread: read what is there, write it to the
    /// store in one transaction, apply it, wake the writers waiting for it.
    void step();
    /// Writes what was refused — source position, reason, rule, and the
    /// subscriber key `who` ("tenant/recipient_id", "" when unknown) — to the
    /// dead-letter topic; never the record's value.
    void dead_letter(const RdKafka::Message& m, const std::string& who, const std::string& reason,
                     const std::string& detail);

    feed_options options_;
    store& store_;
    std::mutex store_mutex_;  // the feed thread writes, the ops thread reads
    apply_handler on_apply_;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
    std::unique_ptr<RdKafka::Producer> producer_;

    std::mutex applied_mutex_;
    std::condition_variable applied_cv_;
    std::map<std::int32_t, std::int64_t> applied_;  // next offset per partition
    bool stopping_ = false;                         // applied_mutex_ held
    [[nodiscard]] bool stopped() {
        std::lock_guard lock(applied_mutex_);
        return stopping_;
    }

    prometheus::Counter* applied_total_;
    prometheus::Counter* erased_total_;
    prometheus::Family<prometheus::Counter>* rejected_;
    base::loop_thread loop_{"herald-feed"};
};

}  // namespace herald::registry
