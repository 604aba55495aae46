#include "channels/per_ip_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace herald::channels {
namespace {

using verdict = per_ip_limiter::verdict;
using namespace std::chrono_literals;

security::ip_address ip(std::string_view text) {
    const auto a = security::ip_address::parse(text);
    if (!a)
        ADD_FAILURE() << "does not parse: " << text;
    return a.value_or(security::ip_address{});
}

std::vector<security::ip_network> networks(std::initializer_list<const char*> list) {
    std::vector<security::ip_network> out;
    for (const char* n : list) out.push_back(security::ip_network::parse(n).value());
    return out;
}

const base::mono_time t0 = base::mono_from_ns(1'000'000'000'000);

const char* name(verdict v) {
    switch (v) {
        case verdict::counted:
            return "counted";
        case verdict::exempt:
            return "exempt";
        case verdict::too_many_connections:
            return "too_many_connections";
        case verdict::too_many_connects:
            return "too_many_connects";
    }
    return "?";
}

#define EXPECT_VERDICT(expr, want) EXPECT_STREQ(name(expr), name(want))

TEST(PerIpLimiter, CountsUpToMaxConnectionsThenRefuses) {
    per_ip_limiter lim(3, 1000, {});
    const auto a = ip("203.0.113.7");
    EXPECT_VERDICT(lim.admit(a, t0), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 1ms), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 2ms), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 3ms), verdict::too_many_connections);
    EXPECT_VERDICT(lim.admit(a, t0 + 2s), verdict::too_many_connections);  // time does not help
    EXPECT_EQ(lim.tracked(), 1u);
    // Another address has its own count.
    EXPECT_VERDICT(lim.admit(ip("203.0.113.8"), t0 + 3ms), verdict::counted);
}

TEST(PerIpLimiter, ReleaseFreesOneConnection) {
    per_ip_limiter lim(2, 1000, {});
    const auto a = ip("198.51.100.1");
    ASSERT_EQ(lim.admit(a, t0), verdict::counted);
    ASSERT_EQ(lim.admit(a, t0), verdict::counted);
    ASSERT_EQ(lim.admit(a, t0), verdict::too_many_connections);
    lim.release(a);
    EXPECT_VERDICT(lim.admit(a, t0 + 1ms), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 2ms), verdict::too_many_connections);
    lim.release(a);
    lim.release(a);
    EXPECT_VERDICT(lim.admit(a, t0 + 3ms), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 4ms), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 5ms), verdict::too_many_connections);
}

TEST(PerIpLimiter, ReleasingAnUnknownAddressIsHarmless) {
    per_ip_limiter lim(1, 10, {});
    lim.release(ip("192.0.2.1"));
    EXPECT_EQ(lim.tracked(), 0u);
    const auto a = ip("192.0.2.1");
    EXPECT_VERDICT(lim.admit(a, t0), verdict::counted);
    lim.release(a);
    lim.release(a);  // one too many: must not make room for two
    EXPECT_VERDICT(lim.admit(a, t0 + 1s), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 1s), verdict::too_many_connections);

    // Also while the address is still tracked (two connects used its budget).
    per_ip_limiter two(2, 10, {});
    const auto b = ip("192.0.2.2");
    ASSERT_EQ(two.admit(b, t0), verdict::counted);
    ASSERT_EQ(two.admit(b, t0), verdict::counted);
    two.release(b);
    two.release(b);
    two.release(b);  // one too many: the count must not wrap around
    EXPECT_VERDICT(two.admit(b, t0 + 1s), verdict::counted);
    EXPECT_VERDICT(two.admit(b, t0 + 1s), verdict::counted);
    EXPECT_VERDICT(two.admit(b, t0 + 1s), verdict::too_many_connections);
}

TEST(PerIpLimiter, ConnectsPerSecondBudget) {
    per_ip_limiter lim(1000, 3, {});
    const auto a = ip("192.0.2.10");
    EXPECT_VERDICT(lim.admit(a, t0), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0), verdict::too_many_connects);
    EXPECT_VERDICT(lim.admit(a, t0 + 100ms), verdict::too_many_connects);
    // A second later the budget has refilled (burst: one second's worth).
    EXPECT_VERDICT(lim.admit(a, t0 + 1s), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 1s), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 1s), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 1s), verdict::too_many_connects);
    // Another address is not affected.
    EXPECT_VERDICT(lim.admit(ip("192.0.2.11"), t0 + 1s), verdict::counted);
}

