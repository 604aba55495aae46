// Herald's configuration: one typed struct, and one table of properties that
// is the single source for command-line flags, HERALD_* environment
// variables, config-file keys, --help and validation (Redpanda-style).
//
// Values are typed where they are used: durations as std::chrono types
// (the property's name keeps its unit, e.g. ping_interval_ms), choices as
// enums, and every bound is checked once, here, by the property table.
//
// Precedence, lowest first: defaults < config file < environment < flags.
// Every error names the field and where the bad value came from, so a bad
// config stops start-up with a message an operator can act on.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/result.h"

namespace herald::config {

/// What happens to a live connection whose send queue is full.
enum class slow_consumer : std::uint8_t { close, drop };
/// Where a consumer group without a committed offset starts.
enum class kafka_start : std::uint8_t { latest, earliest };

/// librdkafka properties an operator gives (--kafka-property KEY=VALUE), in
/// order, each key once: applied to every Kafka client Herald creates
/// (kafka/client_config.h), e.g. security.protocol, sasl.*, ssl.*.
using kafka_properties = std::vector<std::pair<std::string, std::string>>;

struct config {
    using milliseconds = std::chrono::milliseconds;
    using seconds = std::chrono::seconds;

    std::string client_host = "0.0.0.0";
    std::uint16_t client_port = 8080;
    std::string ops_host = "0.0.0.0";
    std::uint16_t ops_port = 8081;
    std::uint32_t shards = 0;  // 0 = number of cores, resolved by load()
    std::string brokers;       // "" = embedded mock cluster
    std::uint32_t mock_brokers = 1;
    std::uint32_t topic_partitions = 4;
    std::string topic_announcements = "herald.announcements";
    std::string topic_subscriptions = "herald.subscriptions";
    std::string topic_receipts = "herald.receipts";
    std::string topic_dlq = "herald.dlq";
    kafka_properties kafka;  // --kafka-property, kafka.KEY = VALUE, HERALD_KAFKA_PROPERTIES
    milliseconds subscriptions_max_compaction_lag{86400000};
    std::string group_id;  // "" = "herald-live-" + instance_id
    std::string outbound_group_id = "herald-outbound";
    std::string instance_id;  // "" = hostname-pid
    kafka_start offset_reset = kafka_start::latest;
    std::uint32_t max_payload_bytes = 65536;
    seconds max_clock_skew{300};
    seconds max_deliver_ahead{604800};
    std::uint32_t shard_queue_capacity = 65536;
    std::uint32_t send_queue_frames = 1024;
    std::uint32_t send_queue_bytes = 4194304;
    slow_consumer slow_consumer_policy = slow_consumer::close;
    milliseconds ping_interval{20000};
    milliseconds handshake_timeout{10000};
    std::uint32_t max_audiences_per_connection = 16;
    std::uint32_t max_client_frame_bytes = 4096;
    std::uint32_t max_connections = 0;  // 0 = derived from the open-file limit
    milliseconds commit_interval{1000};
    milliseconds fetch_wait_max{0};  // 0 = chosen for the cluster kind
    milliseconds shutdown_deadline{10000};
    std::uint32_t memory_limit_mb = 0;  // 0 = no ceiling
    std::uint32_t kafka_prefetch_kib = 4096;
    std::uint32_t history_max_per_audience = 1000;
    seconds history_max_age{3600};
    std::uint32_t history_refill_max_records = 10000;
    seconds schedule_horizon{5};  // deliver_at further ahead: written to the schedule store
    // Outbound subscribers and gateways.
    std::string data_dir = "herald-data";
    std::uint32_t outbound_shards = 2;
    std::uint32_t webhook_rate = 80;
    std::uint32_t webhook_burst = 80;
    // Secrets: the *_file settings are read by load() into the value beside
    // them, so everything after load() sees only the value (see load()).
    std::string webhook_secrets;  // comma-separated whsec_..., format checked by load()
    std::string webhook_secrets_file;
    bool allow_insecure_webhooks = false;  // plain http:// webhook subscriptions
    std::string whatsapp_base_url = "https://graph.facebook.com";
    std::string whatsapp_api_version = "v21.0";
    std::string whatsapp_phone_number_id;
    std::string whatsapp_token;
    std::string whatsapp_token_file;
    std::string whatsapp_template = "herald_announcement";
    std::string whatsapp_language = "en";
    std::uint32_t whatsapp_rate = 80;
    std::uint32_t whatsapp_burst = 80;
    std::string sms_gateway_url;    // "" = no SMS gateway: SMS subscribers fail with no_gateway:sms
    std::string sms_gateway_token;  // never from argv: environment, config file or the _file setting
    std::string sms_gateway_token_file;
    std::uint32_t sms_rate = 10;
    std::uint32_t sms_burst = 10;
    std::uint32_t outbound_connections = 4;
    std::uint32_t outbound_max_pending = 1000000;
    std::uint32_t outbound_max_waiting = 10000;
    milliseconds recipient_min_interval{6000};
    std::uint32_t tenant_rate = 0;   // 0 = no per-tenant limit
    std::uint32_t tenant_burst = 0;  // 0 = tenant_rate
    std::uint32_t retry_max_attempts = 8;
    milliseconds retry_base{500};
    seconds retry_max_age{3600};
    seconds sender_pause{300};
    milliseconds outbound_connect_timeout{3000};
    milliseconds outbound_response_timeout{10000};
    bool outbound_tls_verify = true;
    std::string outbound_ca_file;  // PEM CAs trusted besides the system's ("" = none)
    milliseconds checkpoint_interval{1000};
    std::string resend_unknown_channels;  // comma-separated: sms, whatsapp; empty = at most once on both
    // Access control (docs/SECURITY.md).
    std::string admin_keys_file;  // "" = a generated <data_dir>/admin.key
    bool metrics_require_key = false;
    std::string jwt_hs256_secret_file;
    std::string jwt_public_key_file;
    std::string jwks_file;
    std::string jwt_issuer;
    std::string jwt_audience;
    std::string public_audiences;           // comma-separated patterns
    std::string allowed_origins;            // comma-separated; "" = same-host browsers only
    std::string outbound_allowed_networks;  // comma-separated CIDRs
    std::uint32_t max_connections_per_ip = 1000;
    std::uint32_t max_connects_per_ip_per_s = 200;
    std::string connection_limit_exempt = "127.0.0.0/8,::1/128";
    // TLS on the client and ops ports (docs/SECURITY.md).
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string ops_tls_cert_file;   // "" = tls_cert_file
    std::string ops_tls_key_file;    // "" = tls_key_file
    std::string tls_client_ca_file;  // mutual TLS on the ops port
    bool tls_kernel_offload = true;  // kernel TLS where the host supports it
    std::uint32_t ops_max_body_bytes = 16u << 20;
    std::uint32_t ops_max_connections = 256;
    base::log_level log_level = base::log_level::info;
    std::string config_file;  // the file that was loaded, if any
};

/// One documented setting.
struct property_info {
    std::string name;  // file key, e.g. client_port
    std::string flag;  // --client-port
    std::string env;   // HERALD_CLIENT_PORT
    std::string description;
    std::string default_value;
    std::string bounds;
    /// A credential: masked wherever settings are shown (describe(), --help).
    bool secret = false;
    /// A credential refused on the command line, where every local user
    /// reads it (ps, /proc/PID/cmdline): environment or config file only.
    bool argv_refused = false;
};

[[nodiscard]] const std::vector<property_info>& properties();

struct loaded {
    config cfg;
    std::vector<std::string> warnings;
};

/// Builds the config from defaults, the file named by --config / HERALD_CONFIG,
/// the environment ("NAME=value" strings) and argv. --help and --version
/// return a failure with std::errc::operation_canceled and detail "help" /
/// "version".
///
/// Secrets need never be in argv: each has a *_file setting (read here, at
/// start; a trailing newline is dropped; a missing, unreadable, empty or
/// malformed file is an error naming the setting and the file, never its
/// contents) and a HERALD_* variable holding the value itself. A value flag
/// that still works (--whatsapp-token, --webhook-secrets) adds a warning;
/// sms_gateway_token is refused as a flag. A value and its file together
/// are an error: which one wins would be a guess.
[[nodiscard]] base::result<loaded> load(int argc, const char* const* argv,
                                        const std::vector<std::string>& env);

/// --help text generated from properties().
[[nodiscard]] std::string usage(std::string_view program);

/// Splits a comma-separated setting (or lines, with '\n'), trimming spaces
/// and dropping empty items.
[[nodiscard]] std::vector<std::string> list(std::string_view value, char separator = ',');

/// The effective config, one "key = value" per line (credentials masked).
[[nodiscard]] std::string describe(const config& cfg);

/// Whether a Kafka property's value is a credential: its key contains
/// "password", "secret", "key" or "token" (any case), e.g. sasl.password,
/// ssl.key.password, sasl.oauthbearer.client.secret. Such values are printed
/// as *** everywhere (describe, logs, /v1/info, error messages).
[[nodiscard]] bool is_secret_kafka_key(std::string_view key) noexcept;
/// The value as it may be printed: "***" for a credential.
[[nodiscard]] std::string shown_kafka_value(std::string_view key, std::string_view value);
/// "KEY=VALUE, KEY=***" in order.
[[nodiscard]] std::string describe_kafka_properties(const kafka_properties& props);
/// Adds KEY=VALUE items from `text` to `into`; a key given again replaces its
/// earlier value (so a flag overrides the environment and the file). With
/// `list`, items are separated by newlines, or, when `text` has none, by
/// commas that are followed by another KEY= (so "debug=broker,topic" stays
/// one item). Returns "" or the problem, which never quotes a value.
[[nodiscard]] std::string add_kafka_properties(kafka_properties& into, std::string_view text, bool list);

}  // namespace herald::config
