// The scheduling decision of outbound delivery: what to do now with the
// delivery at the head of a lane's queue. A pure function of the delivery,
// its recipient, the lane's and the tenant's token buckets and the time —
// no clock read, no I/O — so every rule is a unit test with an injected
// clock (tests/outbound/schedule_test.cc), and the outbound shard only
// carries the verdict out.
//
// The rules, in order:
//   1. nobody to send to any more: suppress (forgotten, opted_out), or the
//      announcement itself is void (cancelled by a cancel record, expired,
//      superseded by a newer one with the same collapse key);
//   2. too long after the release instant to still mean anything: fail
//      (too_old), likewise free text outside WhatsApp's 24-hour window;
//   3. the recipient had a message less than the pair limit ago: wait for
//      them (others behind them in the lane go ahead);
//   4. the gateway's bucket is empty or paused: the lane waits;
//   5. the tenant's bucket is empty, or other lanes already wait for its
//      next token: the lane waits too, keeping its priority order (a
//      set-aside delivery would return by time, not priority); the outbound
//      shard hands the tenant's tokens to waiting lanes crisis first, then
//      in arrival order, so one endpoint cannot starve another of them;
//   6. otherwise send.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "base/clock.h"
#include "model/broadcast.h"
#include "outbound/recipient_index.h"
#include "outbound/token_bucket.h"

namespace herald::outbound {

/// What kind of gateway a lane leads to.
enum class lane_kind : std::uint8_t { webhook, whatsapp, sms };

/// One recipient of one broadcast, queued in the lane that reaches them.
struct delivery {
    model::broadcast_ptr b;
    recipient_index::slot slot = 0;
    std::uint32_t generation = 0;
    std::uint32_t attempts = 0;
    std::uint32_t pair_refusals = 0;
    std::uint64_t order = 0;  // arrival, for FIFO within a priority
    bool marked = false;      // marked started in the checkpoint store (at-most-once channels)
};

/// Crisis first, then arrival order (for std::priority_queue).
struct by_priority {
    bool operator()(const delivery& a, const delivery& b) const noexcept {
        if (a.b->priority != b.b->priority)
            return a.b->priority < b.b->priority;
        return a.order > b.order;
    }
};

enum class step : std::uint8_t {
    send,            // take a token from the lane (and tenant) and send now
    suppress,        // final, not sent: `reason`
    fail,            // final, failed: `reason` (`exhausted` when retrying would not help)
    wait_recipient,  // the pair limit: set this delivery aside until `at`
    wait_lane,       // the gateway's bucket: the whole lane waits until `at`
    wait_tenant,     // the tenant's bucket: the whole lane waits until `at`
};

struct decision {
    step what = step::send;
    std::string_view reason;  // suppress / fail: the receipt's reason
    bool exhausted = false;   // fail: counts as given up after retrying (dead-lettered)
    base::mono_time at{};     // wait_*: when to look again
};

struct schedule_rules {
    /// Give up this long after the release instant.
    std::chrono::nanoseconds max_age = std::chrono::hours(1);
    /// Free-text WhatsApp messages only this long after the person's last message.
    std::chrono::nanoseconds whatsapp_window = std::chrono::hours(24);
};

/// The tenant's side of a decision, when tenants are limited.
struct tenant_view {
    token_bucket* bucket = nullptr;  // nullptr: no tenant limit
    bool others_waiting = false;     // other lanes queue for its next token
};

/// The decision for `d` at the head of a lane of `kind`. `r` is its
/// recipient (nullptr: forgotten); `superseded` whether a newer broadcast
/// with its collapse key is known. Buckets are only looked at, never taken from.
[[nodiscard]] decision decide(const delivery& d, const recipient* r, lane_kind kind,
                              token_bucket& lane_bucket, tenant_view tenant, bool superseded,
                              const schedule_rules& rules, base::mono_time now, base::wall_time wall);

}  // namespace herald::outbound
