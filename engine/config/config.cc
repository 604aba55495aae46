#include "config/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "base/audience_name.h"
#include "base/webhook_secret_syntax.h"

namespace herald::config {
namespace {

using setter = std::function<std::string(config&, std::string_view)>;  // "" = ok, else the problem
using getter = std::function<std::string(const config&)>;

struct property {
    property_info info;
    setter set;
    getter get;
    bool on_off = false;  // a switch: a bare --flag means "on"
    setter set_from_env;  // when the environment's form differs (a list): else set
};

std::string to_flag(std::string_view name) {
    std::string out = "--";
    for (const char c : name) out.push_back(c == '_' ? '-' : c);
    return out;
}

std::string to_env(std::string_view name) {
    std::string out = "HERALD_";
    for (const char c : name) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    return out;
}

template <class T>
property integer(const std::string& name, T config::*field, std::uint64_t lo, std::uint64_t hi,
                 std::string description) {
    property p;
    const std::string bounds = std::to_string(lo) + ".." + std::to_string(hi);
    p.info = {name, to_flag(name), to_env(name), std::move(description), "", bounds};
    p.set = [field, lo, hi, bounds](config& c, std::string_view v) -> std::string {
        std::uint64_t parsed = 0;
        const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
        if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() || parsed < lo || parsed > hi) {
            return "must be an integer in " + bounds + ", got \"" + std::string(v) + "\"";
        }
        c.*field = static_cast<T>(parsed);
        return {};
    };
    p.get = [field](const config& c) { return std::to_string(c.*field); };
    p.info.default_value = p.get(config{});
    return p;
}

/// A duration given in the unit its name ends with (ping_interval_ms: milliseconds).
template <class Rep, class Period>
property duration(const std::string& name, std::chrono::duration<Rep, Period> config::*field,
                  std::uint64_t lo, std::uint64_t hi, std::string description) {
    property p;
    const std::string bounds = std::to_string(lo) + ".." + std::to_string(hi);
    p.info = {name, to_flag(name), to_env(name), std::move(description), "", bounds};
    p.set = [field, lo, hi, bounds](config& c, std::string_view v) -> std::string {
        std::uint64_t parsed = 0;
        const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
        if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() || parsed < lo || parsed > hi) {
            return "must be an integer in " + bounds + ", got \"" + std::string(v) + "\"";
        }
        c.*field = std::chrono::duration<Rep, Period>(static_cast<Rep>(parsed));
        return {};
    };
    p.get = [field](const config& c) { return std::to_string((c.*field).count()); };
    p.info.default_value = p.get(config{});
    return p;
}

/// One of a fixed set of words, stored as an enum (or bool).
template <class T>
property choice(const std::string& name, T config::*field, std::vector<std::pair<std::string, T>> words,
                std::string description) {
    property p;
    std::string bounds;
    for (const auto& [word, _] : words) bounds += (bounds.empty() ? "" : "|") + word;
    p.info = {name, to_flag(name), to_env(name), std::move(description), "", bounds};
    p.set = [field, words, bounds](config& c, std::string_view v) -> std::string {
        for (const auto& [word, value] : words) {
            if (v == word) {
                c.*field = value;
                return {};
            }
        }
        return "must be one of " + bounds + ", got \"" + std::string(v) + "\"";
    };
    p.get = [field, words](const config& c) {
        for (const auto& [word, value] : words) {
            if (c.*field == value)
                return word;
        }
        return std::string("?");
    };
    p.info.default_value = p.get(config{});
    p.on_off = words.size() == 2 && words[0].first == "on" && words[1].first == "off";
    return p;
}

property text(const std::string& name, std::string config::*field, std::string description,
              const std::function<std::string(std::string_view)>& check = {}, std::string bounds = "") {
    property p;
    p.info = {name, to_flag(name), to_env(name), std::move(description), "", std::move(bounds)};
    p.set = [field, check](config& c, std::string_view v) -> std::string {
        if (check) {
            if (auto problem = check(v); !problem.empty())
                return problem;
        }
        c.*field = std::string(v);
        return {};
    };
    p.get = [field](const config& c) { return c.*field; };
    p.info.default_value = p.get(config{});
    return p;
}

/// A credential given as its value (masked when shown).
property secret_text(const std::string& name, std::string config::*field, std::string description,
                     const std::function<std::string(std::string_view)>& check, bool argv_refused) {
    property p = text(name, field, std::move(description), check);
    p.info.secret = true;
    p.info.argv_refused = argv_refused;
    return p;
}

std::string check_topic(std::string_view v) {
    if (v.empty() || v.size() > 249)
        return "must be 1..249 characters";
    for (const char c : v) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
            return "must use only [a-zA-Z0-9._-], got \"" + std::string(v) + "\"";
        }
    }
    return {};
}

std::string check_name(std::string_view v) {
    if (v.size() > 200)
        return "must be at most 200 characters";
    for (const char c : v) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
            return "must use only [a-zA-Z0-9._-], got \"" + std::string(v) + "\"";
        }
    }
    return {};
}

