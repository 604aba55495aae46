// Metrics of one announcement consumer ("live" or "outbound", the
// `consumer` label): what was consumed, what was refused and why, what went
// to the dead-letter topic, commits, pauses and consumer lag per partition.
// Both consumers' probes share the families.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <cstdint>
#include <map>
#include <string>

#include "metrics/registry.h"

namespace herald::ingest {

class probe {
  public:
    probe(metrics::registry& reg, const std::string& consumer);

    void consumed() { consumed_->Increment(); }
    /// A refused record left to the consumer that dead-letters.
    void skipped() { skipped_->Increment(); }
    /// A record read back for the recovery history at assignment.
    void refilled() { refilled_->Increment(); }
    /// `reason` is the errc name, e.g. "malformed_json".
    void rejected(const std::string& reason);
    void dlq_produced() { dlq_produced_->Increment(); }
    void dlq_failed() { dlq_failed_->Increment(); }
    void commit_ok() { commits_ok_->Increment(); }
    void commit_failed() { commits_failed_->Increment(); }
    void consumer_error() { consumer_errors_->Increment(); }
    void set_lag(std::int32_t partition, double lag);
    void set_paused(bool paused) {
        paused_->Set(paused ? 1 : 0);
        if (paused)
            pauses_->Increment();
    }

  private:
    prometheus::Counter& counter_for(const std::string& reason);

    std::string consumer_;
    prometheus::Counter* consumed_;
    prometheus::Counter* skipped_;
    prometheus::Counter* refilled_;
    prometheus::Family<prometheus::Counter>* rejected_family_;
    std::map<std::string, prometheus::Counter*> rejected_;
    prometheus::Counter* dlq_produced_;
    prometheus::Counter* dlq_failed_;
    prometheus::Counter* commits_ok_;
    prometheus::Counter* commits_failed_;
    prometheus::Counter* consumer_errors_;
    prometheus::Gauge* paused_;
    prometheus::Counter* pauses_;
    prometheus::Family<prometheus::Gauge>* lag_family_;
    std::map<std::int32_t, prometheus::Gauge*> lag_;
};

}  // namespace herald::ingest
