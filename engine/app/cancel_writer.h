// DELETE /v1/broadcasts/{id} does not cancel anything itself: it writes the
// cancel record to herald.announcements, keyed by the broadcast's audience,
// so every instance (live: each its own; outbound: the partition's owner)
// meets it in order after the announcement, exactly as a producer's cancel.
// One short-lived produce per request, answered once Kafka has it.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"
#include "kafka/client_config.h"

namespace RdKafka {
class Producer;
}

namespace herald::app {

class cancel_writer {
  public:
    [[nodiscard]] static base::result<std::unique_ptr<cancel_writer>> create(
        const std::string& bootstrap_servers, const std::string& client_id, std::string topic,
        const kafka::properties& kafka_properties);
    ~cancel_writer();
    cancel_writer(const cancel_writer&) = delete;
    cancel_writer& operator=(const cancel_writer&) = delete;

    /// Any thread: produces {"cancel":id,"tenant":tenant} (content-type JSON,
    /// key = audience) and waits up to `timeout` for Kafka's acknowledgement.
    [[nodiscard]] base::result<void> write(const std::string& audience, const std::string& tenant,
                                           const std::string& id, std::chrono::milliseconds timeout);

  private:
    cancel_writer() = default;
    class reports;
    std::unique_ptr<reports> reports_;
    std::unique_ptr<RdKafka::Producer> producer_;
    std::string topic_;
    kafka::properties kafka_properties_;
    std::mutex mutex_;  // one cancel at a time: each waits for its own report
};

}  // namespace herald::app
