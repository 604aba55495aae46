// What outbound delivery is configured with: the gateways (generic webhooks,
// the WhatsApp Business Cloud API, one SMS gateway), their rate limits, the
// per-recipient pair limit, the per-tenant limit, timeouts and retries; and
// the shape of the final word on one recipient (outcome_event) that goes to
// the status board, the checkpoint store and herald.receipts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "herald/v1/receipt.pb.h"
#include "herald/v1/subscription.pb.h"
#include "model/broadcast.h"
#include "outbound/retry_policy.h"
#include "outbound/webhook_signature.h"
#include "security/address_guard.h"

namespace herald::config {
struct config;
}

namespace herald::outbound {

struct gateway_options {
    std::uint32_t shards = 1;
    // Generic webhooks: limits per endpoint (scheme://host:port).
    double webhook_rate = 80;
    double webhook_burst = 80;
    /// Sign every webhook (and SMS gateway request) whose subscriber has no
    /// webhook_secret of its own; empty with no own secret = unsigned.
    std::vector<webhook_secret> webhook_secrets;
    /// Plain http:// webhooks: refused unless allowed (their bodies and
    /// signatures would cross the network readable and replayable).
    bool allow_insecure_webhooks = false;
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
    std::string sms_gateway_token;  // sent as "Authorization: Bearer <token>"; empty = none
    double sms_rate = 10;
    double sms_burst = 10;
    // Every endpoint.
    std::uint32_t connections_per_endpoint = 4;  // per shard
    /// Deliveries held in memory over all shards; broadcasts beyond it wait
    /// unlisted, crisis first (see outbound_shard.cc, "bounded backlog").
    std::uint64_t max_pending = 1'000'000;
    std::chrono::nanoseconds recipient_min_interval = std::chrono::seconds(6);
    // Per tenant, over all its endpoints; 0 = no tenant limit.
    double tenant_rate = 0;
    double tenant_burst = 0;
    std::chrono::nanoseconds sender_pause = std::chrono::minutes(5);  // after a spam-class refusal
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds(3);
    std::chrono::nanoseconds response_timeout = std::chrono::seconds(10);
    bool verify_tls = true;
    /// PEM CAs trusted besides the system's ("" = none); checked by check_ca_file.
    std::string ca_file;
    retry_limits retry;
    /// Channels sent again after a crash although they cannot de-duplicate
    /// (resend_unknown_channels); the others are sent at most once.
    bool resend_unknown_whatsapp = false;
    bool resend_unknown_sms = false;
    /// Which addresses deliveries may connect to (default: public ones only).
    security::address_guard guard;

    /// The outbound settings of a heraldd configuration (config::load read
    /// the secret files and checked the webhook secrets, so they parse).
    [[nodiscard]] static gateway_options from(const config::config& cfg);
};

/// Reads `path` (outbound_ca_file) now, so a wrong path or a file without a
/// PEM certificate stops start-up naming the setting instead of failing
/// every delivery to a private gateway later.
[[nodiscard]] base::result<void> check_ca_file(const std::string& path);

/// Whether a delivery on `c` is sent at most once across a crash: marked
/// started (durably, in batches) before its request, and settled as
/// `unknown` instead of re-sent when a crash interrupted it. Webhooks carry
/// idempotency keys and are re-sent; so are the channels listed in
/// resend_unknown_channels.
[[nodiscard]] bool at_most_once(herald::v1::Channel c, const gateway_options& o) noexcept;

/// Of the deliveries a crash interrupted (subscriber key -> the channel it
/// was marked on), those that settle as `unknown` rather than go again.
[[nodiscard]] std::unordered_set<std::string> unknown_after_crash(
    const std::unordered_map<std::string, herald::v1::Channel>& interrupted, const gateway_options& o);

/// The final word on one recipient of one broadcast.
struct outcome_event {
    const model::broadcast& broadcast;
    const std::string& recipient_id;
    herald::v1::Channel channel;
    herald::v1::Outcome outcome;
    const std::string& reason;
    std::uint32_t attempts;
    bool exhausted;  // failed after retrying: also dead-lettered
};
using outcome_handler = std::function<void(const outcome_event&)>;

}  // namespace herald::outbound
