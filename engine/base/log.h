// Logging for a daemon that must stay quiet on the hot path: one line per
// event to stderr with a UTC timestamp, level and subsystem, formatted with
// std::format-like concatenation only when the level is enabled.
#pragma once

#include <atomic>
#include <sstream>
#include <string_view>

namespace herald::base {

enum class log_level : int { debug = 0, info = 1, warn = 2, error = 3 };

/// Process-wide minimum level; set once at start-up from config.
void set_log_level(log_level level) noexcept;
[[nodiscard]] log_level current_log_level() noexcept;
[[nodiscard]] bool parse_log_level(std::string_view text, log_level& out) noexcept;

/// Writes one complete line atomically (single write(2)).
void write_log_line(log_level level, std::string_view subsystem, std::string_view message);

template <class... Args>
void log(log_level level, std::string_view subsystem, const Args&... args) {
    if (static_cast<int>(level) < static_cast<int>(current_log_level())) {
        return;
    }
    std::ostringstream out;
    (out << ... << args);
    write_log_line(level, subsystem, out.str());
}

}  // namespace herald::base

#define HERALD_LOG_DEBUG(sub, ...) ::herald::base::log(::herald::base::log_level::debug, sub, __VA_ARGS__)
#define HERALD_LOG_INFO(sub, ...) ::herald::base::log(::herald::base::log_level::info, sub, __VA_ARGS__)
#define HERALD_LOG_WARN(sub, ...) ::herald::base::log(::herald::base::log_level::warn, sub, __VA_ARGS__)
#define HERALD_LOG_ERROR(sub, ...) ::herald::base::log(::herald::base::log_level::error, sub, __VA_ARGS__)
