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

/// Why a live connection ended; names are the `reason` label of
/// herald_connections_closed_total.
enum class close_reason : std::uint8_t {
    peer_closed = 0,    // the client went away (EOF, reset, its own close)
    bad_request,        // the HTTP request was refused (4xx)
    handshake_timeout,  // no complete request in time (slowloris)
    protocol_error,     // a bad client frame: 1002 / 1007 / 1009
    slow_consumer,      // send queue full: 1008
    dead_peer,          // no pong to three pings
    shutdown,           // server shutting down: 1001
    unauthorized,       // token missing, malformed, expired or badly signed: 401
    forbidden,          // origin or audience not allowed: 403
    per_ip_limit,       // over a per-address limit: 429
    token_expired,      // the token ran out on an open connection: 1008
};
inline constexpr std::size_t close_reason_count = 11;
inline constexpr const char* close_reason_names[close_reason_count] = {
    "peer_closed", "bad_request",  "handshake_timeout", "protocol_error", "slow_consumer", "dead_peer",
    "shutdown",    "unauthorized", "forbidden",         "per_ip_limit",   "token_expired"};

struct delivery_stats {
    static constexpr std::size_t bucket_count = 18;  // metrics::latency_buckets() + Inf
    std::array<std::array<std::uint64_t, delivery_outcome_count>, live_channel_count> outcomes{};
    std::array<std::uint64_t, bucket_count> latency_buckets{};
    double latency_sum_seconds = 0;
    std::uint64_t latency_samples = 0;
    std::array<std::uint64_t, close_reason_count> closes{};
    bool dirty = false;

    void closed(close_reason r) noexcept {
        ++closes[static_cast<std::size_t>(r)];
        dirty = true;
    }

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