TEST(PerIpLimiter, BudgetRefillsGradually) {
    per_ip_limiter lim(1000, 2, {});
    const auto a = ip("192.0.2.20");
    ASSERT_EQ(lim.admit(a, t0), verdict::counted);
    ASSERT_EQ(lim.admit(a, t0), verdict::counted);
    ASSERT_EQ(lim.admit(a, t0), verdict::too_many_connects);
    EXPECT_VERDICT(lim.admit(a, t0 + 250ms), verdict::too_many_connects);  // half a token
    EXPECT_VERDICT(lim.admit(a, t0 + 500ms), verdict::counted);            // one token
    EXPECT_VERDICT(lim.admit(a, t0 + 500ms), verdict::too_many_connects);
    // The burst never exceeds one second's worth, however long the pause.
    EXPECT_VERDICT(lim.admit(a, t0 + 1h), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 1h), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0 + 1h), verdict::too_many_connects);
}

TEST(PerIpLimiter, ATimeGoingBackwardsGivesNoTokens) {
    per_ip_limiter lim(1000, 1, {});
    const auto a = ip("192.0.2.30");
    ASSERT_EQ(lim.admit(a, t0 + 10s), verdict::counted);
    EXPECT_VERDICT(lim.admit(a, t0), verdict::too_many_connects);
    EXPECT_VERDICT(lim.admit(a, t0 + 10s), verdict::too_many_connects);
    EXPECT_VERDICT(lim.admit(a, t0 + 11s), verdict::counted);
}

TEST(PerIpLimiter, ConnectRateHoldsForConnectionsThatCloseAtOnce) {
    // A host that connects and closes in a tight loop must still get at most
    // connects_per_s accepts per second: that is what the budget is for.
    per_ip_limiter lim(1000, 3, {});
    const auto a = ip("192.0.2.40");
    int counted = 0;
    for (int i = 0; i < 10; ++i) {
        const auto v = lim.admit(a, t0);
        if (v == verdict::counted) {
            ++counted;
            lim.release(a);
        }
    }
    EXPECT_EQ(counted, 3) << "connect+close cycles in the same instant admitted with connects_per_s=3";
    // A second later, three more.
    for (int i = 0; i < 10; ++i) {
        if (lim.admit(a, t0 + 1s) == verdict::counted) {
            ++counted;
            lim.release(a);
        }
    }
    EXPECT_EQ(counted, 6);
}

TEST(PerIpLimiter, ExemptNetworksAreNeverCounted) {
    per_ip_limiter lim(1, 1, networks({"127.0.0.0/8", "::1/128", "10.9.0.0/16"}));
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(lim.admit(ip("127.0.0.1"), t0), verdict::exempt);
        ASSERT_EQ(lim.admit(ip("::1"), t0), verdict::exempt);
        ASSERT_EQ(lim.admit(ip("10.9.3.4"), t0), verdict::exempt);
    }
    EXPECT_EQ(lim.tracked(), 0u);
    lim.release(ip("127.0.0.1"));  // nothing to release: harmless
    EXPECT_EQ(lim.tracked(), 0u);
    // Just outside an exempt network the limits hold.
    const auto outside = ip("10.10.0.1");
    EXPECT_VERDICT(lim.admit(outside, t0), verdict::counted);
    EXPECT_VERDICT(lim.admit(outside, t0), verdict::too_many_connections);
    EXPECT_EQ(lim.tracked(), 1u);
}

TEST(PerIpLimiter, Ipv6AddressesAreIndependentOfIpv4) {
    per_ip_limiter lim(1, 1000, {});
    EXPECT_VERDICT(lim.admit(ip("192.0.2.1"), t0), verdict::counted);
    EXPECT_VERDICT(lim.admit(ip("192.0.2.1"), t0), verdict::too_many_connections);
    EXPECT_VERDICT(lim.admit(ip("2001:db8::1"), t0), verdict::counted);
    EXPECT_VERDICT(lim.admit(ip("2001:db8::1"), t0), verdict::too_many_connections);
    EXPECT_VERDICT(lim.admit(ip("2001:db8::2"), t0), verdict::counted);
    // ::c000:201 (IPv4-compatible form of 192.0.2.1) is another key than the mapped form.
    EXPECT_VERDICT(lim.admit(ip("::c000:201"), t0), verdict::counted);
    EXPECT_EQ(lim.tracked(), 4u);
}

