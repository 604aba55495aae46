#include "fanout/probe.h"

namespace herald::fanout {

void probe::attach(channels::connection_budget& budget) {
    budget.accepted = accepted_;
    budget.rejected_limit = rejected_limit_;
    budget.rejected_fd = rejected_fd_;
    budget.rejected_per_ip = rejected_per_ip_;
}

probe::probe(metrics::registry& reg, std::uint32_t shards) {
    auto& r = reg.prom();
    auto& deliveries = prometheus::BuildCounter()
                           .Name("herald_deliveries_total")
                           .Help("Frames handed to live connections, by channel and outcome")
                           .Register(r);
    const char* channels[] = {"websocket", "sse"};
    const char* outcomes[] = {"sent", "dropped", "failed"};
    for (std::size_t c = 0; c < live_channel_count; ++c) {
        for (std::size_t o = 0; o < delivery_outcome_count; ++o) {
            deliveries_[c][o] = &deliveries.Add({{"channel", channels[c]}, {"outcome", outcomes[o]}});
        }
    }
    accepted_ = &prometheus::BuildCounter()
                     .Name("herald_connections_accepted_total")
                     .Help("Live connections accepted on the client port")
                     .Register(r)
                     .Add({});
    auto& rejected = prometheus::BuildCounter()
                         .Name("herald_connections_rejected_total")
                         .Help("Live connections refused at accept, by reason")
                         .Register(r);
    rejected_limit_ = &rejected.Add({{"reason", "max_connections"}});
    rejected_fd_ = &rejected.Add({{"reason", "out_of_descriptors"}});
    rejected_per_ip_ = &rejected.Add({{"reason", "per_ip"}});
    auto& drops = prometheus::BuildCounter()
                      .Name("herald_drops_total")
                      .Help("Deliveries or broadcasts dropped on purpose, by reason")
                      .Register(r);
    drop_slow_consumer_ = &drops.Add({{"reason", "slow_consumer"}});
    drop_expired_ = &drops.Add({{"reason", "expired"}});
    drop_superseded_ = &drops.Add({{"reason", "superseded"}});
    drop_cancelled_ = &drops.Add({{"reason", "shutdown"}});
    auto& closes =
        prometheus::BuildCounter()
            .Name("herald_connections_closed_total")
            .Help("Live connections ended, by reason (clients, refusals, timeouts, protocol errors)")
            .Register(r);
    for (std::size_t i = 0; i < channels::close_reason_count; ++i)
        closes_[i] = &closes.Add({{"reason", channels::close_reason_names[i]}});
    broadcasts_delivered_ = &prometheus::BuildCounter()
                                 .Name("herald_broadcasts_total")
                                 .Help("Broadcasts released to their live audience")
                                 .Register(r)
                                 .Add({});
    auto& recoveries =
        prometheus::BuildCounter()
            .Name("herald_recoveries_total")
            .Help("Reconnects with since / Last-Event-ID, by whether the history covered the gap")
            .Register(r);
    recoveries_complete_ = &recoveries.Add({{"result", "complete"}});
    recoveries_gap_ = &recoveries.Add({{"result", "gap"}});
    recovered_frames_ = &prometheus::BuildCounter()
                             .Name("herald_recovered_frames_total")
                             .Help("Missed announcements replayed to reconnecting clients from history")
                             .Register(r)
                             .Add({});
    dispatcher_waits_ = &prometheus::BuildCounter()
                             .Name("herald_dispatcher_backpressure_waits_total")
                             .Help("Times the dispatcher waited because a shard queue was full")
                             .Register(r)
                             .Add({});
    latency_ = &prometheus::BuildHistogram()
                    .Name("herald_delivery_latency_seconds")
                    .Help("Release instant to socket write, per live recipient")
                    .Register(r)
                    .Add({}, metrics::latency_buckets());
    spread_ = &prometheus::BuildHistogram()
                   .Name("herald_broadcast_spread_seconds")
                   .Help("First to last socket write of one broadcast across all shards")
                   .Register(r)
                   .Add({}, metrics::latency_buckets());
    auto& depth = prometheus::BuildGauge()
                      .Name("herald_shard_queue_depth")
                      .Help("Broadcasts waiting in a shard's queue")
                      .Register(r);
    auto& conns = prometheus::BuildGauge()
                      .Name("herald_live_connections")
                      .Help("Open live connections (WebSocket and SSE) per shard")
                      .Register(r);
    auto& pending = prometheus::BuildGauge()
                        .Name("herald_pending_releases")
                        .Help("Broadcasts held for a future deliver_at, per shard")
                        .Register(r);
    for (std::uint32_t s = 0; s < shards; ++s) {
        const std::string label = std::to_string(s);
        queue_depth_.push_back(&depth.Add({{"shard", label}}));
        connections_.push_back(&conns.Add({{"shard", label}}));
        pending_.push_back(&pending.Add({{"shard", label}}));
    }
}

void probe::flush(delivery_stats& stats) {
    if (!stats.dirty) {
        return;
    }
    for (std::size_t c = 0; c < live_channel_count; ++c) {
        for (std::size_t o = 0; o < delivery_outcome_count; ++o) {
            if (const auto n = stats.outcomes[c][o]; n != 0) {
                deliveries_[c][o]->Increment(static_cast<double>(n));
            }
        }
        if (const auto n =
                stats.outcomes[c][static_cast<std::size_t>(delivery_outcome::dropped_slow_consumer)];
            n != 0) {
            drop_slow_consumer_->Increment(static_cast<double>(n));
        }
    }
    for (std::size_t r = 0; r < channels::close_reason_count; ++r) {
        if (const auto n = stats.closes[r]; n != 0)
            closes_[r]->Increment(static_cast<double>(n));
    }
    if (stats.latency_samples != 0) {
        std::vector<double> increments(stats.latency_buckets.begin(), stats.latency_buckets.end());
        latency_->ObserveMultiple(increments, stats.latency_sum_seconds);
    }
    stats = delivery_stats{};
}

}  // namespace herald::fanout
