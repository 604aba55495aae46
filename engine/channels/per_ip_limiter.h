// Per-address limits on the client port: at most `max_connections` open
// connections and `connects_per_s` new ones per second (a token bucket, burst
// one second's worth) from one IP address, so one misbehaving host cannot
// take every descriptor or every accept. Addresses inside an exempt network
// (default loopback: a local reverse proxy or load generator speaks for many
// clients) are not limited. Shared by every shard's acceptor: touched once
// per connect and once per close, under a mutex, never per delivery.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "security/address_guard.h"

namespace herald::channels {

class per_ip_limiter {
  public:
    enum class verdict : std::uint8_t { counted, exempt, too_many_connections, too_many_connects };

    per_ip_limiter(std::uint32_t max_connections, std::uint32_t connects_per_s,
                   std::vector<security::ip_network> exempt);

    /// A new connection from `ip`: counted (release() it when it closes),
    /// exempt (nothing to release) or refused (nothing to release).
    verdict admit(const security::ip_address& ip, base::mono_time now);
    void release(const security::ip_address& ip);

    /// Addresses with state kept (for tests and the gauge).
    [[nodiscard]] std::size_t tracked() const;

  private:
    struct state {
        std::uint32_t open = 0;
        double tokens = 0;
        base::mono_time refilled;
    };
    struct key_hash {
        std::size_t operator()(const std::array<std::uint8_t, 16>& k) const noexcept;
    };

    const std::uint32_t max_connections_;
    const double connects_per_s_;
    const std::vector<security::ip_network> exempt_;
    mutable std::mutex mutex_;
    std::uint64_t admits_ = 0;
    std::unordered_map<std::array<std::uint8_t, 16>, state, key_hash> by_ip_;
};

}  // namespace herald::channels
