#include "ingest/kafka_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
// rdkafka_mock.h needs rdkafka.h first.
#include <librdkafka/rdkafka_mock.h>

#include "kafka/client_config.h"

namespace herald::ingest {

base::result<std::unique_ptr<kafka_cluster>> kafka_cluster::start_embedded(
    std::uint32_t brokers, std::uint32_t partitions, const std::vector<std::string>& topics) {
    // The host is the broker side, not a client of it: it connects nowhere,
    // so the operator's properties (security, SASL) are not its to use; the
    // mock brokers speak plaintext only (librdkafka 2.0.2).
    auto conf = kafka::client_conf({{"client.id", "herald-embedded-kafka"}, {"log_level", "3"}}, {});
    if (!conf)
        return base::failure(conf.err());
    std::string errstr;
    std::unique_ptr<RdKafka::Producer> host(RdKafka::Producer::create(conf->get(), errstr));
    if (!host) {
        return base::failure(std::make_error_code(std::errc::io_error),
                             "cannot create the mock cluster's host client: " + errstr);
    }
    rd_kafka_mock_cluster_t* mock = rd_kafka_mock_cluster_new(host->c_ptr(), static_cast<int>(brokers));
    if (mock == nullptr) {
        return base::failure(std::make_error_code(std::errc::io_error),
                             "cannot start the embedded mock cluster");
    }
    std::unique_ptr<kafka_cluster> cluster(new kafka_cluster());
    cluster->owner_ = std::move(host);
    cluster->mock_ = mock;
    cluster->bootstrap_ = rd_kafka_mock_cluster_bootstraps(mock);
    for (const auto& topic : topics) {
        const rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mock, topic.c_str(), static_cast<int>(partitions), 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return base::failure(std::make_error_code(std::errc::io_error),
                                 "cannot create topic " + topic + ": " + rd_kafka_err2str(err));
        }
    }
    return cluster;
}

std::unique_ptr<kafka_cluster> kafka_cluster::external(std::string bootstrap_servers) {
    std::unique_ptr<kafka_cluster> cluster(new kafka_cluster());
    cluster->bootstrap_ = std::move(bootstrap_servers);
    return cluster;
}

kafka_cluster::~kafka_cluster() {
    if (mock_ != nullptr) {
        rd_kafka_mock_cluster_destroy(static_cast<rd_kafka_mock_cluster_t*>(mock_));
    }
    owner_.reset();  // after the mock it hosts
}

}  // namespace herald::ingest
