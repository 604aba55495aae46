#include "config/config.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "base/audience_name.h"

namespace herald::config {
namespace {

using setter = std::function<std::string(config&, std::string_view)>;  // "" = ok, else the problem
using getter = std::function<std::string(const config&)>;

struct property {
    property_info info;
    setter set;
    getter get;
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

std::string check_secrets(std::string_view v) {
    std::size_t pos = 0;
    while (!v.empty() && pos <= v.size()) {
        const std::size_t end = std::min(v.find(',', pos), v.size());
        const std::string_view item = v.substr(pos, end - pos);
        if (item.substr(0, 6) != "whsec_" || item.size() < 6 + 24 || (item.size() - 6) % 4 != 0)
            return "each secret must be whsec_ followed by base64 of at least 16 bytes";
        for (const char c : item.substr(6)) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=')
                return "each secret must be whsec_ followed by base64 of at least 16 bytes";
        }
        pos = end + 1;
    }
    return {};
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
                            "partitions of the topics created in the embedded cluster"));
        p.push_back(text("topic_announcements", &config::topic_announcements,
                         "topic of announcements (key = audience)", check_topic));
        p.push_back(text("topic_subscriptions", &config::topic_subscriptions,
                         "compacted topic of outbound subscriptions", check_topic));
        p.push_back(
            text("topic_receipts", &config::topic_receipts, "topic of delivery receipts", check_topic));
        p.push_back(
            text("topic_dlq", &config::topic_dlq, "dead-letter topic for refused records", check_topic));
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
        p.push_back(text("data_dir", &config::data_dir,
                         "directory of the durable outbound registry (registry.sqlite3)", check_nonempty));
        p.push_back(integer("outbound_shards", &config::outbound_shards, 1, 64,
                            "outbound delivery threads; gateway limits are split evenly across them"));
        p.push_back(integer("webhook_rate", &config::webhook_rate, 1, 1000000,
                            "webhook messages per second per endpoint (scheme://host:port)"));
        p.push_back(
            integer("webhook_burst", &config::webhook_burst, 1, 1000000, "webhook burst per endpoint"));
        p.push_back(text("webhook_secrets", &config::webhook_secrets,
                         "Standard Webhooks signing secrets whsec_...[,whsec_...] (several during rotation)",
                         check_secrets));
        p.push_back(text("whatsapp_base_url", &config::whatsapp_base_url, "WhatsApp Cloud API base URL",
                         check_http_url));
        p.push_back(
            text("whatsapp_api_version", &config::whatsapp_api_version, "Graph API version", check_nonempty));
        p.push_back(text("whatsapp_phone_number_id", &config::whatsapp_phone_number_id,
                         "sender phone number id of the WhatsApp Business account"));
        p.push_back(text("whatsapp_token", &config::whatsapp_token,
                         "WhatsApp Cloud API bearer token (prefer the environment variable)"));
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

base::result<void> apply(config& c, const property& p, std::string_view value, const std::string& origin) {
    if (auto problem = p.set(c, value); !problem.empty()) {
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
        if (!has_value) {
            if (i + 1 >= argc)
                return error(p->info.name + ": " + name + " needs a value");
            value = argv[++i];
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
        if (auto ok = apply(c, *p, value, p->info.env); !ok)
            return base::failure(ok.err());
    }
    for (const auto& [p, value] : flags) {
        if (auto ok = apply(c, *p, value, p->info.flag); !ok)
            return base::failure(ok.err());
    }

    // Cross-field rules and derived values.
    if (c.client_port != 0 && c.client_port == c.ops_port && c.client_host == c.ops_host) {
        return error("ops_port: must differ from client_port (both " + std::to_string(c.client_port) + ")");
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
        out << "  " << p.flag << "  (" << p.env << ")\n      " << p.description
            << "\n      default: " << (p.default_value.empty() ? "\"\"" : p.default_value);
        if (!p.bounds.empty())
            out << "   allowed: " << p.bounds;
        out << "\n";
    }
    out << "\nPrecedence: defaults < --config file (key = value lines) < HERALD_* environment < flags.\n";
    return out.str();
}

std::string describe(const config& c) {
    std::ostringstream out;
    for (const auto& p : table()) {
        // Credentials never reach a log.
        const bool secret =
            p.info.name.find("secret") != std::string::npos || p.info.name.find("token") != std::string::npos;
        const std::string value = p.get(c);
        out << p.info.name << " = " << (secret && !value.empty() ? "(set)" : value) << "\n";
    }
    return out.str();
}

}  // namespace herald::config
