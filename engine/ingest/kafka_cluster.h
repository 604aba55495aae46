// Where Herald's Kafka is: either a real cluster given by --brokers, or the
// embedded default, librdkafka's mock cluster started in this process. The
// mock speaks the real Kafka protocol on loopback TCP (kcat and the herald
// tool can produce to it) in plaintext only (no TLS, no SASL: librdkafka
// 2.0.2's mock answers neither), and has no admin API and no compaction, so
// topics are created with the mock's own call and nothing durable lives only
// there.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace RdKafka {
class Producer;
}

namespace herald::ingest {

class kafka_cluster {
  public:
    /// Starts the in-process mock cluster and creates `topics`.
    static base::result<std::unique_ptr<kafka_cluster>> start_embedded(
        std::uint32_t brokers, std::uint32_t partitions, const std::vector<std::string>& topics);
    /// An external cluster: nothing to start.
    static std::unique_ptr<kafka_cluster> external(std::string bootstrap_servers);

    ~kafka_cluster();
    kafka_cluster(const kafka_cluster&) = delete;
    kafka_cluster& operator=(const kafka_cluster&) = delete;

    [[nodiscard]] const std::string& bootstrap_servers() const noexcept { return bootstrap_; }
    [[nodiscard]] bool embedded() const noexcept { return mock_ != nullptr; }

  private:
    kafka_cluster() = default;
    std::string bootstrap_;
    std::unique_ptr<RdKafka::Producer> owner_;  // the client that hosts the mock
    void* mock_ = nullptr;                      // rd_kafka_mock_cluster_t
};

}  // namespace herald::ingest
