// Two clocks, kept apart on purpose: wall time (what producers write in
// deliver_at / expires_at, comparable across machines) and monotonic time
// (what latency and spread are measured in, immune to NTP steps). A release
// instant is converted from wall to monotonic once, at dispatch.
#pragma once

#include <chrono>
#include <cstdint>

namespace herald::base {

using wall_clock = std::chrono::system_clock;
using mono_clock = std::chrono::steady_clock;

/// Nanoseconds since the Unix epoch.
[[nodiscard]] inline std::int64_t wall_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(wall_clock::now().time_since_epoch()).count();
}

/// Monotonic nanoseconds, only meaningful as differences.
[[nodiscard]] inline std::int64_t mono_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(mono_clock::now().time_since_epoch()).count();
}

/// Maps a wall-clock instant to the monotonic clock, as of now.
[[nodiscard]] inline std::int64_t wall_to_mono_ns(std::int64_t wall_ns) noexcept {
    return mono_now_ns() + (wall_ns - wall_now_ns());
}

}  // namespace herald::base
