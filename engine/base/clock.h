// Two clocks, kept apart on purpose: wall time (what producers write in
// deliver_at / expires_at, comparable across machines) and monotonic time
// (what latency and spread are measured in, immune to NTP steps). Each has
// its own time-point type, so a wall instant handed where a monotonic one is
// expected does not compile. A release instant is converted from wall to
// monotonic once, at dispatch.
#pragma once

#include <chrono>
#include <cstdint>

namespace herald::base {

using wall_clock = std::chrono::system_clock;
using mono_clock = std::chrono::steady_clock;

/// An instant on the monotonic clock (nanoseconds; only differences mean anything).
using mono_time = std::chrono::time_point<mono_clock, std::chrono::nanoseconds>;
/// An instant on the wall clock (nanoseconds since the Unix epoch).
using wall_time = std::chrono::time_point<wall_clock, std::chrono::nanoseconds>;

[[nodiscard]] inline mono_time mono_now() noexcept {
    return std::chrono::time_point_cast<std::chrono::nanoseconds>(mono_clock::now());
}
[[nodiscard]] inline wall_time wall_now() noexcept {
    return std::chrono::time_point_cast<std::chrono::nanoseconds>(wall_clock::now());
}

/// Nanoseconds since the Unix epoch.
[[nodiscard]] inline std::int64_t wall_now_ns() noexcept {
    return wall_now().time_since_epoch().count();
}

/// Monotonic nanoseconds, only meaningful as differences.
[[nodiscard]] inline std::int64_t mono_now_ns() noexcept {
    return mono_now().time_since_epoch().count();
}

/// Maps a wall-clock instant to the monotonic clock, as of now.
[[nodiscard]] inline mono_time to_mono(wall_time wall) noexcept {
    return mono_now() + (wall - wall_now());
}
[[nodiscard]] inline std::int64_t wall_to_mono_ns(std::int64_t wall_ns) noexcept {
    return mono_now_ns() + (wall_ns - wall_now_ns());
}

/// A wall instant from nanoseconds since the epoch, and back.
[[nodiscard]] constexpr wall_time wall_from_ns(std::int64_t ns) noexcept {
    return wall_time(std::chrono::nanoseconds(ns));
}
[[nodiscard]] constexpr mono_time mono_from_ns(std::int64_t ns) noexcept {
    return mono_time(std::chrono::nanoseconds(ns));
}
[[nodiscard]] constexpr std::int64_t to_ns(wall_time t) noexcept {
    return t.time_since_epoch().count();
}
[[nodiscard]] constexpr std::int64_t to_ns(mono_time t) noexcept {
    return t.time_since_epoch().count();
}

}  // namespace herald::base
