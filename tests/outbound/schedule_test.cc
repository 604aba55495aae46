// The scheduling decision, rule by rule and in its order of precedence, with
// injected monotonic and wall instants; and the priority order of a lane's queue.
#include "outbound/schedule.h"

#include <gtest/gtest.h>

#include <memory>
#include <queue>
#include <vector>

#include "herald/v1/announcement.pb.h"
#include "model/build.h"

namespace herald::outbound {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t s = 1'000'000'000;

constexpr std::int64_t now_ns = 5'000 * s;
const base::mono_time now = base::mono_from_ns(now_ns);
const base::wall_time wall = base::wall_from_ns(1'700'000'000 * s);

constexpr const char* audience = "lineup.rock-am-ring";

/// A real broadcast, released at `now` unless told otherwise.
std::shared_ptr<model::broadcast> make_broadcast(int priority = herald::v1::PRIORITY_NORMAL,
                                                 bool whatsapp_free_text = false) {
    herald::v1::Announcement a;
    a.set_id("a1");
    a.set_audience(audience);
    a.set_text("Headliner moved to 21:00");
    a.set_priority(static_cast<herald::v1::Priority>(priority));
    if (whatsapp_free_text)
        (*a.mutable_labels())["whatsapp.type"] = "text";
    auto b = model::build_broadcast(a, model::seq_no{7}, model::kafka_position{});
    b->release_at = now;  // time is injected: not the real clock build_broadcast read
    return b;
}

delivery make_delivery(model::broadcast_ptr b, std::uint64_t order = 0) {
    return delivery{std::move(b), 3, 1, 0, 0, order};
}

/// A live member of `audience` (and another audience, sorted), allowed a message now,
/// who wrote an hour ago.
recipient member() {
    recipient r;
    r.id = "r1";
    r.address = "+4917612345678";
    r.channel = herald::v1::CHANNEL_WHATSAPP;
    r.audiences = {"gates.rock-am-ring", audience};
    r.last_inbound = wall - 1h;
    r.next_allowed = now - 1s;
    r.generation = 1;
    r.alive = true;
    return r;
}

/// Buckets with one token at most, full at `now`.
token_bucket full_bucket() {
    return token_bucket(10, 1, now_ns);
}
token_bucket empty_bucket() {
    token_bucket b(10, 1, now_ns);
    EXPECT_TRUE(b.try_take(now_ns));
    return b;
}

struct fixture : ::testing::Test {
    std::shared_ptr<model::broadcast> b = make_broadcast();
    recipient r = member();
    token_bucket lane = full_bucket();
    token_bucket tenant = full_bucket();
    schedule_rules rules;

    decision run(lane_kind kind = lane_kind::webhook, bool superseded = false, bool others_waiting = false,
                 bool tenant_limited = true, const recipient* who = nullptr, bool forgotten = false) {
        const recipient* target = forgotten ? nullptr : (who != nullptr ? who : &r);
        return decide(make_delivery(b), target, kind, lane,
                      tenant_view{tenant_limited ? &tenant : nullptr, others_waiting}, superseded, rules, now,
                      wall);
    }
};

using Schedule = fixture;

// ---- each rule on its own ----------------------------------------------------

TEST_F(Schedule, AllClearSends) {
    const auto d = run();
    EXPECT_EQ(d.what, step::send);
    EXPECT_TRUE(d.reason.empty());
    EXPECT_FALSE(d.exhausted);
}

TEST_F(Schedule, NoTenantLimitSends) {
    const auto d = run(lane_kind::webhook, false, false, /*tenant_limited=*/false);
    EXPECT_EQ(d.what, step::send);
}

TEST_F(Schedule, ForgottenRecipientIsSuppressed) {
    const auto d = run(lane_kind::webhook, false, false, true, nullptr, /*forgotten=*/true);
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "forgotten");
    EXPECT_FALSE(d.exhausted);
}

TEST_F(Schedule, RecipientOutsideTheAudienceIsSuppressedAsOptedOut) {
    r.audiences.clear();  // opted out: a member of nothing
    auto d = run();
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "opted_out");

    r.audiences = {"gates.rock-am-ring"};  // still subscribed, but not to this audience any more
    d = run();
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "opted_out");
}

TEST_F(Schedule, ExpiredAnnouncementIsSuppressed) {
    b->expires_at = wall - 1s;
    auto d = run();
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "expired");

    b->expires_at = wall;  // expiring at this very instant: not delivered any more
    d = run();
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "expired");
}

TEST_F(Schedule, AnnouncementExpiringLaterOrNeverIsSent) {
    b->expires_at = wall + 1ns;
    EXPECT_EQ(run().what, step::send);
    b->expires_at = base::wall_time{};  // never
    EXPECT_EQ(run().what, step::send);
}

