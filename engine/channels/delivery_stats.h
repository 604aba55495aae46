// What happened to each frame handed to a live connection, tallied in plain
// integers by the shard that owns the connection. The fan-out probe folds
// these into Prometheus once per broadcast, so the per-recipient path never
// touches a shared atomic.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "metrics/registry.h"

namespace herald::channels {

/// Live channel of a connection; indexes the tallies.
enum class live_channel : std::uint8_t { websocket = 0, sse = 1 };
inline constexpr std::size_t live_channel_count = 2;

/// Outcome of handing one frame to one connection.
enum class delivery_outcome : std::uint8_t { sent = 0, dropped_slow_consumer = 1, failed = 2 };
inline constexpr std::size_t delivery_outcome_count = 3;

struct delivery_stats {
    static constexpr std::size_t bucket_count = 18;  // metrics::latency_buckets() + Inf
    std::array<std::array<std::uint64_t, delivery_outcome_count>, live_channel_count> outcomes{};
    std::array<std::uint64_t, bucket_count> latency_buckets{};
    double latency_sum_seconds = 0;
    std::uint64_t latency_samples = 0;
    bool dirty = false;

    void count(live_channel ch, delivery_outcome o) noexcept {
        ++outcomes[static_cast<std::size_t>(ch)][static_cast<std::size_t>(o)];
        dirty = true;
    }

    void observe_latency_ns(std::int64_t ns) noexcept {
        const double seconds = static_cast<double>(ns) * 1e-9;
        const auto& bounds = metrics::latency_buckets();
        const auto it = std::lower_bound(bounds.begin(), bounds.end(), seconds);
        ++latency_buckets[static_cast<std::size_t>(it - bounds.begin())];
        latency_sum_seconds += seconds;
        ++latency_samples;
        dirty = true;
    }
};

}  // namespace herald::channels