std::string check_brokers(std::string_view v) {
    if (v.empty())
        return {};
    std::size_t pos = 0;
    while (pos <= v.size()) {
        const std::size_t end = std::min(v.find(',', pos), v.size());
        const std::string_view item = v.substr(pos, end - pos);
        const std::size_t colon = item.rfind(':');
        if (item.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
            return "must be host:port[,host:port...], got \"" + std::string(v) + "\"";
        }
        for (const char c : item.substr(colon + 1)) {
            if (!std::isdigit(static_cast<unsigned char>(c))) {
                return "port of \"" + std::string(item) + "\" is not a number";
            }
        }
        pos = end + 1;
    }
    return {};
}

// Never quotes the value: it is a credential.
std::string check_secrets(std::string_view v) {
    return base::is_webhook_secret_list(v) ? std::string() : std::string(base::webhook_secret_problem);
}

/// A bearer token goes into an HTTP header: one word, nothing that could end
/// the header line. Never quotes the value.
bool is_token(std::string_view v) {
    return std::none_of(v.begin(), v.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f;
    });
}

std::string check_token(std::string_view v) {
    return is_token(v) ? std::string() : "must be one token without spaces or control characters";
}

std::string check_http_url(std::string_view v) {
    if (v.rfind("https://", 0) != 0 && v.rfind("http://", 0) != 0)
        return "must be an http:// or https:// URL, got \"" + std::string(v) + "\"";
    return {};
}

std::string check_patterns(std::string_view v) {
    for (const auto& item : list(v)) {
        if (item.back() == '*') {
            // A prefix: what an audience name may start with (so "lineup." is fine).
            const std::string prefix = item.substr(0, item.size() - 1);
            if (prefix.empty() || base::is_valid_audience(prefix + "x"))
                continue;
        } else if (base::is_valid_audience(item)) {
            continue;
        }
        return "\"" + item + "\" is not an audience name or prefix* pattern";
    }
    return {};
}

std::string check_resend_channels(std::string_view v) {
    for (const auto& item : list(v)) {
        if (item == "webhook")
            return "webhooks are always re-sent after a crash (they carry idempotency keys); list sms "
                   "and/or whatsapp";
        if (item != "sms" && item != "whatsapp")
            return "\"" + item + "\" is not sms or whatsapp";
    }
    return {};
}

std::string check_networks(std::string_view v) {
    for (const auto& item : list(v)) {
        const auto slash = item.find('/');
        const std::string address = item.substr(0, slash);
        bool ok =
            address.find_first_not_of("0123456789abcdefABCDEF.:[]") == std::string::npos && !address.empty();
        if (ok && slash != std::string::npos) {
            const std::string bits = item.substr(slash + 1);
            ok = !bits.empty() && bits.size() <= 3 &&
                 bits.find_first_not_of("0123456789") == std::string::npos;
        }
        if (!ok)
            return "\"" + item + "\" is not a CIDR network like 10.0.0.0/8 or fd00::/8";
    }
    return {};
}

std::string check_nonempty(std::string_view v) {
    return v.empty() ? "must not be empty" : std::string();
}

/// --kafka-property KEY=VALUE (repeatable), kafka.KEY = VALUE in the config
/// file, HERALD_KAFKA_PROPERTIES as a list: librdkafka decides later whether
/// it knows KEY (kafka::validate, before anything starts); only the form is
/// checked here.
property kafka_property() {
    property p;
    p.info = {"kafka_property",
              "--kafka-property",
              "HERALD_KAFKA_PROPERTIES",
              "a librdkafka property KEY=VALUE for every Kafka client heraldd creates (security.protocol, "
              "sasl.*, ssl.*, ...); repeatable; config file: kafka.KEY = VALUE lines; environment: "
              "KEY=VALUE items separated by newlines (or commas); values of keys containing password, "
              "secret, key or token are printed as ***",
              "",
              "KEY=VALUE"};
    p.set = [](config& c, std::string_view v) { return add_kafka_properties(c.kafka, v, false); };
    p.set_from_env = [](config& c, std::string_view v) { return add_kafka_properties(c.kafka, v, true); };
    p.get = [](const config& c) { return describe_kafka_properties(c.kafka); };
    return p;
}