TEST(PerIpLimiter, MappedIpv6FormIsTheSameHostAsIpv4) {
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: the same host.
    per_ip_limiter lim(1, 1000, {});
    EXPECT_VERDICT(lim.admit(ip("192.0.2.1"), t0), verdict::counted);
    EXPECT_VERDICT(lim.admit(ip("::ffff:192.0.2.1"), t0), verdict::too_many_connections);
}

/// Makes `n` admits (each counted one released again) from a filler
/// address at `at`, to bring the limiter's admit count to a sweep.
void filler_admits(per_ip_limiter& lim, int n, base::mono_time at) {
    const auto filler = ip("198.18.0.1");
    for (int i = 0; i < n; ++i) {
        if (lim.admit(filler, at) == verdict::counted)
            lim.release(filler);
    }
}

// The limiter sweeps its map on every 4096th admit (not exempt): idle
// addresses whose connect budget has refilled (idle over a second) go.
constexpr int sweep_every = 4096;

TEST(PerIpLimiter, TrackedDropsIdleAddressesAfterRelease) {
    per_ip_limiter lim(10, 100, {});
    const auto a = ip("192.0.2.50");
    const auto b = ip("2001:db8::50");
    ASSERT_EQ(lim.admit(a, t0), verdict::counted);
    ASSERT_EQ(lim.admit(b, t0), verdict::counted);
    EXPECT_EQ(lim.tracked(), 2u);
    lim.release(a);
    lim.release(b);
    EXPECT_LE(lim.tracked(), 2u);
    filler_admits(lim, sweep_every - 3, t0);  // admits 3 .. 4095
    const auto last = ip("203.0.113.200");
    ASSERT_EQ(lim.admit(last, t0 + 2s), verdict::counted);  // admit 4096 sweeps first
    EXPECT_EQ(lim.tracked(), 1u) << "only `last` should be left";
}

TEST(PerIpLimiter, SweepKeepsConnectedAddressesAndUnrefilledBudgets) {
    per_ip_limiter lim(1000, 2, {});
    const auto connected = ip("192.0.2.81");
    ASSERT_EQ(lim.admit(connected, t0), verdict::counted);  // stays open
    const auto busy = ip("192.0.2.80");                     // spent its budget, closed
    ASSERT_EQ(lim.admit(busy, t0 + 1500ms), verdict::counted);
    ASSERT_EQ(lim.admit(busy, t0 + 1500ms), verdict::counted);
    lim.release(busy);
    lim.release(busy);
    filler_admits(lim, sweep_every - 4, t0);  // admits 4 .. 4095
    const auto last = ip("203.0.113.201");
    ASSERT_EQ(lim.admit(last, t0 + 2s), verdict::counted);  // admit 4096 sweeps first
    EXPECT_EQ(lim.tracked(), 3u) << "`connected`, `busy` (idle half a second) and `last`";
    // `busy` kept its half-refilled budget across the sweep: one connect, not two.
    EXPECT_VERDICT(lim.admit(busy, t0 + 2s), verdict::counted);
    EXPECT_VERDICT(lim.admit(busy, t0 + 2s), verdict::too_many_connects);
    // And `connected` still counts against max_connections.
    per_ip_limiter one(1, 100, {});
    ASSERT_EQ(one.admit(connected, t0), verdict::counted);
    filler_admits(one, sweep_every - 2, t0);
    EXPECT_VERDICT(one.admit(connected, t0 + 10s), verdict::too_many_connections);
}

TEST(PerIpLimiter, AnAddressWithOpenConnectionsStaysTracked) {
    per_ip_limiter lim(10, 100, {});
    const auto a = ip("192.0.2.60");
    ASSERT_EQ(lim.admit(a, t0), verdict::counted);
    ASSERT_EQ(lim.admit(a, t0), verdict::counted);
    lim.release(a);
    EXPECT_EQ(lim.tracked(), 1u);
    // Its remaining connection is still counted against max_connections.
    per_ip_limiter one(1, 100, {});
    ASSERT_EQ(one.admit(a, t0), verdict::counted);
    EXPECT_VERDICT(one.admit(a, t0 + 5s), verdict::too_many_connections);
    EXPECT_EQ(one.tracked(), 1u);
}

TEST(PerIpLimiter, RefusedNewAddressesAreNotTracked) {
    per_ip_limiter lim(0, 100, {});
    EXPECT_VERDICT(lim.admit(ip("192.0.2.70"), t0), verdict::too_many_connections);
    EXPECT_VERDICT(lim.admit(ip("192.0.2.71"), t0), verdict::too_many_connections);
    EXPECT_EQ(lim.tracked(), 0u);
}

}  // namespace
}  // namespace herald::channels
