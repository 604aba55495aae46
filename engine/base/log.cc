#include "base/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace herald::base {
namespace {
std::atomic<int> g_level{static_cast<int>(log_level::info)};

const char* level_name(log_level level) {
    switch (level) {
        case log_level::debug:
            return "debug";
        case log_level::info:
            return "info";
        case log_level::warn:
            return "warn";
        case log_level::error:
            return "error";
    }
    return "?";
}
}  // namespace

void set_log_level(log_level level) noexcept {
    g_level.store(static_cast<int>(level));
}

log_level current_log_level() noexcept {
    return static_cast<log_level>(g_level.load());
}

bool parse_log_level(std::string_view text, log_level& out) noexcept {
    if (text == "debug") {
        out = log_level::debug;
        return true;
    }
    if (text == "info") {
        out = log_level::info;
        return true;
    }
    if (text == "warn") {
        out = log_level::warn;
        return true;
    }
    if (text == "error") {
        out = log_level::error;
        return true;
    }
    return false;
}

void write_log_line(log_level level, std::string_view subsystem, std::string_view message) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t secs = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[64];  // roomy enough that -Wformat-truncation has nothing to say
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
    std::string line;
    line.reserve(message.size() + 64);
    line.append(stamp).append(" ").append(level_name(level)).append(" [").append(subsystem).append("] ");
    // Control characters are escaped: a value from outside (a header, a
    // record key) must not forge log lines or terminal escapes.
    for (const char c : message) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            static constexpr char hex[] = "0123456789abcdef";
            line.append("\\x").push_back(hex[u >> 4]);
            line.push_back(hex[u & 0xf]);
        } else {
            line.push_back(c);
        }
    }
    line.push_back('\n');
    // One write(2) so lines from different threads never interleave.
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace herald::base