const std::vector<property>& table() {
    static const std::vector<property> props = [] {
        std::vector<property> p;
        p.push_back(text("client_host", &config::client_host,
                         "address the client listener binds (WebSocket /v1/ws, SSE /v1/sse)",
                         check_nonempty));
        p.push_back(
            integer("client_port", &config::client_port, 0, 65535, "client port; 0 picks a free port"));
        p.push_back(text("ops_host", &config::ops_host,
                         "address the ops listener binds (/metrics, /healthz, /readyz, /v1/...)",
                         check_nonempty));
        p.push_back(integer("ops_port", &config::ops_port, 0, 65535, "ops port; 0 picks a free port"));
        p.push_back(integer("shards", &config::shards, 0, 256, "shard threads; 0 = one per core"));
        p.push_back(text("brokers", &config::brokers,
                         "Kafka bootstrap servers host:port[,...]; empty = embedded mock cluster",
                         check_brokers));
        p.push_back(
            integer("mock_brokers", &config::mock_brokers, 1, 5, "brokers of the embedded mock cluster"));
        p.push_back(integer("topic_partitions", &config::topic_partitions, 1, 64,
                            "partitions of the topics created in the embedded cluster, and of "
                            "topic_subscriptions when heraldd "
                            "creates it on a real one"));
        p.push_back(text("topic_announcements", &config::topic_announcements,
                         "topic of announcements (key = audience)", check_topic));
        p.push_back(text("topic_subscriptions", &config::topic_subscriptions,
                         "compacted topic of outbound subscriptions", check_topic));
        p.push_back(
            text("topic_receipts", &config::topic_receipts, "topic of delivery receipts", check_topic));
        p.push_back(
            text("topic_dlq", &config::topic_dlq, "dead-letter topic for refused records", check_topic));
        p.push_back(kafka_property());
        p.push_back(
            duration("subscriptions_max_compaction_lag_ms", &config::subscriptions_max_compaction_lag, 1000,
                     31536000000,
                     "max.compaction.lag.ms heraldd creates topic_subscriptions with on a real cluster, "
                     "and the longest it accepts there without a warning: how long a forgotten "
                     "person's earlier records may stay in Kafka after the tombstone"));
        p.push_back(text("group_id", &config::group_id,
                         "live consumer group; empty = herald-live-<instance_id>", check_name));
        p.push_back(text("outbound_group_id", &config::outbound_group_id,
                         "outbound consumer group, shared by every instance of a cluster so that each "
                         "subscriber gets one message however many instances run",
                         check_name));
        p.push_back(text("instance_id", &config::instance_id,
                         "this instance's name; empty = <hostname>-<pid>", check_name));
        p.push_back(choice("offset_reset", &config::offset_reset,
                           {{"latest", kafka_start::latest}, {"earliest", kafka_start::earliest}},
                           "where a new live group starts reading"));
        p.push_back(integer("max_payload_bytes", &config::max_payload_bytes, 1, 16777216,
                            "largest announcement payload"));
        p.push_back(duration("max_clock_skew_s", &config::max_clock_skew, 0, 86400,
                             "created_at further in the future is refused"));
        p.push_back(duration("max_deliver_ahead_s", &config::max_deliver_ahead, 1, 31536000,
                             "deliver_at further ahead is refused"));
        p.push_back(integer("shard_queue_capacity", &config::shard_queue_capacity, 16, 16777216,
                            "broadcasts queued per shard before ingest waits"));
        p.push_back(integer("send_queue_frames", &config::send_queue_frames, 1, 65536,
                            "frames queued per connection before the slow-consumer policy applies"));
        p.push_back(integer("send_queue_bytes", &config::send_queue_bytes, 1024, 1073741824,
                            "bytes queued per connection before the slow-consumer policy applies"));
        p.push_back(choice("slow_consumer_policy", &config::slow_consumer_policy,
                           {{"close", slow_consumer::close}, {"drop", slow_consumer::drop}},
                           "close: close with 1008; drop: drop the frame for that connection"));
        p.push_back(duration("ping_interval_ms", &config::ping_interval, 100, 3600000,
                             "WebSocket ping / SSE keep-alive interval"));
        p.push_back(duration("handshake_timeout_ms", &config::handshake_timeout, 100, 600000,
                             "time allowed for the HTTP request of a live connection"));
        p.push_back(integer("max_audiences_per_connection", &config::max_audiences_per_connection, 1, 1024,
                            "audience parameters one connection may name"));
        p.push_back(integer("max_client_frame_bytes", &config::max_client_frame_bytes, 125, 1048576,
                            "largest client-to-server WebSocket message"));
        p.push_back(integer("max_connections", &config::max_connections, 0, 10000000,
                            "live connections; 0 = derived from the open-file limit"));
        p.push_back(duration("commit_interval_ms", &config::commit_interval, 10, 60000,
                             "Kafka offset commit cadence"));
        p.push_back(duration("fetch_wait_max_ms", &config::fetch_wait_max, 0, 10000,
                             "longest Kafka fetch long-poll; 0 = 2 for the embedded mock cluster (it "
                             "answers only at the deadline), 100 for real brokers"));
        p.push_back(
            integer("memory_limit_mb", &config::memory_limit_mb, 0, 1048576,
                    "resident memory above which ingest pauses Kafka until it drops below 90 %; 0 = off"));
        p.push_back(integer("kafka_prefetch_kib", &config::kafka_prefetch_kib, 64, 1048576,
                            "what librdkafka may prefetch per partition ahead of the shards"));
        p.push_back(duration("shutdown_deadline_ms", &config::shutdown_deadline, 0, 600000,
                             "graceful drain limit on SIGTERM"));
        p.push_back(integer("history_max_per_audience", &config::history_max_per_audience, 0, 1000000,
                            "announcements kept per audience for reconnects with since= (0 = no recovery)"));
        p.push_back(duration("history_max_age_s", &config::history_max_age, 1, 604800,
                             "oldest announcement kept for recovery"));
        p.push_back(integer("history_refill_max_records", &config::history_refill_max_records, 0, 10000000,
                            "announcements per partition read back from Kafka at start-up into the "
                            "recovery history (no older than history_max_age_s); 0 = start empty"));
        p.push_back(duration("schedule_horizon_s", &config::schedule_horizon, 0, 86400,
                             "a live broadcast whose deliver_at lies further ahead is written to "
                             "<data_dir>/schedules.sqlite3 (its Kafka offset committed at once) and "
                             "released from there shortly before its instant"));
        p.push_back(text("data_dir", &config::data_dir,
                         "directory of the durable outbound registry (registry.sqlite3)", check_nonempty));
        p.push_back(integer("outbound_shards", &config::outbound_shards, 1, 64,
                            "outbound delivery threads; gateway limits are split evenly across them"));
        p.push_back(integer("webhook_rate", &config::webhook_rate, 1, 1000000,
                            "webhook messages per second per endpoint (scheme://host:port)"));
        p.push_back(
            integer("webhook_burst", &config::webhook_burst, 1, 1000000, "webhook burst per endpoint"));
        p.push_back(secret_text(
            "webhook_secrets", &config::webhook_secrets,
            "Standard Webhooks signing secrets whsec_...[,whsec_...] (several during rotation) for "
            "subscribers without a webhook_secret of their own; prefer webhook_secrets_file or this "
            "variable (a flag is visible to every local user)",
            check_secrets, false));
        p.push_back(text("webhook_secrets_file", &config::webhook_secrets_file,
                         "file with the webhook signing secrets, one whsec_... per line (# comments); read "
                         "at start"));
        p.push_back(choice("allow_insecure_webhooks", &config::allow_insecure_webhooks,
                           {{"on", true}, {"off", false}},
                           "accept and deliver plain http:// webhooks (bodies and signatures readable on "
                           "the way); off: the API answers 422, herald.subscriptions records are "
                           "dead-lettered, stored ones fail with insecure_webhook"));
        p.push_back(text("whatsapp_base_url", &config::whatsapp_base_url, "WhatsApp Cloud API base URL",
                         check_http_url));
        p.push_back(
            text("whatsapp_api_version", &config::whatsapp_api_version, "Graph API version", check_nonempty));
        p.push_back(text("whatsapp_phone_number_id", &config::whatsapp_phone_number_id,
                         "sender phone number id of the WhatsApp Business account"));
        p.push_back(secret_text("whatsapp_token", &config::whatsapp_token,
                                "WhatsApp Cloud API bearer token; prefer whatsapp_token_file or this "
                                "variable (a flag is visible to every local user)",
                                check_token, false));
        p.push_back(text("whatsapp_token_file", &config::whatsapp_token_file,
                         "file with the WhatsApp Cloud API bearer token; read at start"));
        p.push_back(text("whatsapp_template", &config::whatsapp_template,
                         "default template; label whatsapp.template overrides it", check_nonempty));
        p.push_back(text("whatsapp_language", &config::whatsapp_language,
                         "default template language; label whatsapp.language overrides it", check_nonempty));
        p.push_back(integer("whatsapp_rate", &config::whatsapp_rate, 1, 1000000,
                            "WhatsApp messages per second per sender number"));
        p.push_back(
            integer("whatsapp_burst", &config::whatsapp_burst, 1, 1000000, "WhatsApp burst per sender"));
        p.push_back(text("sms_gateway_url", &config::sms_gateway_url,
                         "SMS gateway: POST of the signed webhook body plus \"to\" (E.164); empty = none, "
                         "SMS subscribers then fail with no_gateway:sms",
                         [](std::string_view v) { return v.empty() ? std::string() : check_http_url(v); }));
        p.push_back(secret_text("sms_gateway_token", &config::sms_gateway_token,
                                "SMS gateway credential, sent as Authorization: Bearer <token>; from this "
                                "variable or the config file, never a flag (use sms_gateway_token_file)",
                                check_token, true));
        p.push_back(text("sms_gateway_token_file", &config::sms_gateway_token_file,
                         "file with the SMS gateway's bearer token; read at start"));
        p.push_back(
            integer("sms_rate", &config::sms_rate, 1, 1000000, "SMS messages per second to the gateway"));
        p.push_back(integer("sms_burst", &config::sms_burst, 1, 1000000, "SMS burst"));
        p.push_back(integer("outbound_connections", &config::outbound_connections, 1, 1024,
                            "keep-alive connections per gateway endpoint per outbound shard"));
        p.push_back(integer("outbound_max_pending", &config::outbound_max_pending, 1, 100000000,
                            "outbound deliveries held in memory; later broadcasts wait unlisted"));
        p.push_back(integer("outbound_max_waiting", &config::outbound_max_waiting, 1, 10000000,
                            "outbound broadcasts waiting before the outbound consumer pauses Kafka"));
        p.push_back(duration("recipient_min_interval_ms", &config::recipient_min_interval, 0, 86400000,
                             "least time between two messages to one recipient (pair limit)"));
        p.push_back(integer("tenant_rate", &config::tenant_rate, 0, 1000000,
                            "outbound messages per second per tenant over all its endpoints; 0 = no limit"));
        p.push_back(
            integer("tenant_burst", &config::tenant_burst, 0, 1000000, "tenant burst; 0 = tenant_rate"));
        p.push_back(integer("retry_max_attempts", &config::retry_max_attempts, 1, 1000,
                            "attempts per outbound delivery before it fails"));
        p.push_back(duration("retry_base_ms", &config::retry_base, 1, 3600000,
                             "first backoff ceiling; doubles per attempt, full jitter"));
        p.push_back(duration("retry_max_age_s", &config::retry_max_age, 1, 604800,
                             "outbound delivery gives up this long after the release instant"));
        p.push_back(duration("sender_pause_s", &config::sender_pause, 1, 86400,
                             "pause of a sender after a spam-class refusal (WhatsApp 131048)"));
        p.push_back(duration("outbound_connect_timeout_ms", &config::outbound_connect_timeout, 1, 600000,
                             "gateway connect (and TLS handshake) timeout"));
        p.push_back(duration("outbound_response_timeout_ms", &config::outbound_response_timeout, 1, 600000,
                             "gateway answer timeout"));
        p.push_back(
            duration("checkpoint_interval_ms", &config::checkpoint_interval, 10, 600000,
                     "how often finished outbound recipients are written down; bounds what a crash resends"));
        p.push_back(text("resend_unknown_channels", &config::resend_unknown_channels,
                         "channels whose deliveries a crash interrupted are sent again anyway (sms, "
                         "whatsapp; comma-separated); empty = at most once on both: marked started before "
                         "each request, receipt `unknown` after a crash",
                         check_resend_channels));
        p.push_back(choice("outbound_tls_verify", &config::outbound_tls_verify,
                           {{"on", true}, {"off", false}}, "verify gateway TLS certificates and host names"));
        p.push_back(text("outbound_ca_file", &config::outbound_ca_file,
                         "PEM bundle of CAs trusted for gateway certificates besides the system's (a "
                         "private gateway's CA); empty = the system's only"));
        p.push_back(
            text("admin_keys_file", &config::admin_keys_file,
                 "ops API keys, one `NAME ROLE TENANT sha256:<hex>` per line (ROLE admin|publisher|viewer, "
                 "TENANT a tenant or *); empty = a random admin key generated into <data_dir>/admin.key"));
        p.push_back(choice("metrics_require_key", &config::metrics_require_key,
                           {{"off", false}, {"on", true}},
                           "whether /metrics, /healthz and /readyz need an API key too"));
        p.push_back(text("jwt_hs256_secret_file", &config::jwt_hs256_secret_file,
                         "file with the HS256 secret (>= 32 bytes) live clients' tokens are signed with"));
        p.push_back(
            text("jwt_public_key_file", &config::jwt_public_key_file,
                 "PEM public key (RSA for RS256, EC P-256 for ES256) live clients' tokens are checked with"));
        p.push_back(text("jwks_file", &config::jwks_file, "JWKS document; the token's kid picks the key"));
        p.push_back(text("jwt_issuer", &config::jwt_issuer, "required iss claim of live clients' tokens"));
        p.push_back(
            text("jwt_audience", &config::jwt_audience, "required aud claim of live clients' tokens"));
        p.push_back(text("public_audiences", &config::public_audiences,
                         "audiences anyone may join without a token while token checking is on: names or "
                         "prefix* patterns, comma-separated",
                         check_patterns));
        p.push_back(text("allowed_origins", &config::allowed_origins,
                         "browser Origins allowed on the client port, comma-separated (* = any); empty = "
                         "same-host pages only"));
        p.push_back(text("outbound_allowed_networks", &config::outbound_allowed_networks,
                         "networks outbound delivery may reach although private, loopback or link-local "
                         "(CIDR, comma-separated)",
                         check_networks));
        p.push_back(integer("max_connections_per_ip", &config::max_connections_per_ip, 1, 10000000,
                            "open live connections per client address; more get 429"));
        p.push_back(integer("max_connects_per_ip_per_s", &config::max_connects_per_ip_per_s, 1, 10000000,
                            "new live connections per second per client address; more get 429"));
        p.push_back(text("connection_limit_exempt", &config::connection_limit_exempt,
                         "client networks the per-address limits do not apply to (CIDR, comma-separated; "
                         "default loopback: a local proxy speaks for many clients)",
                         check_networks));
        p.push_back(text("tls_cert_file", &config::tls_cert_file,
                         "PEM certificate chain (leaf first): TLS on the client port (wss://, https:// SSE) "
                         "and the ops port; reloaded on SIGHUP"));
        p.push_back(text("tls_key_file", &config::tls_key_file, "PEM private key of tls_cert_file"));
        p.push_back(text("ops_tls_cert_file", &config::ops_tls_cert_file,
                         "PEM certificate chain for the ops port only; empty = tls_cert_file"));
        p.push_back(
            text("ops_tls_key_file", &config::ops_tls_key_file, "PEM private key of ops_tls_cert_file"));
        p.push_back(text("tls_client_ca_file", &config::tls_client_ca_file,
                         "PEM CA bundle: the ops port then requires a client certificate signed by it "
                         "(mutual TLS)"));
        p.push_back(choice("tls_kernel_offload", &config::tls_kernel_offload,
                           {{"auto", true}, {"off", false}},
                           "hand TLS record encryption to the kernel (kTLS) where the kernel and OpenSSL "
                           "support it, so fan-out keeps the plaintext send path"));
        p.push_back(integer("ops_max_body_bytes", &config::ops_max_body_bytes, 1024, 1073741824,
                            "largest request body the ops API accepts"));
        p.push_back(integer("ops_max_connections", &config::ops_max_connections, 1, 100000,
                            "open connections to the ops port; more are refused"));
        p.push_back(choice("log_level", &config::log_level,
                           {{"debug", base::log_level::debug},
                            {"info", base::log_level::info},
                            {"warn", base::log_level::warn},
                            {"error", base::log_level::error}},
                           "least severe log lines written"));
        return p;
    }();
    return props;
}

