// Invariants that are checked, not only written down.
//
// HERALD_ASSERT(cond): a condition the code relies on and a test should
// catch (a shard-thread-only method called from another thread, a frame
// hold released twice). With HERALD_ASSERTIONS (on in the default build and
// in every test; a release package may turn it off) a failure aborts with
// file:line and the condition; otherwise it compiles to nothing. Keep it off
// the per-recipient path.
//
// HERALD_BUG(cond, where): a "can't happen" that production must survive
// (Envoy's ENVOY_BUG): in a debug build (no NDEBUG) it aborts like an
// assertion; in a release build it is logged and counted in
// herald_internal_errors_total{where}, and the code goes on. `where` is a
// short stable name ("shard.member_index"), used as the metric label.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace herald::base {

/// Aborts with the failed condition and its place.
[[noreturn, gnu::cold]] void assertion_failed(const char* condition, const char* file, int line) noexcept;

/// Counts and logs an internal error (release) or aborts (debug).
[[gnu::cold]] void report_bug(const char* where, const char* condition, const char* file, int line) noexcept;

/// Internal errors reported so far, by `where` (for the metrics exporter).
[[nodiscard]] std::vector<std::pair<std::string, std::uint64_t>> internal_errors();

}  // namespace herald::base

#if defined(HERALD_ASSERTIONS) && HERALD_ASSERTIONS
#define HERALD_ASSERT(cond)                                              \
    do {                                                                 \
        if (__builtin_expect(!(cond), 0))                                \
            ::herald::base::assertion_failed(#cond, __FILE__, __LINE__); \
    } while (false)
#else
#define HERALD_ASSERT(cond) \
    do {                    \
        (void)sizeof(cond); \
    } while (false)
#endif

#define HERALD_BUG(cond, where)                                           \
    do {                                                                  \
        if (__builtin_expect(!(cond), 0))                                 \
            ::herald::base::report_bug(where, #cond, __FILE__, __LINE__); \
    } while (false)
