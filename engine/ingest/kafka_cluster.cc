#include "ingest/kafka_cluster.h"

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h needs rdkafka.h first.
#include <librdkafka/rdkafka_mock.h>

namespace herald::ingest {

base::result<std::unique_ptr<kafka_cluster>> kafka_cluster::start_embedded(
    std::uint32_t brokers, std::uint32_t partitions, const std::vector<std::string>& topics) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "client.id", "herald-embedded-kafka", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == nullptr) {
        return base::failure(std::make_error_code(std::errc::io_error),
                             std::string("cannot create the mock cluster's host client: ") + errstr);
    }
    rd_kafka_mock_cluster_t* mock = rd_kafka_mock_cluster_new(rk, static_cast<int>(brokers));
    if (mock == nullptr) {
        rd_kafka_destroy(rk);
        return base::failure(std::make_error_code(std::errc::io_error),
                             "cannot start the embedded mock cluster");
    }
    std::unique_ptr<kafka_cluster> cluster(new kafka_cluster());
    cluster->owner_ = rk;
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
    if (owner_ != nullptr) {
        rd_kafka_destroy(static_cast<rd_kafka_t*>(owner_));
    }
}

}  // namespace herald::ingest