const property* by_name(std::string_view name) {
    for (const auto& p : table()) {
        if (p.info.name == name)
            return &p;
    }
    return nullptr;
}

const property* by_flag(std::string_view flag) {
    for (const auto& p : table()) {
        if (p.info.flag == flag)
            return &p;
    }
    return nullptr;
}

base::failure error(std::string detail) {
    return base::failure(std::make_error_code(std::errc::invalid_argument), std::move(detail));
}

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return std::string(s);
}

base::result<void> apply(config& c, const property& p, std::string_view value, const std::string& origin,
                         bool from_env = false) {
    const setter& set = from_env && p.set_from_env ? p.set_from_env : p.set;
    if (auto problem = set(c, value); !problem.empty()) {
        return error(p.info.name + ": " + problem + " (from " + origin + ")");
    }
    return {};
}

base::result<void> load_file(config& c, const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        return error("config: cannot read config file \"" + path + "\"");
    }
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        const std::string where = path + ":" + std::to_string(number);
        std::string content = trim(line);
        if (content.empty() || content[0] == '#')
            continue;
        const auto eq = content.find('=');
        if (eq == std::string::npos) {
            return error(where + ": expected key = value, got \"" + content + "\"");
        }
        const std::string key = trim(std::string_view(content).substr(0, eq));
        std::string value = trim(std::string_view(content).substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        } else if (const auto hash = value.find(" #"); hash != std::string::npos) {
            value = trim(std::string_view(value).substr(0, hash));
        }
        if (key.rfind("kafka.", 0) == 0) {
            // kafka.sasl.username = alice: a librdkafka property.
            if (auto ok = apply(c, *by_name("kafka_property"), key.substr(6) + "=" + value, where); !ok)
                return ok;
            continue;
        }
        const property* p = by_name(key);
        if (p == nullptr) {
            return error(where + ": unknown key \"" + key + "\"");
        }
        if (auto ok = apply(c, *p, value, where); !ok)
            return ok;
    }
    c.config_file = path;
    return {};
}

