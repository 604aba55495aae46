// The one Prometheus registry of a heraldd process and its text exposition.
//
// Each subsystem registers its own families in a probe (fanout/probe.h,
// ingest/probe.h, channels/probe.h) against this registry; the ops server
// renders it on GET /metrics. Families are created once at start-up; the hot
// path only touches the returned counters, gauges and histograms.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace herald::metrics {

class registry {
  public:
    registry();

    [[nodiscard]] prometheus::Registry& prom() noexcept { return *registry_; }
    [[nodiscard]] std::shared_ptr<prometheus::Registry> shared() const noexcept { return registry_; }

    /// Prometheus text format 0.0.4 of every registered family.
    [[nodiscard]] std::string render() const;

  private:
    std::shared_ptr<prometheus::Registry> registry_;
};

/// Latency buckets from 50 µs to 10 s, roughly x2.5 apart: fine enough to
/// tell a 1 ms p99 from a 5 ms one, coarse enough to stay cheap.
[[nodiscard]] const prometheus::Histogram::BucketBoundaries& latency_buckets();

}  // namespace herald::metrics
