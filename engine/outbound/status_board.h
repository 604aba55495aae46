// Where each broadcast stands, for `GET /v1/broadcasts/{id}` and `herald
// status ID`: how many outbound recipients were targeted, sent, failed,
// suppressed (and why) and are still pending, with an ETA from the rate the
// broadcast is actually achieving (or, before the first send, the configured
// rate). Outbound shards report each final outcome here — a mutex per
// outcome is nothing next to an HTTP round trip, and the live path never
// touches it. Keeps the most recent `capacity` finished broadcasts and
// every running one. Announcement ids are unique per tenant only, so a
// broadcast is known by tenant and id; `matching(id)` finds it by id alone.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace herald::outbound {

struct broadcast_progress {
    std::string id;
    std::string tenant;
    std::string audience;
    std::uint64_t targeted = 0;
    std::uint64_t sent = 0;
    std::uint64_t failed = 0;
    std::uint64_t suppressed = 0;
    std::uint64_t unknown = 0;  // interrupted by a crash on an at-most-once channel
    std::map<std::string, std::uint64_t> suppressed_reasons;
    std::uint32_t shards_expanding = 0;  // shards that have not listed their recipients yet
    // This instance's outbound consumer has taken it (even if nobody behind a
    // gateway is in its audience). The live side reports independently and
    // may come first; another instance may own the outbound part.
    bool outbound_known = false;
    std::uint64_t live_connections = 0;
    bool live_done = false;
    /// A cancel record stopped it (its remaining recipients get "cancelled").
    bool cancelled = false;
    std::int64_t started_mono_ns = 0;
    std::int64_t first_sent_mono_ns = 0;
    std::int64_t last_outcome_mono_ns = 0;
    double configured_rate_per_s = 0;

    [[nodiscard]] std::uint64_t pending() const noexcept {
        const auto done = sent + failed + suppressed + unknown;
        return targeted > done ? targeted - done : 0;
    }
    [[nodiscard]] bool done() const noexcept {
        return outbound_known && shards_expanding == 0 && pending() == 0;
    }
    [[nodiscard]] double eta_seconds(std::int64_t now_mono_ns) const noexcept;
    /// The answer of GET /v1/broadcasts/{id}.
    [[nodiscard]] boost::json::object to_json(std::int64_t now_mono_ns) const;
};

class status_board {
  public:
    explicit status_board(std::size_t capacity = 10000) : capacity_(capacity) {}

    /// A broadcast reaches outbound delivery on `shards` shards (0: this
    /// instance's outbound consumer took it, but nobody is to be reached).
    void started(const std::string& id, const std::string& tenant, const std::string& audience,
                 std::uint32_t shards, double configured_rate_per_s);
    /// One shard listed `n` recipients for it.
    void expanded(const std::string& id, const std::string& tenant, std::uint64_t n);
    void sent(const std::string& id, const std::string& tenant);
    void failed(const std::string& id, const std::string& tenant);
    void suppressed(const std::string& id, const std::string& tenant, const std::string& reason);
    /// A cancel record stopped it; false when the board does not know it.
    bool cancel(const std::string& id, const std::string& tenant);
    /// The same for one the board may not know yet (a scheduled live one
    /// cancelled before its release): shown as cancelled from now on.
    void cancelled(const std::string& id, const std::string& tenant, const std::string& audience);
    /// A crash interrupted this delivery; it is not sent again (OUTCOME_UNKNOWN).
    void unknown(const std::string& id, const std::string& tenant);
    /// The live channels finished it, having written to `connections`.
    void live_delivered(const std::string& id, const std::string& tenant, const std::string& audience,
                        std::uint64_t connections);

    [[nodiscard]] std::optional<broadcast_progress> get(const std::string& id,
                                                        const std::string& tenant) const;
    /// Every tenant's broadcast with this announcement id.
    [[nodiscard]] std::vector<broadcast_progress> matching(const std::string& id) const;

  private:
    broadcast_progress& entry(const std::string& id, const std::string& tenant);  // mutex held
    bool evict_one();  // mutex held; false: nothing finished in sight

    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::unordered_map<std::string, broadcast_progress> entries_;  // by tenant \x1f id
    std::unordered_multimap<std::string, std::string> keys_by_id_;
    std::deque<std::string> order_;
};

}  // namespace herald::outbound