/// The whole file, or an error naming the setting and the file (never its contents).
base::result<std::string> read_whole(const std::string& setting, const std::string& path) {
    // POSIX calls, not a stream: a directory "opens" as a stream and reads as empty.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error(setting + ": cannot read \"" + path + "\": " + std::strerror(errno));
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            return error(setting + ": cannot read \"" + path + "\": " + std::strerror(err));
        }
        if (n == 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > (1u << 20)) {
            ::close(fd);
            return error(setting + ": \"" + path + "\" is larger than 1 MiB: not a secret file");
        }
    }
    ::close(fd);
    return text;
}

/// One credential with a file form: the file's contents become the value.
struct secret_source {
    std::string config::*value;
    std::string config::*file;
    const char* value_name;
    const char* file_name;
    bool secret_list;  // whsec_ lines (webhook_secrets) rather than one token
};

base::result<void> read_secret_file(config& c, const secret_source& s) {
    const std::string& path = c.*(s.file);
    if (path.empty())
        return {};
    const std::string file_name = s.file_name;
    if (!(c.*(s.value)).empty())
        return error(file_name + ": " + s.value_name + " is set too; give the secret one way only");
    auto text = read_whole(file_name, path);
    if (!text)
        return base::failure(text.err());
    const std::string where = "\"" + path + "\"";
    if (!s.secret_list) {
        std::string token = std::move(*text);
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
        if (token.empty())
            return error(file_name + ": " + where + " is empty");
        if (!is_token(token))
            return error(file_name + ": " + where +
                         " must hold the token alone on one line, without spaces or control characters");
        c.*(s.value) = std::move(token);
        return {};
    }
    std::string joined;
    std::size_t number = 0;
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
        ++number;
        const std::string item = trim(line);
        if (item.empty() || item[0] == '#')
            continue;
        if (!base::is_webhook_secret(item))
            return error(file_name + ": line " + std::to_string(number) + " of " + where + ": " +
                         std::string(base::webhook_secret_problem));
        joined += (joined.empty() ? "" : ",") + item;
    }
    if (joined.empty())
        return error(file_name + ": " + where + " holds no secret");
    c.*(s.value) = std::move(joined);
    return {};
}

