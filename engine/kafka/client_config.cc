#include "kafka/client_config.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace herald::kafka {
namespace {

constexpr std::array<owned_key, 15> daemon_keys{{
    {"bootstrap.servers", "use --brokers"},
    {"metadata.broker.list", "use --brokers"},
    {"group.id", "use --group-id and --outbound-group-id"},
    {"enable.auto.commit", "offsets are committed only once a record is finished (at-least-once)"},
    {"enable.auto.offset.store", "offsets are committed only once a record is finished (at-least-once)"},
    {"auto.offset.reset", "use --offset-reset"},
    {"enable.partition.eof", "the recovery history's read-back ends at the end of a partition"},
    {"queued.max.messages.kbytes", "use --kafka-prefetch-kib"},
    {"fetch.wait.max.ms", "use --fetch-wait-max-ms"},
    {"enable.idempotence", "receipts, dead letters and subscription changes are never written twice"},
    {"max.in.flight.requests.per.connection", "receipts and dead letters keep their order and are not lost"},
    {"max.in.flight", "receipts and dead letters keep their order and are not lost"},
    {"message.timeout.ms",
     "receipts and dead letters wait for a broker that is away instead of being dropped"},
    {"delivery.timeout.ms",
     "receipts and dead letters wait for a broker that is away instead of being dropped"},
    {"transactional.id", "heraldd's producers are idempotent, not transactional"},
}};

base::failure config_error(std::string what) {
    return base::failure(std::make_error_code(std::errc::invalid_argument), std::move(what));
}

/// Drops librdkafka's log lines of the trial clients in validate() ("no
/// bootstrap.servers configured" and the like).
class silent_events : public RdKafka::EventCb {
  public:
    void event_cb(RdKafka::Event& /*event*/) override {}
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::span<const owned_key> daemon_owned_keys() noexcept {
    return daemon_keys;
}

std::string scrub(std::string text, const properties& props) {
    for (const auto& [key, value] : props) {
        if (value.empty() || !config::is_secret_kafka_key(key))
            continue;
        for (auto at = text.find(value); at != std::string::npos; at = text.find(value, at + 3))
            text.replace(at, value.size(), "***");
    }
    return text;
}

base::result<void> validate(const properties& operator_properties, std::span<const owned_key> owned) {
    for (const auto& [key, value] : operator_properties) {
        const std::string k = lower(key);
        const auto it =
            std::find_if(owned.begin(), owned.end(), [&](const owned_key& o) { return o.key == k; });
        if (it != owned.end()) {
            return config_error("kafka_property " + key + ": set by Herald itself (" + std::string(it->why) +
                                ")");
        }
    }
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string err;
    for (const auto& [key, value] : operator_properties) {
        if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK)
            return config_error("kafka_property " + key + ": " + scrub(err, operator_properties));
    }
    // Trial clients without brokers: they connect nowhere, but librdkafka
    // checks the properties together (files, mechanisms) when it creates one.
    silent_events silent;
    if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(&silent), err) != RdKafka::Conf::CONF_OK)
        return config_error("kafka_property: " + err);
    std::string group;
    if (conf->get("group.id", group) != RdKafka::Conf::CONF_OK || group.empty())
        (void)conf->set("group.id", "herald-validate", err);
    const auto refused = [&](const std::string& why) {
        return config_error("kafka_property: librdkafka cannot create a client with these properties: " +
                            scrub(why, operator_properties));
    };
    {
        std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), err));
        if (!producer)
            return refused(err);
    }
    {
        std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
        if (!consumer)
            return refused(err);
        (void)consumer->close();
    }
    return {};
}

base::result<std::unique_ptr<RdKafka::Conf>> client_conf(const properties& herald,
                                                         const properties& operator_properties) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string err;
    for (const auto& [key, value] : herald) {
        if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK)
            return config_error(key + ": " + err);
    }
    for (const auto& [key, value] : operator_properties) {
        if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK)
            return config_error("kafka_property " + key + ": " + scrub(err, operator_properties));
    }
    return conf;
}

}  // namespace herald::kafka
