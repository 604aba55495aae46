// When to try an outbound delivery again, and when to stop. Exponential
// backoff with full jitter (a random wait in [0, min(cap, base * 2^n)]), so
// that thousands of recipients refused together do not return together; a
// gateway's Retry-After is a floor; WhatsApp's pair limit (131056) waits 4^n
// seconds as Meta documents. Bounded by attempts and by age.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

namespace herald::outbound {

struct retry_limits {
    std::uint32_t max_attempts = 8;
    std::int64_t base_ns = 500'000'000;          // 0.5 s
    std::int64_t cap_ns = 60'000'000'000;        // 1 min
    std::int64_t max_age_ns = 3600'000'000'000;  // 1 h from the release instant
};

/// Wait before attempt `attempts + 1`, after `attempts` failed ones (>= 1).
/// `retry_after_ns` > 0 is the gateway's Retry-After and bounds the wait from below.
template <class Rng>
[[nodiscard]] std::int64_t backoff_ns(const retry_limits& lim, std::uint32_t attempts,
                                      std::int64_t retry_after_ns, Rng& rng) {
    const std::uint32_t shift = std::min<std::uint32_t>(attempts == 0 ? 0 : attempts - 1, 30);
    const double ceiling =
        std::min(static_cast<double>(lim.cap_ns), static_cast<double>(lim.base_ns) * (1u << shift));
    std::uniform_real_distribution<double> jitter(0.0, ceiling);
    return std::max(static_cast<std::int64_t>(jitter(rng)), retry_after_ns);
}

/// WhatsApp pair-limit wait: 4^n seconds for the n-th refusal (n >= 1), capped at 1 h.
[[nodiscard]] inline std::int64_t pair_limit_wait_ns(std::uint32_t refusals) noexcept {
    std::int64_t s = 1;
    for (std::uint32_t i = 0; i < refusals && s < 3600; ++i) s *= 4;
    return std::min<std::int64_t>(s, 3600) * 1'000'000'000;
}

}  // namespace herald::outbound
