#include "outbound/status_board.h"

#include <algorithm>
#include <cmath>

#include "base/clock.h"

namespace herald::outbound {
namespace {

std::string key_of(const std::string& tenant, const std::string& id) {
    return tenant + '\x1f' + id;
}

}  // namespace

double broadcast_progress::eta_seconds(std::int64_t now_mono_ns) const noexcept {
    const auto left = pending();
    if (left == 0)
        return 0;
    double rate = configured_rate_per_s;
    const auto done = sent + failed + suppressed + unknown;
    if (first_sent_mono_ns != 0 && now_mono_ns > started_mono_ns + 1'000'000'000 && done > 0) {
        rate = static_cast<double>(done) / (static_cast<double>(now_mono_ns - started_mono_ns) * 1e-9);
    }
    return rate > 0 ? static_cast<double>(left) / rate : -1;
}

boost::json::object broadcast_progress::to_json(std::int64_t now_mono_ns) const {
    boost::json::object reasons;
    for (const auto& [k, v] : suppressed_reasons) reasons[k] = v;
    const double eta = eta_seconds(now_mono_ns);
    return {{"id", id},
            {"tenant", tenant},
            {"audience", audience},
            {"state", cancelled         ? "cancelled"
                      : !outbound_known ? "live_only"
                      : done()          ? "done"
                                        : "running"},
            {"targeted", targeted},
            {"sent", sent},
            {"failed", failed},
            {"suppressed", suppressed},
            {"unknown", unknown},
            {"pending", pending()},
            {"suppressed_reasons", std::move(reasons)},
            // Whole seconds (-1: unknown): Boost.JSON would print a double as 1.25E1.
            {"eta_seconds", eta < 0 ? std::int64_t{-1} : static_cast<std::int64_t>(std::ceil(eta))},
            {"live", {{"connections", live_connections}, {"done", live_done}}}};
}

broadcast_progress& status_board::entry(const std::string& id, const std::string& tenant) {
    const std::string key = key_of(tenant, id);
    if (const auto known = entries_.find(key); known != entries_.end())
        return known->second;
    // Room first: the new entry (nothing listed yet) would look finished.
    while (order_.size() >= capacity_ && evict_one()) {
    }
    auto& e = entries_[key];
    e.id = id;
    e.tenant = tenant;
    e.started_mono_ns = base::mono_now_ns();
    keys_by_id_.emplace(id, key);
    order_.push_back(key);
    return e;
}

bool status_board::evict_one() {
    // The oldest finished broadcast goes. A running one stays however old it
    // is: the checkpoint flusher reads a broadcast missing from the board as
    // finished and would drop its crash-safety rows. Running ones met on the
    // way move to the back, so the next call starts past them and the board
    // stays at its capacity whatever runs.
    constexpr int max_scan = 64;
    for (int scanned = 0; scanned < max_scan && !order_.empty(); ++scanned) {
        std::string key = std::move(order_.front());
        order_.pop_front();
        const auto e = entries_.find(key);
        if (e == entries_.end())
            continue;
        // Known only from the live side: nothing outbound to keep it for.
        if (e->second.done() || !e->second.outbound_known) {
            for (auto [k, end] = keys_by_id_.equal_range(e->second.id); k != end; ++k) {
                if (k->second == key) {
                    keys_by_id_.erase(k);
                    break;
                }
            }
            entries_.erase(e);
            return true;
        }
        order_.push_back(std::move(key));
    }
    return false;
}

void status_board::started(const std::string& id, const std::string& tenant, const std::string& audience,
                           std::uint32_t shards, double configured_rate_per_s) {
    std::lock_guard lock(mutex_);
    auto& e = entry(id, tenant);
    e.audience = audience;
    e.outbound_known = true;
    e.shards_expanding += shards;
    e.configured_rate_per_s = configured_rate_per_s;
}

void status_board::expanded(const std::string& id, const std::string& tenant, std::uint64_t n) {
    std::lock_guard lock(mutex_);
    auto& e = entry(id, tenant);
    e.targeted += n;
    if (e.shards_expanding > 0)
        --e.shards_expanding;
}

void status_board::sent(const std::string& id, const std::string& tenant) {
    std::lock_guard lock(mutex_);
    auto& e = entry(id, tenant);
    ++e.sent;
    e.last_outcome_mono_ns = base::mono_now_ns();
    if (e.first_sent_mono_ns == 0)
        e.first_sent_mono_ns = e.last_outcome_mono_ns;
}

void status_board::failed(const std::string& id, const std::string& tenant) {
    std::lock_guard lock(mutex_);
    auto& e = entry(id, tenant);
    ++e.failed;
    e.last_outcome_mono_ns = base::mono_now_ns();
}

void status_board::suppressed(const std::string& id, const std::string& tenant, const std::string& reason) {
    std::lock_guard lock(mutex_);
    auto& e = entry(id, tenant);
    ++e.suppressed;
    ++e.suppressed_reasons[reason];
    e.last_outcome_mono_ns = base::mono_now_ns();
}

bool status_board::cancel(const std::string& id, const std::string& tenant) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(key_of(tenant, id));
    if (it == entries_.end())
        return false;
    it->second.cancelled = true;
    return true;
}

void status_board::cancelled(const std::string& id, const std::string& tenant, const std::string& audience) {
    std::lock_guard lock(mutex_);
    auto& e = entry(id, tenant);
    if (e.audience.empty())
        e.audience = audience;
    e.cancelled = true;
}

void status_board::unknown(const std::string& id, const std::string& tenant) {
    std::lock_guard lock(mutex_);
    auto& e = entry(id, tenant);
    ++e.unknown;
    e.last_outcome_mono_ns = base::mono_now_ns();
}

void status_board::live_delivered(const std::string& id, const std::string& tenant,
                                  const std::string& audience, std::uint64_t connections) {
    std::lock_guard lock(mutex_);
    auto& e = entry(id, tenant);
    if (e.audience.empty())
        e.audience = audience;
    e.live_connections = connections;
    e.live_done = true;
}

std::optional<broadcast_progress> status_board::get(const std::string& id, const std::string& tenant) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(key_of(tenant, id));
    if (it == entries_.end())
        return std::nullopt;
    return it->second;
}

std::vector<broadcast_progress> status_board::matching(const std::string& id) const {
    std::lock_guard lock(mutex_);
    std::vector<broadcast_progress> out;
    for (auto [k, end] = keys_by_id_.equal_range(id); k != end; ++k) {
        if (const auto e = entries_.find(k->second); e != entries_.end())
            out.push_back(e->second);
    }
    std::sort(out.begin(), out.end(),
              [](const broadcast_progress& a, const broadcast_progress& b) { return a.tenant < b.tenant; });
    return out;
}

}  // namespace herald::outbound