base::result<void> read_secret_files(config& c) {
    static const secret_source sources[] = {
        {&config::webhook_secrets, &config::webhook_secrets_file, "webhook_secrets", "webhook_secrets_file",
         true},
        {&config::whatsapp_token, &config::whatsapp_token_file, "whatsapp_token", "whatsapp_token_file",
         false},
        {&config::sms_gateway_token, &config::sms_gateway_token_file, "sms_gateway_token",
         "sms_gateway_token_file", false},
    };
    for (const auto& s : sources) {
        if (auto ok = read_secret_file(c, s); !ok)
            return ok;
    }
    return {};
}

}  // namespace

std::vector<std::string> list(std::string_view value, char separator) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= value.size()) {
        const std::size_t end = std::min(value.find(separator, pos), value.size());
        std::string item = trim(value.substr(pos, end - pos));
        if (!item.empty())
            out.push_back(std::move(item));
        pos = end + 1;
    }
    return out;
}

const std::vector<property_info>& properties() {
    static const std::vector<property_info> infos = [] {
        std::vector<property_info> out;
        for (const auto& p : table()) out.push_back(p.info);
        return out;
    }();
    return infos;
}

base::result<loaded> load(int argc, const char* const* argv, const std::vector<std::string>& env) {
    loaded out;
    config& c = out.cfg;

    // Flags first into a list (they win, but the file they may name comes first).
    std::vector<std::pair<const property*, std::string>> flags;
    std::string config_path;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h")
            return base::failure(std::make_error_code(std::errc::operation_canceled), "help");
        if (arg == "--version")
            return base::failure(std::make_error_code(std::errc::operation_canceled), "version");
        if (arg.rfind("--", 0) != 0)
            return error("unexpected argument \"" + std::string(arg) + "\" (flags look like --name value)");
        std::string name(arg);
        std::string value;
        bool has_value = false;
        if (const auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_value = true;
        }
        if (name == "--config") {
            if (!has_value) {
                if (i + 1 >= argc)
                    return error("--config needs a file path");
                value = argv[++i];
            }
            config_path = value;
            continue;
        }
        const property* p = by_flag(name);
        if (p == nullptr)
            return error("unknown flag " + name + " (see --help)");
        if (p->info.argv_refused) {
            // Never echo what followed: it is the credential.
            return error(p->info.name +
                         ": not accepted on the command line, where every local user can "
                         "read it; use " +
                         p->info.flag + "-file FILE or " + p->info.env);
        }
        if (!has_value) {
            if (p->on_off && (i + 1 >= argc || std::string_view(argv[i + 1]).rfind("--", 0) == 0)) {
                value = "on";  // a bare switch
            } else {
                if (i + 1 >= argc)
                    return error(p->info.name + ": " + name + " needs a value");
                value = argv[++i];
            }
        }
        if (p->info.secret) {
            out.warnings.push_back(p->info.name +
                                   ": given on the command line, where every local user can "
                                   "read it (ps, /proc/PID/cmdline); use " +
                                   p->info.flag + "-file FILE or " + p->info.env + " instead");
        }
        flags.emplace_back(p, value);
    }

    std::vector<std::pair<const property*, std::string>> from_env;
    for (const auto& entry : env) {
        const auto eq = entry.find('=');
        if (eq == std::string::npos || entry.rfind("HERALD_", 0) != 0)
            continue;
        const std::string name = entry.substr(0, eq);
        const std::string value = entry.substr(eq + 1);
        if (name == "HERALD_CONFIG") {
            if (config_path.empty())
                config_path = value;
            continue;
        }
        const property* found = nullptr;
        for (const auto& p : table()) {
            if (p.info.env == name)
                found = &p;
        }
        if (found == nullptr) {
            // Other tools (the herald CLI) read HERALD_* variables of their own.
            if (name != "HERALD_OPS_URL" && name != "HERALD_CLIENT_URL" && name != "HERALD_BROKERS" &&
                name != "HERALD_API_KEY" && name != "HERALD_TOKEN" && name != "HERALD_CA_FILE") {
                out.warnings.push_back("ignoring unknown environment variable " + name);
            }
            continue;
        }
        from_env.emplace_back(found, value);
    }

    if (!config_path.empty()) {
        if (auto ok = load_file(c, config_path); !ok)
            return base::failure(ok.err());
    }
    for (const auto& [p, value] : from_env) {
        if (auto ok = apply(c, *p, value, p->info.env, true); !ok)
            return base::failure(ok.err());
    }
    for (const auto& [p, value] : flags) {
        if (auto ok = apply(c, *p, value, p->info.flag); !ok)
            return base::failure(ok.err());
    }

    if (auto ok = read_secret_files(c); !ok)
        return base::failure(ok.err());

    // Cross-field rules and derived values.
    if (c.client_port != 0 && c.client_port == c.ops_port && c.client_host == c.ops_host) {
        return error("ops_port: must differ from client_port (both " + std::to_string(c.client_port) + ")");
    }
    if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
        return error(std::string(c.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file") +
                     ": tls_cert_file and tls_key_file go together");
    }
    if (c.ops_tls_cert_file.empty() != c.ops_tls_key_file.empty()) {
        return error(std::string(c.ops_tls_cert_file.empty() ? "ops_tls_cert_file" : "ops_tls_key_file") +
                     ": ops_tls_cert_file and ops_tls_key_file go together");
    }
    if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty() && c.ops_tls_cert_file.empty()) {
        return error(
            "tls_client_ca_file: mutual TLS needs TLS on the ops port (tls_cert_file or "
            "ops_tls_cert_file)");
    }
    if (c.shards == 0) {
        c.shards = std::max(1u, std::thread::hardware_concurrency());
    }
    if (c.instance_id.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        std::string h;
        for (const char ch : std::string(host)) {
            h.push_back(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' ? ch : '-');
        }
        c.instance_id = (h.empty() ? std::string("herald") : h) + "-" + std::to_string(::getpid());
    }
    if (c.group_id.empty()) {
        c.group_id = "herald-live-" + c.instance_id;
    }
    return out;
}

