// Writes the outcome of every outbound delivery to herald.receipts (key =
// announcement id, value = canonical JSON of herald.v1.Receipt) so producers
// and `herald receipts --broadcast ID` can follow each recipient; a delivery
// that failed after exhausting its retries also goes to herald.dlq with its
// reason. Asynchronous (librdkafka batches), safe from any outbound shard.
// A receipt names the recipient by id with the outcome and its reason code,
// never by address: receipts are read by producers and tenants, and the
// address is the person's, kept in the registry only.
//
// A receipt must survive a broker that is away for a while: the producer is
// idempotent (a retried produce is never written twice), keeps a record until
// the broker has it (no message timeout), and when its queue is full the
// writing outbound shard waits — delivery slows down instead of receipts
// getting lost (until heraldd stops). What the broker refused for good is
// counted, never silent.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "base/loop_thread.h"
#include "base/result.h"
#include "kafka/client_config.h"
#include "metrics/registry.h"
#include "outbound/options.h"

namespace RdKafka {
class Producer;
}

namespace herald::outbound {

class receipt_writer {
  public:
    static base::result<std::unique_ptr<receipt_writer>> create(
        const std::string& bootstrap_servers, const std::string& client_id, std::string receipts_topic,
        std::string dlq_topic, const kafka::properties& kafka_properties, metrics::registry& metrics);
    ~receipt_writer();
    receipt_writer(const receipt_writer&) = delete;
    receipt_writer& operator=(const receipt_writer&) = delete;

    void write(const outcome_event& e);
    /// From now on a write does not wait for room in a full queue (heraldd is
    /// stopping: the drain must not hang on a broker that is away); what
    /// cannot be queued is counted as failed and logged.
    void stop() noexcept;
    /// Waits up to `timeout_ms` for the broker to have every receipt; returns
    /// how many are still unwritten.
    int flush(int timeout_ms);

  private:
    class delivery_reports;
    receipt_writer() = default;
    std::unique_ptr<delivery_reports> reports_;
    std::unique_ptr<RdKafka::Producer> producer_;
    std::string receipts_topic_;
    std::string dlq_topic_;
    prometheus::Counter* queue_full_waits_ = nullptr;
    // Serves delivery reports while no receipt is being written (after the
    // last one of a broadcast), so what the broker refused is counted then.
    std::atomic<bool> stopping_{false};
    base::loop_thread poller_{"herald-receipts"};
};

}  // namespace herald::outbound