TEST_F(Schedule, SupersededAnnouncementIsSuppressed) {
    const auto d = run(lane_kind::webhook, /*superseded=*/true);
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "superseded");
}

TEST_F(Schedule, CancelledAnnouncementIsSuppressedEvenWhenEverythingElseWouldSend) {
    b->cancelled.store(true);
    auto d = run();
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "cancelled");
    EXPECT_FALSE(d.exhausted);
    // Before the pair limit and the buckets: a cancelled delivery never waits.
    r.next_allowed = now + 10s;
    lane = empty_bucket();
    d = run();
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "cancelled");
}

TEST_F(Schedule, TooLongAfterReleaseFailsExhausted) {
    rules.max_age = 1h;
    b->release_at = now - 1h - 1ns;
    const auto d = run();
    EXPECT_EQ(d.what, step::fail);
    EXPECT_EQ(d.reason, "too_old");
    EXPECT_TRUE(d.exhausted);
}

TEST_F(Schedule, JustWithinMaxAgeIsStillSent) {
    rules.max_age = 1h;
    b->release_at = now - 1h;
    EXPECT_EQ(run().what, step::send);
    b->release_at = now - 59min;
    EXPECT_EQ(run().what, step::send);
}

TEST_F(Schedule, MaxAgeComesFromTheRules) {
    b->release_at = now - 2min;
    rules.max_age = 1min;
    EXPECT_EQ(run().reason, "too_old");
    rules.max_age = 5min;
    EXPECT_EQ(run().what, step::send);
}

TEST_F(Schedule, WhatsAppFreeTextOutsideTheWindowFails) {
    b = make_broadcast(herald::v1::PRIORITY_NORMAL, /*whatsapp_free_text=*/true);
    ASSERT_TRUE(b->whatsapp_free_text);
    r.last_inbound = wall - 24h - 1s;
    auto d = run(lane_kind::whatsapp);
    EXPECT_EQ(d.what, step::fail);
    EXPECT_EQ(d.reason, "outside_customer_service_window");

    r.last_inbound = base::wall_time{};  // never wrote
    d = run(lane_kind::whatsapp);
    EXPECT_EQ(d.what, step::fail);
    EXPECT_EQ(d.reason, "outside_customer_service_window");
}

TEST_F(Schedule, WhatsAppFreeTextInsideTheWindowIsSent) {
    b = make_broadcast(herald::v1::PRIORITY_NORMAL, /*whatsapp_free_text=*/true);
    r.last_inbound = wall - 24h + 1s;
    EXPECT_EQ(run(lane_kind::whatsapp).what, step::send);
    r.last_inbound = wall - 1min;
    EXPECT_EQ(run(lane_kind::whatsapp).what, step::send);
}

TEST_F(Schedule, WhatsAppWindowComesFromTheRules) {
    b = make_broadcast(herald::v1::PRIORITY_NORMAL, /*whatsapp_free_text=*/true);
    r.last_inbound = wall - 2h;
    rules.whatsapp_window = 1h;
    EXPECT_EQ(run(lane_kind::whatsapp).reason, "outside_customer_service_window");
    rules.whatsapp_window = 3h;
    EXPECT_EQ(run(lane_kind::whatsapp).what, step::send);
}

TEST_F(Schedule, TheWindowOnlyLimitsFreeTextOnWhatsAppLanes) {
    r.last_inbound = base::wall_time{};  // never wrote
    // A template message is allowed any time.
    EXPECT_EQ(run(lane_kind::whatsapp).what, step::send);
    // Free text on a webhook or SMS lane has no such window.
    b = make_broadcast(herald::v1::PRIORITY_NORMAL, /*whatsapp_free_text=*/true);
    EXPECT_EQ(run(lane_kind::webhook).what, step::send);
    EXPECT_EQ(run(lane_kind::sms).what, step::send);
}

TEST_F(Schedule, PairLimitWaitsForTheRecipientUntilExactlyNextAllowed) {
    r.next_allowed = now + 6s + 123ns;
    const auto d = run();
    EXPECT_EQ(d.what, step::wait_recipient);
    EXPECT_EQ(d.at, now + 6s + 123ns);
    EXPECT_TRUE(d.reason.empty());

    r.next_allowed = now + 1ns;  // however close
    const auto soon = run();
    EXPECT_EQ(soon.what, step::wait_recipient);
    EXPECT_EQ(soon.at, now + 1ns);
}

TEST_F(Schedule, NextAllowedReachedIsSent) {
    r.next_allowed = now;
    EXPECT_EQ(run().what, step::send);
}

