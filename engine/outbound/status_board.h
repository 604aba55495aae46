// Where each broadcast stands, for `GET /v1/broadcasts/{id}` and `herald
// status ID`: how many outbound recipients were targeted, sent, failed,
// suppressed (and why) and are still pending, with an ETA from the rate the
// broadcast is actually achieving (or, before the first send, the configured
// rate). Outbound shards report each final outcome here — a mutex per
// outcome is nothing next to an HTTP round trip, and the live path never
// touches it. Keeps the most recent `capacity` finished broadcasts and
// every running one.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace herald::outbound {

struct broadcast_progress {
    std::string id;
    std::string tenant;
    std::string audience;
    std::uint64_t targeted = 0;
    std::uint64_t sent = 0;
    std::uint64_t failed = 0;
    std::uint64_t suppressed = 0;
    std::map<std::string, std::uint64_t> suppressed_reasons;
    std::uint32_t shards_expanding = 0;  // shards that have not listed their recipients yet
    std::uint64_t live_connections = 0;
    bool live_done = false;
    std::int64_t started_mono_ns = 0;
    std::int64_t first_sent_mono_ns = 0;
    std::int64_t last_outcome_mono_ns = 0;
    double configured_rate_per_s = 0;

    [[nodiscard]] std::uint64_t pending() const noexcept {
        const auto done = sent + failed + suppressed;
        return targeted > done ? targeted - done : 0;
    }
    [[nodiscard]] bool done() const noexcept { return shards_expanding == 0 && pending() == 0; }
    [[nodiscard]] double eta_seconds(std::int64_t now_mono_ns) const noexcept;
    [[nodiscard]] std::string to_json(std::int64_t now_mono_ns) const;
};

class status_board {
  public:
    explicit status_board(std::size_t capacity = 10000) : capacity_(capacity) {}

    /// A broadcast reaches outbound delivery on `shards` shards.
    void started(const std::string& id, const std::string& tenant, const std::string& audience,
                 std::uint32_t shards, double configured_rate_per_s);
    /// One shard listed `n` recipients for it.
    void expanded(const std::string& id, std::uint64_t n);
    void sent(const std::string& id);
    void failed(const std::string& id);
    void suppressed(const std::string& id, const std::string& reason);
    /// The live channels finished it, having written to `connections`.
    void live_delivered(const std::string& id, const std::string& tenant, const std::string& audience,
                        std::uint64_t connections);

    [[nodiscard]] std::optional<broadcast_progress> get(const std::string& id) const;

  private:
    broadcast_progress& entry(const std::string& id);  // mutex held
    bool evict_one();                                  // mutex held; false: nothing finished in sight

    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::unordered_map<std::string, broadcast_progress> entries_;
    std::deque<std::string> order_;
};

}  // namespace herald::outbound
