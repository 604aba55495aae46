#include "kafka/subscriptions_topic.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <cctype>
#include <charconv>

#include "base/log.h"

namespace herald::kafka {
namespace {

std::string trim_lower(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

/// "86400000 ms" as people read it: "24 h", "90 s", "1500 ms".
std::string readable(std::int64_t ms) {
    if (ms >= 3600000 && ms % 3600000 == 0)
        return std::to_string(ms / 3600000) + " h";
    if (ms >= 1000 && ms % 1000 == 0)
        return std::to_string(ms / 1000) + " s";
    return std::to_string(ms) + " ms";
}

/// Owns an admin result event and the queue it arrived on.
struct admin_call {
    rd_kafka_queue_t* queue = nullptr;
    rd_kafka_AdminOptions_t* options = nullptr;
    rd_kafka_event_t* event = nullptr;
    admin_call(rd_kafka_t* rk, rd_kafka_admin_op_t op, std::chrono::milliseconds timeout)
        : queue(rd_kafka_queue_new(rk)), options(rd_kafka_AdminOptions_new(rk, op)) {
        char err[256];
        const int ms = static_cast<int>(timeout.count());
        (void)rd_kafka_AdminOptions_set_request_timeout(options, ms, err, sizeof err);
        if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
            (void)rd_kafka_AdminOptions_set_operation_timeout(options, ms, err, sizeof err);
    }
    ~admin_call() {
        if (event != nullptr)
            rd_kafka_event_destroy(event);
        rd_kafka_AdminOptions_destroy(options);
        rd_kafka_queue_destroy(queue);
    }
    admin_call(const admin_call&) = delete;
    admin_call& operator=(const admin_call&) = delete;

    /// Waits for the answer in short slices until `deadline` or `give_up()`.
    template <class Stop>
    bool wait(std::chrono::steady_clock::time_point deadline, Stop give_up) {
        while (event == nullptr && std::chrono::steady_clock::now() < deadline && !give_up())
            event = rd_kafka_queue_poll(queue, 100);
        return event != nullptr;
    }
};

}  // namespace

compaction_verdict judge(const std::map<std::string, std::string>& topic_config,
                         std::chrono::milliseconds bound) {
    compaction_verdict v;
    const auto policy = topic_config.find("cleanup.policy");
    if (policy == topic_config.end()) {
        v.explanation = "its configuration has no cleanup.policy";
        return v;
    }
    bool compact = false;
    std::string_view rest = policy->second;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        compact |= trim_lower(rest.substr(0, comma)) == "compact";
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    if (!compact) {
        v.state = compaction::off;
        v.explanation = "cleanup.policy=" + policy->second +
                        ": a forgotten person's earlier records (address included) stay until retention "
                        "deletes them; set cleanup.policy=compact and max.compaction.lag.ms";
        return v;
    }
    v.state = compaction::on;
    if (const auto lag = topic_config.find("max.compaction.lag.ms"); lag != topic_config.end()) {
        std::int64_t ms = 0;
        const auto& text = lag->second;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
        if (ec == std::errc() && end == text.data() + text.size() && ms > 0)
            v.max_lag_ms = ms;
    }
    if (!v.max_lag_ms || *v.max_lag_ms > bound.count()) {
        v.lag_too_long = true;
        v.explanation = "compacted, but max.compaction.lag.ms=" +
                        (v.max_lag_ms ? std::to_string(*v.max_lag_ms) : std::string("(not set)")) +
                        " exceeds subscriptions_max_compaction_lag_ms=" + std::to_string(bound.count()) +
                        ": a forgotten person's earlier records may stay that long after the tombstone";
        return v;
    }
    v.explanation = "compacted: a tombstone removes a forgotten person's earlier records within " +
                    readable(*v.max_lag_ms) + " (max.compaction.lag.ms)";
    return v;
}

properties creation_config(std::chrono::milliseconds max_compaction_lag) {
    return {{"cleanup.policy", "compact"},
            {"max.compaction.lag.ms", std::to_string(max_compaction_lag.count())}};
}

subscriptions_topic::subscriptions_topic(options o, metrics::registry& metrics) : options_(std::move(o)) {
    compacted_ = &prometheus::BuildGauge()
                      .Name("herald_subscriptions_topic_compacted")
                      .Help(
                          "Whether herald.subscriptions is compacted, so that forget removes a person's "
                          "records from Kafka: 1 yes, 0 no, -1 unknown (embedded cluster, or the Admin API "
                          "did not answer)")
                      .Register(metrics.prom())
                      .Add({});
    compacted_->Set(-1);
    lag_ = &prometheus::BuildGauge()
                .Name("herald_subscriptions_topic_max_compaction_lag_seconds")
                .Help(
                    "max.compaction.lag.ms of the compacted herald.subscriptions, in seconds: how long a "
                    "forgotten person's earlier records may stay after the tombstone")
                .Register(metrics.prom());
}

subscriptions_topic::~subscriptions_topic() {
    stop();
}

void subscriptions_topic::embedded() {
    HERALD_LOG_INFO("kafka", options_.topic,
                    " lives in the embedded mock cluster: in memory only and gone at exit, never compacted, "
                    "no Admin API to ask; herald_subscriptions_topic_compacted stays -1 (unknown). With "
                    "--brokers heraldd creates it compacted (max.compaction.lag.ms=",
                    options_.max_compaction_lag.count(), ") and checks it at start");
}

base::result<void> subscriptions_topic::start() {
    properties herald{{"bootstrap.servers", options_.bootstrap_servers},
                      {"client.id", options_.client_id + "-admin"},
                      {"log_level", "4"}};
    auto conf = client_conf(herald, options_.kafka_properties);
    if (!conf)
        return base::failure(conf.err());
    std::string err;
    admin_.reset(RdKafka::Producer::create(conf->get(), err));
    if (!admin_) {
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             "kafka admin client: " + scrub(err, options_.kafka_properties));
    }
    ensure_exists();
    loop_.post([this] { check(); });
    loop_.start();
    return {};
}

void subscriptions_topic::stop() {
    stopping_.store(true, std::memory_order_release);
    loop_.stop();
    admin_.reset();
}

void subscriptions_topic::ensure_exists() {
    rd_kafka_t* rk = admin_->c_ptr();
    const int timeout_ms = static_cast<int>(options_.timeout.count());
    // Every topic: a metadata request for this one alone may let the broker
    // auto-create it with its defaults (delete policy), the very thing to avoid.
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t listed = rd_kafka_metadata(rk, 1, nullptr, &md, timeout_ms);
    if (listed != RD_KAFKA_RESP_ERR_NO_ERROR) {
        HERALD_LOG_WARN("kafka", "cannot list the cluster's topics (", rd_kafka_err2str(listed),
                        "): not creating ", options_.topic);
        return;
    }
    bool exists = false;
    for (int i = 0; i < md->topic_cnt; ++i) {
        exists |= options_.topic == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    rd_kafka_metadata_destroy(md);
    if (exists)
        return;

    char errstr[512];
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(options_.topic.c_str(), static_cast<int>(options_.partitions), -1, errstr,
                              sizeof errstr);  // -1: the broker's replication factor
    if (topic == nullptr) {
        HERALD_LOG_WARN("kafka", "cannot describe the topic ", options_.topic, " to create: ", errstr);
        return;
    }
    for (const auto& [key, value] : creation_config(options_.max_compaction_lag))
        (void)rd_kafka_NewTopic_set_config(topic, key.c_str(), value.c_str());
    admin_call call(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, options_.timeout);
    rd_kafka_CreateTopics(rk, &topic, 1, call.options, call.queue);
    rd_kafka_NewTopic_destroy(topic);
    const bool answered = call.wait(std::chrono::steady_clock::now() + 2 * options_.timeout,
                                    [this] { return stopping_.load(std::memory_order_acquire); });
    if (!answered) {
        HERALD_LOG_WARN("kafka", "no answer to creating ", options_.topic, " in time");
        return;
    }
    if (rd_kafka_event_error(call.event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        HERALD_LOG_WARN("kafka", "cannot create ", options_.topic, ": ",
                        rd_kafka_event_error_string(call.event));
        return;
    }
    std::size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(call.event), &n);
    for (std::size_t i = 0; i < n; ++i) {
        const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            HERALD_LOG_INFO("kafka", "created ", options_.topic,
                            " compacted (cleanup.policy=compact, "
                            "max.compaction.lag.ms=",
                            options_.max_compaction_lag.count(), ")");
        } else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {  // another instance was first
            const char* why = rd_kafka_topic_result_error_string(results[i]);
            HERALD_LOG_WARN("kafka", "cannot create ", options_.topic, ": ", rd_kafka_err2str(e),
                            why != nullptr ? std::string(": ") + why : std::string());
        }
    }
}

void subscriptions_topic::check() {
    rd_kafka_t* rk = admin_->c_ptr();
    rd_kafka_ConfigResource_t* resource =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, options_.topic.c_str());
    admin_call call(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, options_.timeout);
    rd_kafka_DescribeConfigs(rk, &resource, 1, call.options, call.queue);
    rd_kafka_ConfigResource_destroy(resource);
    const bool answered =
        call.wait(std::chrono::steady_clock::now() + options_.timeout + std::chrono::seconds(1),
                  [this] { return stopping_.load(std::memory_order_acquire); });
    if (stopping_.load(std::memory_order_acquire))
        return;
    compaction_verdict v;
    if (!answered) {
        v.explanation = "the cluster did not describe its configuration in time";
    } else if (rd_kafka_event_error(call.event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        v.explanation =
            std::string("cannot read its configuration: ") + rd_kafka_event_error_string(call.event);
    } else {
        std::size_t n = 0;
        const rd_kafka_ConfigResource_t** resources =
            rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(call.event), &n);
        if (n != 1 || rd_kafka_ConfigResource_error(resources[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char* why = n == 1 ? rd_kafka_ConfigResource_error_string(resources[0]) : nullptr;
            v.explanation = std::string("cannot read its configuration: ") +
                            (why != nullptr ? why : "no answer for the topic");
        } else {
            std::map<std::string, std::string> entries;
            std::size_t count = 0;
            const rd_kafka_ConfigEntry_t** configs = rd_kafka_ConfigResource_configs(resources[0], &count);
            for (std::size_t i = 0; i < count; ++i) {
                const char* value = rd_kafka_ConfigEntry_value(configs[i]);
                if (value != nullptr)
                    entries[rd_kafka_ConfigEntry_name(configs[i])] = value;
            }
            v = judge(entries, options_.max_compaction_lag);
        }
    }
    report(v);
}

void subscriptions_topic::report(const compaction_verdict& v) {
    state_.store(static_cast<int>(v.state), std::memory_order_release);
    compacted_->Set(static_cast<double>(static_cast<int>(v.state)));
    if (v.max_lag_ms)
        lag_->Add({}).Set(static_cast<double>(*v.max_lag_ms) / 1000.0);
    if (v.state == compaction::on && !v.lag_too_long) {
        HERALD_LOG_INFO("kafka", options_.topic, " is ", v.explanation);
    } else {
        HERALD_LOG_WARN("kafka", options_.topic, ": ", v.explanation,
                        " (herald_subscriptions_topic_compacted ", static_cast<int>(v.state), ")");
    }
}

}  // namespace herald::kafka