TEST_F(Schedule, EmptyLaneBucketWaitsForItsNextToken) {
    lane = empty_bucket();
    const auto d = run();
    EXPECT_EQ(d.what, step::wait_lane);
    // 10 tokens/s: the next one about 100 ms from now, and not a moment earlier.
    EXPECT_GT(d.at, now + 99ms);
    EXPECT_LE(d.at, now + 100ms + 1ns);
    EXPECT_EQ(base::to_ns(d.at), lane.next_token_ns(now_ns));
    token_bucket probe = empty_bucket();
    EXPECT_FALSE(probe.try_take(base::to_ns(d.at) - ms));
    EXPECT_TRUE(probe.try_take(base::to_ns(d.at)));
}

TEST_F(Schedule, PausedLaneBucketWaitsUntilAfterThePause) {
    lane.pause_until(now_ns + 30 * s);
    const auto d = run();
    EXPECT_EQ(d.what, step::wait_lane);
    EXPECT_GT(d.at, now + 30s);
    EXPECT_LE(d.at, now + 30s + 100ms + 1ns);
    EXPECT_EQ(base::to_ns(d.at), lane.next_token_ns(now_ns));
}

TEST_F(Schedule, EmptyTenantBucketWaitsForItsNextToken) {
    tenant = token_bucket(2, 1, now_ns);
    ASSERT_TRUE(tenant.try_take(now_ns));
    const auto d = run();
    EXPECT_EQ(d.what, step::wait_tenant);
    EXPECT_GT(d.at, now + 499ms);
    EXPECT_LE(d.at, now + 500ms + 1ns);
    EXPECT_EQ(base::to_ns(d.at), tenant.next_token_ns(now_ns));
}

TEST_F(Schedule, TenantTokenAvailableButOtherLanesWaitingWaitsTenant) {
    ASSERT_TRUE(tenant.available(now_ns));
    const auto d = run(lane_kind::webhook, false, /*others_waiting=*/true);
    EXPECT_EQ(d.what, step::wait_tenant);
    // The token is there now; the shard hands it out in order.
    EXPECT_EQ(d.at, now);
}

TEST_F(Schedule, OthersWaitingDoesNotMatterWithoutATenantLimit) {
    const auto d = run(lane_kind::webhook, false, /*others_waiting=*/true, /*tenant_limited=*/false);
    EXPECT_EQ(d.what, step::send);
}

// ---- precedence ----------------------------------------------------------------

TEST_F(Schedule, ForgottenWinsOverEverything) {
    lane = empty_bucket();
    tenant = empty_bucket();
    b->expires_at = wall - 1s;
    b->release_at = now - 2h;
    const auto d = run(lane_kind::webhook, /*superseded=*/true, true, true, nullptr, /*forgotten=*/true);
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "forgotten");
}

TEST_F(Schedule, ForgottenIsSuppressedEvenWhenTheLaneBucketIsEmpty) {
    lane = empty_bucket();
    const auto d = run(lane_kind::webhook, false, false, true, nullptr, /*forgotten=*/true);
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "forgotten");
}

TEST_F(Schedule, OptedOutWinsOverExpiredSupersededAndTooOld) {
    r.audiences.clear();
    b->expires_at = wall - 1s;
    b->release_at = now - 2h;
    const auto d = run(lane_kind::webhook, /*superseded=*/true);
    EXPECT_EQ(d.reason, "opted_out");
}

TEST_F(Schedule, ExpiredWinsOverSupersededAndTooOld) {
    b->expires_at = wall - 1s;
    b->release_at = now - 2h;
    const auto d = run(lane_kind::webhook, /*superseded=*/true);
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "expired");
}

TEST_F(Schedule, ExpiredIsSuppressedEvenIfThePairLimitWouldMakeItWait) {
    b->expires_at = wall - 1s;
    r.next_allowed = now + 1h;
    lane = empty_bucket();
    const auto d = run();
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "expired");
}

TEST_F(Schedule, SupersededWinsOverTooOld) {
    b->release_at = now - 2h;
    const auto d = run(lane_kind::webhook, /*superseded=*/true);
    EXPECT_EQ(d.what, step::suppress);
    EXPECT_EQ(d.reason, "superseded");
}

TEST_F(Schedule, TooOldWinsOverTheWhatsAppWindow) {
    b = make_broadcast(herald::v1::PRIORITY_NORMAL, /*whatsapp_free_text=*/true);
    b->release_at = now - 2h;
    r.last_inbound = base::wall_time{};
    const auto d = run(lane_kind::whatsapp);
    EXPECT_EQ(d.what, step::fail);
    EXPECT_EQ(d.reason, "too_old");
    EXPECT_TRUE(d.exhausted);
}

