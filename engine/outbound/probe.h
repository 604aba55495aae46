// Metrics of outbound delivery (herald_outbound_*): final outcomes by channel,
// what each HTTP attempt's answer meant, sender pauses, request latency,
// deliveries pending, broadcasts waiting for the backlog, subscribers known.
// Counters are touched once per HTTP attempt, never per live recipient.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <array>
#include <cstdint>
#include <string>

#include "herald/v1/receipt.pb.h"
#include "herald/v1/subscription.pb.h"
#include "metrics/registry.h"
#include "outbound/gateway_reply.h"

namespace herald::outbound {

class probe {
  public:
    explicit probe(metrics::registry& reg);

    void outcome(herald::v1::Channel channel, herald::v1::Outcome o) {
        outcomes_[channel_index(channel)][outcome_index(o)]->Increment();
    }
    void attempt(verdict v) { attempts_[static_cast<std::size_t>(v)]->Increment(); }
    void sender_paused() { paused_->Increment(); }
    /// One group commit of started marks (at-most-once channels) of `n` deliveries.
    void started_batch(std::size_t n) {
        start_batches_->Increment();
        start_marks_->Increment(static_cast<double>(n));
    }
    void request_seconds(double s) { request_seconds_->Observe(s); }
    void pending(double n) { pending_->Increment(n); }
    /// Each outbound shard's own gauge (created once, by the shard).
    prometheus::Gauge& waiting_gauge(std::uint32_t shard) {
        return waiting_->Add({{"shard", std::to_string(shard)}});
    }
    void subscribers(double n) { subscribers_->Increment(n); }

  private:
    static std::size_t channel_index(herald::v1::Channel c) noexcept {
        return c == herald::v1::CHANNEL_WHATSAPP ? 1 : c == herald::v1::CHANNEL_SMS ? 2 : 0;
    }
    static std::size_t outcome_index(herald::v1::Outcome o) noexcept {
        return o == herald::v1::OUTCOME_SENT      ? 0
               : o == herald::v1::OUTCOME_FAILED  ? 1
               : o == herald::v1::OUTCOME_UNKNOWN ? 3
                                                  : 2;
    }

    std::array<std::array<prometheus::Counter*, 4>, 3>
        outcomes_{};  // [webhook|whatsapp|sms][sent|failed|suppressed|unknown]
    std::array<prometheus::Counter*, 6> attempts_{};
    prometheus::Counter* paused_;
    prometheus::Counter* start_batches_;
    prometheus::Counter* start_marks_;
    prometheus::Histogram* request_seconds_;
    prometheus::Gauge* pending_;
    prometheus::Family<prometheus::Gauge>* waiting_;
    prometheus::Gauge* subscribers_;
};

}  // namespace herald::outbound
