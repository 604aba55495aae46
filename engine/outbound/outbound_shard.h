// Outbound delivery: opted-in subscribers reached through HTTP gateways
// (generic webhooks, the WhatsApp Business Cloud API, an SMS gateway), each
// at the rate the gateway allows.
//
// Recipients are hashed to outbound shards. A shard is one thread with one
// io_context that owns its slice of the registry (recipient -> channel,
// address, audiences), one lane per gateway endpoint (a token bucket holding
// rate/N and burst/N of that endpoint's limit, a priority queue, a keep-alive
// connection pool) and the retry timers of its deliveries. Nothing is shared
// between shards, so rates split without a lock. A delivery checks the
// recipient's current state right before it is sent, so an opt-out consumed
// in the middle of a running broadcast stops it for that recipient at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "fanout/broadcast.h"
#include "herald/v1/receipt.pb.h"
#include "herald/v1/subscription.pb.h"
#include "metrics/registry.h"
#include "outbound/retry_policy.h"
#include "outbound/status_board.h"
#include "outbound/webhook_signature.h"

namespace herald::outbound {

struct gateway_options {
    std::uint32_t shards = 1;
    // Generic webhooks: limits per endpoint (scheme://host:port).
    double webhook_rate = 80;
    double webhook_burst = 80;
    std::vector<webhook_secret> webhook_secrets;
    // WhatsApp Business Cloud API: limits per sender phone number.
    std::string whatsapp_base_url = "https://graph.facebook.com";
    std::string whatsapp_api_version = "v21.0";
    std::string whatsapp_phone_number_id;
    std::string whatsapp_token;
    std::string whatsapp_template = "herald_announcement";
    std::string whatsapp_language = "en";
    double whatsapp_rate = 80;
    double whatsapp_burst = 80;
    // SMS: one HTTP gateway (signed like a webhook, with "to"); empty = none.
    std::string sms_gateway_url;
    double sms_rate = 10;
    double sms_burst = 10;
    // Every endpoint.
    std::uint32_t connections_per_endpoint = 4;  // per shard
    /// Deliveries held in memory over all shards; broadcasts beyond it wait
    /// unlisted, crisis first (see outbound_shard.cc, "bounded backlog").
    std::uint64_t max_pending = 1'000'000;
    std::int64_t recipient_min_interval_ns = 6'000'000'000;
    // Per tenant, over all its endpoints; 0 = no tenant limit.
    double tenant_rate = 0;
    double tenant_burst = 0;
    std::int64_t sender_pause_ns = 300'000'000'000;  // after a spam-class refusal
    std::int64_t connect_timeout_ns = 3'000'000'000;
    std::int64_t response_timeout_ns = 10'000'000'000;
    bool verify_tls = true;
    retry_limits retry;
};

/// The final word on one recipient of one broadcast.
struct outcome_event {
    const fanout::broadcast& broadcast;
    const std::string& recipient_id;
    herald::v1::Channel channel;
    herald::v1::Outcome outcome;
    const std::string& reason;
    std::uint32_t attempts;
    bool exhausted;  // failed after retrying: also dead-lettered
};
using outcome_handler = std::function<void(const outcome_event&)>;

class outbound_probe;
class checkpoints;

enum class deliver_result : std::uint8_t {
    written_down,  // crash-safe: its Kafka offset may be committed
    known,         // written down before (redelivered): not sent again
    not_durable,   // being sent, but the checkpoint store failed: keep the offset uncommitted
};

/// All outbound shards; routes subscriptions and broadcasts to them.
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

    /// Any thread. Subscriptions are applied in the order given per recipient.
    void apply(const herald::v1::Subscription& s);
    void forget(const std::string& recipient_id);
    /// Any thread: whether any subscriber ever named `audience` (a broadcast
    /// to another audience has nobody to reach and is not written down).
    [[nodiscard]] bool interested(const std::string& audience) const;
    /// Any thread: writes the broadcast down (crash safety), then delivers it
    /// to every opted-in subscriber of its audience.
    deliver_result deliver(const fanout::broadcast_ptr& b);
    /// After a restart: continue an interrupted broadcast for everyone not in `done`.
    void resume(const fanout::broadcast_ptr& b, std::shared_ptr<const std::unordered_set<std::string>> done);

    /// Subscribers known (opted in or not), all shards.
    [[nodiscard]] std::uint64_t recipients() const noexcept;
    /// Deliveries queued or in flight, all shards.
    [[nodiscard]] std::uint64_t pending() const noexcept;
    /// Broadcasts waiting for the backlog to make room, all shards.
    [[nodiscard]] std::uint64_t waiting() const noexcept;

  private:
    class shard;
    gateway_options options_;
    status_board& board_;
    std::unique_ptr<outbound_probe> probe_;
    outcome_handler on_outcome_;
    checkpoints* checkpoints_;
    std::vector<std::unique_ptr<shard>> shards_;
    mutable std::shared_mutex audiences_mutex_;
    std::unordered_set<std::string> audiences_;  // named by any subscription since start
};

}  // namespace herald::outbound
