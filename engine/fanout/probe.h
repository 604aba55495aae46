// Metrics of the fan-out: per-shard gauges, delivery outcomes, latency and
// spread. Per-recipient figures are accumulated shard-locally in
// delivery_stats (plain integers) and folded into these families once per
// broadcast, so no shared atomic is touched per recipient.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "channels/client_listener.h"
#include "channels/delivery_stats.h"
#include "metrics/registry.h"

namespace herald::fanout {

using channels::delivery_outcome;
using channels::delivery_outcome_count;
using channels::delivery_stats;
using channels::live_channel;
using channels::live_channel_count;

class probe {
  public:
    probe(metrics::registry& reg, std::uint32_t shards);

    /// Gives the connection budget its accepted / rejected counters.
    void attach(channels::connection_budget& budget);

    /// Folds one shard's tallies into the families and resets them.
    void flush(delivery_stats& stats);
    void observe_spread_seconds(double s) { spread_->Observe(s); }

    void broadcast_delivered() { broadcasts_delivered_->Increment(); }
    void dropped_expired() { drop_expired_->Increment(); }
    void dropped_superseded() { drop_superseded_->Increment(); }
    void dropped_cancelled() { drop_cancelled_->Increment(); }
    void dispatcher_waited() { dispatcher_waits_->Increment(); }
    void recovery(bool complete) { (complete ? recoveries_complete_ : recoveries_gap_)->Increment(); }
    void recovered_frame() { recovered_frames_->Increment(); }
    void set_queue_depth(std::uint32_t shard, double depth) { queue_depth_[shard]->Set(depth); }
    void set_connections(std::uint32_t shard, double n) { connections_[shard]->Set(n); }
    void set_pending_releases(std::uint32_t shard, double n) { pending_[shard]->Set(n); }

  private:
    std::array<std::array<prometheus::Counter*, delivery_outcome_count>, live_channel_count> deliveries_{};
    prometheus::Counter* accepted_;
    prometheus::Counter* rejected_limit_;
    prometheus::Counter* rejected_fd_;
    prometheus::Counter* rejected_per_ip_;
    prometheus::Counter* drop_slow_consumer_;
    std::array<prometheus::Counter*, channels::close_reason_count> closes_{};
    prometheus::Counter* drop_expired_;
    prometheus::Counter* drop_superseded_;
    prometheus::Counter* drop_cancelled_;
    prometheus::Counter* broadcasts_delivered_;
    prometheus::Counter* dispatcher_waits_;
    prometheus::Counter* recoveries_complete_;
    prometheus::Counter* recoveries_gap_;
    prometheus::Counter* recovered_frames_;
    prometheus::Histogram* latency_;
    prometheus::Histogram* spread_;
    std::vector<prometheus::Gauge*> queue_depth_;
    std::vector<prometheus::Gauge*> connections_;
    std::vector<prometheus::Gauge*> pending_;
};

}  // namespace herald::fanout
