// Writes the outcome of every outbound delivery to herald.receipts (key =
// announcement id, value = canonical JSON of herald.v1.Receipt) so producers
// and `herald receipts --broadcast ID` can follow each recipient; a delivery
// that failed after exhausting its retries also goes to herald.dlq with its
// reason. Asynchronous (librdkafka batches), safe from any outbound shard.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "outbound/outbound_shard.h"

namespace RdKafka {
class Producer;
}

namespace herald::outbound {

class receipt_writer {
  public:
    static base::result<std::unique_ptr<receipt_writer>> create(const std::string& bootstrap_servers,
                                                                const std::string& client_id,
                                                                std::string receipts_topic,
                                                                std::string dlq_topic);
    ~receipt_writer();
    receipt_writer(const receipt_writer&) = delete;
    receipt_writer& operator=(const receipt_writer&) = delete;

    void write(const outcome_event& e);
    void flush(int timeout_ms);

  private:
    receipt_writer() = default;
    std::unique_ptr<RdKafka::Producer> producer_;
    std::string receipts_topic_;
    std::string dlq_topic_;
};

}  // namespace herald::outbound