std::string usage(std::string_view program) {
    std::ostringstream out;
    out << "usage: " << program << " [--config FILE] [--name value ...]\n\n"
        << "Settings (flag, environment variable, config-file key = flag without dashes):\n";
    for (const auto& p : properties()) {
        out << "  " << p.flag << (p.argv_refused ? " (refused: environment or config file only)" : "")
            << "  (" << p.env << ")\n      " << p.description << "\n      default: "
            << (p.default_value.empty() ? "\"\""
                : p.secret              ? "(set)"
                                        : p.default_value);
        if (!p.bounds.empty())
            out << "   allowed: " << p.bounds;
        out << "\n";
    }
    out << "\nPrecedence: defaults < --config file (key = value lines) < HERALD_* environment < flags.\n"
        << "A switch (allowed: on|off) given as a bare flag means on.\n";
    return out.str();
}

bool is_secret_kafka_key(std::string_view key) noexcept {
    std::string lower(key);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (const char* word : {"password", "secret", "key", "token"}) {
        if (lower.find(word) != std::string::npos)
            return true;
    }
    return false;
}

std::string shown_kafka_value(std::string_view key, std::string_view value) {
    return is_secret_kafka_key(key) ? std::string("***") : std::string(value);
}

std::string describe_kafka_properties(const kafka_properties& props) {
    std::string out;
    for (const auto& [k, v] : props) out += (out.empty() ? "" : ", ") + k + "=" + shown_kafka_value(k, v);
    return out;
}

