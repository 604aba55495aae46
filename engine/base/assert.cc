#include "base/assert.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "base/log.h"

namespace herald::base {
namespace {

std::mutex g_bugs_mutex;
std::map<std::string, std::uint64_t, std::less<>>& bugs() {
    static std::map<std::string, std::uint64_t, std::less<>> counts;
    return counts;
}

}  // namespace

void assertion_failed(const char* condition, const char* file, int line) noexcept {
    std::fprintf(stderr, "heraldd: assertion failed at %s:%d: %s\n", file, line, condition);
    std::fflush(stderr);
    std::abort();
}

void report_bug(const char* where, const char* condition, const char* file, int line) noexcept {
#ifndef NDEBUG
    assertion_failed(condition, file, line);
#else
    {
        std::lock_guard lock(g_bugs_mutex);
        ++bugs()[where];
    }
    try {
        HERALD_LOG_ERROR("bug", where, ": internal error at ", file, ":", line, ": ", condition,
                         " (counted in herald_internal_errors_total; please report it)");
    } catch (...) {
        // Logging allocates; an internal error must not become a crash.
    }
#endif
}

std::vector<std::pair<std::string, std::uint64_t>> internal_errors() {
    std::lock_guard lock(g_bugs_mutex);
    return {bugs().begin(), bugs().end()};
}

}  // namespace herald::base
