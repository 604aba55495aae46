// Kafka from the test's side, through librdkafka like any producer would:
// produce a record with key and headers and wait for its delivery; read
// every record of a topic from the beginning.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
// After rdkafka.h.
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace herald::testing {

struct kafka_record {
    std::string key;
    std::string value;
    std::map<std::string, std::string> headers;
    std::int32_t partition = -1;
    std::int64_t offset = -1;
};

class kafka_producer {
  public:
    explicit kafka_producer(const std::string& brokers) {
        std::string err;
        std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
        conf->set("bootstrap.servers", brokers, err);
        conf->set("linger.ms", "0", err);
        conf->set("log_level", "3", err);
        producer_.reset(RdKafka::Producer::create(conf.get(), err));
    }

    /// Produces and waits until the broker acknowledged it; false on failure.
    bool produce(const std::string& topic, const std::string& key, const std::string& value,
                 const std::map<std::string, std::string>& headers = {}) {
        return enqueue(topic, key, value, headers) && flush(10000);
    }

    bool produce_json(const std::string& topic, const std::string& audience, const std::string& json) {
        return produce(topic, audience, json, {{"content-type", "application/json"}});
    }

    /// Queues a record without waiting (e.g. while the broker is down); flush() waits.
    bool enqueue(const std::string& topic, const std::string& key, const std::string& value,
                 const std::map<std::string, std::string>& headers = {}) {
        RdKafka::Headers* h = RdKafka::Headers::create();
        for (const auto& [k, v] : headers) h->add(k, v);
        const auto err = producer_->produce(topic, RdKafka::Topic::PARTITION_UA,
                                            RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
                                            value.size(), key.data(), key.size(), 0, h, nullptr);
        if (err != RdKafka::ERR_NO_ERROR) {
            delete h;
            return false;
        }
        return true;
    }

    bool enqueue_json(const std::string& topic, const std::string& audience, const std::string& json) {
        return enqueue(topic, audience, json, {{"content-type", "application/json"}});
    }

    /// Waits until everything queued was acknowledged.
    bool flush(int timeout_ms) { return producer_->flush(timeout_ms) == RdKafka::ERR_NO_ERROR; }

  private:
    std::unique_ptr<RdKafka::Producer> producer_;
};

/// Every record of `topic` (all partitions from the beginning), waiting up to
/// `timeout_ms` for at least `min_records`.
inline std::vector<kafka_record> read_topic(const std::string& brokers, const std::string& topic,
                                            std::size_t min_records, int timeout_ms = 10000) {
    std::string err;
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    conf->set("bootstrap.servers", brokers, err);
    conf->set("group.id", "herald-test-reader", err);
    conf->set("enable.auto.commit", "false", err);
    conf->set("log_level", "3", err);
    std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
    std::vector<kafka_record> out;
    if (!consumer)
        return out;
    RdKafka::Metadata* md = nullptr;
    std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(consumer.get(), topic, nullptr, err));
    if (consumer->metadata(false, t.get(), &md, 5000) != RdKafka::ERR_NO_ERROR)
        return out;
    std::vector<RdKafka::TopicPartition*> parts;
    for (const auto* tm : *md->topics()) {
        for (const auto* pm : *tm->partitions()) {
            parts.push_back(
                RdKafka::TopicPartition::create(topic, pm->id(), RdKafka::Topic::OFFSET_BEGINNING));
        }
    }
    delete md;
    consumer->assign(parts);
    RdKafka::TopicPartition::destroy(parts);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    auto quiet_since = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < deadline) {
        std::unique_ptr<RdKafka::Message> m(consumer->consume(100));
        if (m->err() == RdKafka::ERR_NO_ERROR) {
            kafka_record r;
            if (m->key())
                r.key = *m->key();
            r.value.assign(static_cast<const char*>(m->payload()), m->len());
            r.partition = m->partition();
            r.offset = m->offset();
            if (const auto* hs = m->headers()) {
                for (const auto& h : hs->get_all()) {
                    r.headers[h.key()] = std::string(static_cast<const char*>(h.value()), h.value_size());
                }
            }
            out.push_back(std::move(r));
            quiet_since = std::chrono::steady_clock::now();
        } else if (out.size() >= min_records &&
                   std::chrono::steady_clock::now() - quiet_since > std::chrono::milliseconds(500)) {
            break;
        }
    }
    consumer->close();
    return out;
}

/// A mock Kafka cluster owned by the test, so it survives heraldd restarts.
class external_kafka {
  public:
    external_kafka() {
        char err[256];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
        rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        mock_ = rd_kafka_mock_cluster_new(rk_, 1);
        for (const char* t :
             {"herald.announcements", "herald.subscriptions", "herald.receipts", "herald.dlq"}) {
            rd_kafka_mock_topic_create(mock_, t, 2, 1);
        }
        brokers = rd_kafka_mock_cluster_bootstraps(mock_);
    }
    ~external_kafka() {
        rd_kafka_mock_cluster_destroy(mock_);
        rd_kafka_destroy(rk_);
    }
    std::string brokers;
    /// The cluster's own fault controls (broker down/up, injected errors).
    [[nodiscard]] rd_kafka_mock_cluster_t* mock() const noexcept { return mock_; }

  private:
    rd_kafka_t* rk_ = nullptr;
    rd_kafka_mock_cluster_t* mock_ = nullptr;
};

}  // namespace herald::testing