namespace {

bool kafka_key_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

/// Whether `rest` starts with KEY= (spaces allowed around KEY): where a
/// list's next item begins.
bool starts_with_key(std::string_view rest) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    std::size_t n = 0;
    while (n < rest.size() && kafka_key_char(rest[n])) ++n;
    const std::size_t key_end = n;
    while (n < rest.size() && rest[n] == ' ') ++n;
    return key_end > 0 && n < rest.size() && rest[n] == '=';
}

}  // namespace

std::string add_kafka_properties(kafka_properties& into, std::string_view text, bool list) {
    std::vector<std::string_view> items;
    if (!list) {
        items.push_back(text);
    } else {
        const char separator = text.find('\n') != std::string_view::npos ? '\n' : ',';
        std::size_t begin = 0;
        for (std::size_t i = 0; i <= text.size(); ++i) {
            if (i == text.size() ||
                (text[i] == separator && (separator == '\n' || starts_with_key(text.substr(i + 1))))) {
                items.push_back(text.substr(begin, i - begin));
                begin = i + 1;
            }
        }
    }
    std::size_t number = 0;
    for (const auto raw : items) {
        ++number;
        const std::string item = trim(raw);
        if (item.empty() && list)
            continue;
        const auto eq = item.find('=');
        const std::string key = trim(std::string_view(item).substr(0, eq));
        const bool key_ok = !key.empty() && std::all_of(key.begin(), key.end(), kafka_key_char);
        if (eq == std::string::npos || !key_ok) {
            // Never the item itself: it may be a password. What looks like
            // a key before a wrong separator ("sasl.password:...") is shown.
            std::string known;
            for (const char ch : item) {
                if (!kafka_key_char(ch))
                    break;
                known.push_back(ch);
            }
            const bool show = !known.empty() && known.size() < item.size();
            return (list ? "item " + std::to_string(number) + " " : std::string()) +
                   "must be KEY=VALUE with KEY of [a-zA-Z0-9._-]" +
                   (show ? " (it starts with \"" + known + "\")" : std::string());
        }
        std::string value = trim(std::string_view(item).substr(eq + 1));
        const auto same =
            std::find_if(into.begin(), into.end(), [&](const auto& kv) { return kv.first == key; });
        if (same != into.end())
            same->second = std::move(value);
        else
            into.emplace_back(key, std::move(value));
    }
    return {};
}

std::string describe(const config& c) {
    std::ostringstream out;
    for (const auto& p : table()) {
        // Credentials never reach a log. A *_file setting is a path: shown.
        const bool file = p.info.name.size() > 5 && p.info.name.rfind("_file") == p.info.name.size() - 5;
        const bool secret = p.info.secret || (!file && (p.info.name.find("secret") != std::string::npos ||
                                                        p.info.name.find("token") != std::string::npos));
        if (p.info.name == "kafka_property" && !c.kafka.empty()) {
            // As the config file writes them, credentials as ***.
            for (const auto& [k, v] : c.kafka)
                out << "kafka." << k << " = " << shown_kafka_value(k, v) << "\n";
            continue;
        }
        const std::string value = p.get(c);
        out << p.info.name << " = " << (secret && !value.empty() ? "(set)" : value) << "\n";
    }
    return out.str();
}

}  // namespace herald::config