TEST_F(Schedule, TooOldFailsRatherThanWaitingForTheRecipientOrTheLane) {
    b->release_at = now - 2h;
    r.next_allowed = now + 1s;
    lane = empty_bucket();
    tenant = empty_bucket();
    const auto d = run();
    EXPECT_EQ(d.what, step::fail);
    EXPECT_EQ(d.reason, "too_old");
}

TEST_F(Schedule, WhatsAppWindowFailsRatherThanWaitingForTheRecipient) {
    b = make_broadcast(herald::v1::PRIORITY_NORMAL, /*whatsapp_free_text=*/true);
    r.last_inbound = base::wall_time{};
    r.next_allowed = now + 1s;
    lane = empty_bucket();
    const auto d = run(lane_kind::whatsapp);
    EXPECT_EQ(d.what, step::fail);
    EXPECT_EQ(d.reason, "outside_customer_service_window");
}

TEST_F(Schedule, RecipientWaitComesBeforeLaneAndTenantWaits) {
    r.next_allowed = now + 4s;
    lane = empty_bucket();
    tenant = empty_bucket();
    const auto d = run(lane_kind::webhook, false, /*others_waiting=*/true);
    EXPECT_EQ(d.what, step::wait_recipient);
    EXPECT_EQ(d.at, now + 4s);
}

TEST_F(Schedule, LaneWaitComesBeforeTenantWait) {
    lane.pause_until(now_ns + 10 * s);
    tenant = empty_bucket();
    const auto d = run(lane_kind::webhook, false, /*others_waiting=*/true);
    EXPECT_EQ(d.what, step::wait_lane);
    EXPECT_GT(d.at, now + 10s);
}

TEST_F(Schedule, DecideNeverTakesTokens) {
    // One token in each bucket: were decide to take one, the next try_take would fail.
    for (int i = 0; i < 2; ++i) EXPECT_EQ(run().what, step::send);
    EXPECT_TRUE(lane.try_take(now_ns));
    EXPECT_TRUE(tenant.try_take(now_ns));

    // Nor when it sends the lane waiting for the tenant.
    lane = full_bucket();
    tenant = full_bucket();
    for (int i = 0; i < 2; ++i) EXPECT_EQ(run(lane_kind::webhook, false, true).what, step::wait_tenant);
    EXPECT_TRUE(lane.try_take(now_ns));
    EXPECT_TRUE(tenant.try_take(now_ns));
}

// ---- queue order ---------------------------------------------------------------

TEST(SchedulePriority, HigherPriorityFirstThenArrivalOrder) {
    const model::broadcast_ptr low = make_broadcast(herald::v1::PRIORITY_LOW);
    const model::broadcast_ptr normal = make_broadcast(herald::v1::PRIORITY_NORMAL);
    const model::broadcast_ptr crisis = make_broadcast(herald::v1::PRIORITY_CRITICAL);
    ASSERT_EQ(crisis->priority, herald::v1::PRIORITY_CRITICAL);

    std::priority_queue<delivery, std::vector<delivery>, by_priority> q;
    q.push(make_delivery(normal, 1));
    q.push(make_delivery(crisis, 5));
    q.push(make_delivery(low, 0));
    q.push(make_delivery(normal, 0));
    q.push(make_delivery(crisis, 2));
    q.push(make_delivery(low, 3));
    q.push(make_delivery(crisis, 4));
    q.push(make_delivery(normal, 6));

    std::vector<std::pair<int, std::uint64_t>> popped;
    while (!q.empty()) {
        popped.emplace_back(q.top().b->priority, q.top().order);
        q.pop();
    }
    const std::vector<std::pair<int, std::uint64_t>> expected = {{4, 2}, {4, 4}, {4, 5}, {2, 0},
                                                                 {2, 1}, {2, 6}, {1, 0}, {1, 3}};
    EXPECT_EQ(popped, expected);
}

TEST(SchedulePriority, ComparatorIsAStrictOrder) {
    const model::broadcast_ptr normal = make_broadcast(herald::v1::PRIORITY_NORMAL);
    const model::broadcast_ptr high = make_broadcast(herald::v1::PRIORITY_HIGH);
    const by_priority less;
    const delivery a = make_delivery(normal, 1);
    const delivery b = make_delivery(high, 9);
    EXPECT_TRUE(less(a, b));  // normal ranks below high, whatever the arrival
    EXPECT_FALSE(less(b, a));
    EXPECT_FALSE(less(a, a));  // irreflexive
    const delivery later = make_delivery(normal, 2);
    EXPECT_TRUE(less(later, a));  // arrived later: ranks below
    EXPECT_FALSE(less(a, later));
}

}  // namespace
}  // namespace herald::outbound
