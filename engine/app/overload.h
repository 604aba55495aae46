// When a Kafka consumer should pause: the live one while a shard queue is
// three quarters full (resuming below a quarter), the outbound one while too
// many broadcasts wait for the outbound backlog (resuming below a quarter of
// that), and both while heraldd's resident memory is above memory_limit_mb
// (resuming below 90 %). Paused, the backlog stays in Kafka as consumer lag
// instead of growing Herald's memory. Each consumer asks on its own thread
// before every poll and keeps its own hysteresis state.
#pragma once

#include <prometheus/gauge.h>

#include <atomic>
#include <cstdint>
#include <functional>

#include "fanout/dispatcher.h"
#include "metrics/registry.h"
#include "outbound/router.h"

namespace herald::app {

class overload_monitor {
  public:
    overload_monitor(metrics::registry& metrics, std::uint64_t memory_limit_bytes);

    /// The live consumer's question (its own thread only).
    [[nodiscard]] std::function<bool()> live(const std::vector<fanout::shard*>& shards,
                                             std::uint32_t queue_capacity);
    /// The outbound consumer's question (its own thread only).
    [[nodiscard]] std::function<bool()> outbound(const outbound::outbound_router& router,
                                                 std::uint32_t max_waiting);

  private:
    /// Whether memory is above the ceiling, with hysteresis in `high`;
    /// reads /proc/self/statm at most every 50 ms across both consumers.
    bool memory_high(bool& high);

    prometheus::Gauge& rss_gauge_;
    const std::int64_t limit_;
    const long page_size_;
    std::atomic<std::int64_t> next_check_ns_{0};
    std::atomic<std::int64_t> rss_bytes_{0};
};

}  // namespace herald::app
