#include "app/overload.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/clock.h"

namespace herald::app {

overload_monitor::overload_monitor(metrics::registry& metrics, std::uint64_t memory_limit_bytes)
    : rss_gauge_(prometheus::BuildGauge()
                     .Name("herald_memory_rss_bytes")
                     .Help("Resident memory of heraldd, as checked against memory_limit_mb")
                     .Register(metrics.prom())
                     .Add({})),
      limit_(static_cast<std::int64_t>(memory_limit_bytes)),
      page_size_(::sysconf(_SC_PAGESIZE)) {}

bool overload_monitor::memory_high(bool& high) {
    const std::int64_t now = base::mono_now_ns();
    if (std::int64_t due = next_check_ns_.load(std::memory_order_relaxed);
        now >= due && next_check_ns_.compare_exchange_strong(due, now + 50'000'000)) {
        long pages_total = 0;
        long pages_resident = 0;
        if (FILE* f = std::fopen("/proc/self/statm", "r")) {
            if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
                pages_resident = 0;
            std::fclose(f);
        }
        rss_bytes_.store(static_cast<std::int64_t>(pages_resident) * page_size_, std::memory_order_relaxed);
        rss_gauge_.Set(static_cast<double>(rss_bytes_.load(std::memory_order_relaxed)));
    }
    const std::int64_t rss = rss_bytes_.load(std::memory_order_relaxed);
    if (limit_ > 0 && rss > limit_)
        high = true;
    else if (limit_ == 0 || rss < limit_ / 10 * 9)
        high = false;
    return high;
}

std::function<bool()> overload_monitor::live(const std::vector<fanout::shard*>& shards,
                                             std::uint32_t queue_capacity) {
    return [this, shards, queue_capacity, overloaded = false, memory = false]() mutable {
        const bool over_memory = memory_high(memory);
        std::uint32_t deepest = 0;
        for (const auto* s : shards) deepest = std::max(deepest, s->queue_depth());
        if (!overloaded && (deepest >= queue_capacity / 4 * 3 || over_memory))
            overloaded = true;
        else if (overloaded && deepest <= queue_capacity / 4 && !over_memory)
            overloaded = false;
        return overloaded;
    };
}

std::function<bool()> overload_monitor::outbound(const outbound::outbound_router& router,
                                                 std::uint32_t max_waiting) {
    return [this, &router, max_waiting, overloaded = false, memory = false]() mutable {
        const bool over_memory = memory_high(memory);
        const std::uint64_t waiting = router.waiting();
        if (!overloaded && (waiting >= max_waiting || over_memory))
            overloaded = true;
        else if (overloaded && waiting <= max_waiting / 4 && !over_memory)
            overloaded = false;
        return overloaded;
    };
}

}  // namespace herald::app
