#include "channels/per_ip_limiter.h"

#include <algorithm>
#include <string_view>

namespace herald::channels {

std::size_t per_ip_limiter::key_hash::operator()(const std::array<std::uint8_t, 16>& k) const noexcept {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

per_ip_limiter::per_ip_limiter(std::uint32_t max_connections, std::uint32_t connects_per_s,
                               std::vector<security::ip_network> exempt)
    : max_connections_(max_connections), connects_per_s_(connects_per_s), exempt_(std::move(exempt)) {}

per_ip_limiter::verdict per_ip_limiter::admit(const security::ip_address& ip, base::mono_time now) {
    if (std::any_of(exempt_.begin(), exempt_.end(),
                    [&](const security::ip_network& n) { return n.contains(ip); }))
        return verdict::exempt;
    std::lock_guard lock(mutex_);
    if (++admits_ % 4096 == 0) {
        // Idle addresses whose budget has refilled by now: forget them, so
        // the map holds only who is connected or was busy a moment ago.
        std::erase_if(by_ip_, [&](const auto& entry) {
            return entry.second.open == 0 && now - entry.second.refilled > std::chrono::seconds(1);
        });
    }
    const auto emplaced = by_ip_.try_emplace(ip.bytes);
    const auto it = emplaced.first;
    const bool created = emplaced.second;
    state& s = it->second;
    if (created) {
        s.tokens = connects_per_s_;
        s.refilled = now;
    } else {
        const double seconds = std::chrono::duration<double>(now - s.refilled).count();
        s.tokens = std::min(connects_per_s_, s.tokens + std::max(0.0, seconds) * connects_per_s_);
        s.refilled = std::max(s.refilled, now);
    }
    const auto forget_if_idle = [&] {
        if (s.open == 0 && created)
            by_ip_.erase(it);
    };
    if (s.open >= max_connections_) {
        forget_if_idle();
        return verdict::too_many_connections;
    }
    if (s.tokens < 1.0) {
        forget_if_idle();
        return verdict::too_many_connects;
    }
    s.tokens -= 1.0;
    ++s.open;
    return verdict::counted;
}

void per_ip_limiter::release(const security::ip_address& ip) {
    std::lock_guard lock(mutex_);
    const auto it = by_ip_.find(ip.bytes);
    if (it != by_ip_.end() && it->second.open > 0)
        --it->second.open;
    // An address with nothing open stays until its connect budget has
    // refilled (admit() sweeps those), or a connect-and-close loop would
    // start each round with a full budget.
}

std::size_t per_ip_limiter::tracked() const {
    std::lock_guard lock(mutex_);
    return by_ip_.size();
}

}  // namespace herald::channels
