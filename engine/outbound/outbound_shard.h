// One outbound shard: a thread with its slice of the registry (recipients
// hashed to it), one lane per gateway endpoint and the deliveries of every
// running broadcast to its recipients.
//
// A lane is what one gateway endpoint is to this shard: a token bucket
// holding rate/N and burst/N of the endpoint's limit (N = outbound shards,
// so limits split without a shared lock), a priority queue of deliveries
// (crisis first), a small keep-alive connection pool and a timer. Which
// delivery goes next is decided by schedule.h's decide(); this class carries
// the decision out (send, suppress, fail, set aside, wait) and reads the
// gateway's answer (gateway_reply.h) into a final outcome or a retry.
//
// Bounded backlog: listing a broadcast turns it into one delivery per
// recipient, and at a gateway's 80 messages/s those live for a long time. So
// a shard lists a broadcast only while fewer than max_pending/N deliveries
// are held; the rest wait as one pointer each, crisis first, and are listed
// as deliveries finish. The waiting line is bounded by the outbound
// consumer, which pauses Kafka when too many broadcasts wait.
//
// At most once where the gateway cannot de-duplicate (WhatsApp, SMS): a
// delivery the lane decided to send is not sent at once but collected; the
// collected ones are marked started in the checkpoint store in one
// transaction at the end of the loop's turn (group commit), then sent. A
// burst the bucket allows, or the sends a batch of answers triggers, costs
// one transaction together. Webhooks go out directly.
//
// Everything but the public methods marked "any thread" runs on the shard's
// own loop thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/loop_thread.h"
#include "herald/v1/subscription.pb.h"
#include "model/broadcast.h"
#include "outbound/checkpoints.h"
#include "outbound/options.h"
#include "outbound/probe.h"
#include "outbound/recipient_index.h"
#include "outbound/schedule.h"
#include "outbound/status_board.h"
#include "outbound/token_bucket.h"

namespace prometheus {
class Gauge;
}

namespace herald::outbound {

class checkpoints;
struct http_reply;

class outbound_shard {
  public:
    /// Subscribers (keys) of a resumed broadcast who were finished before a restart.
    using done_set = std::shared_ptr<const std::unordered_set<std::string>>;

    outbound_shard(const gateway_options& options, status_board& board, probe& probe,
                   const outcome_handler& on_outcome, std::uint32_t index, checkpoints* cp);
    ~outbound_shard();
    outbound_shard(const outbound_shard&) = delete;
    outbound_shard& operator=(const outbound_shard&) = delete;

    void start();
    /// Ends the thread; deliveries still queued are left (written down in
    /// the checkpoint store, resumed at the next start).
    void stop();

    /// Any thread: a subscription of a recipient hashed to this shard.
    void apply(std::shared_ptr<const herald::v1::Subscription> s);
    /// Any thread: forget a subscriber (tenant/recipient_id) hashed to this shard.
    void forget(std::string subscriber_key);
    /// Any thread: deliver `b` to this shard's members of its audience
    /// (except those in `done`), at its release instant. Members in
    /// `unknown` (a crash interrupted them on an at-most-once channel) get
    /// OUTCOME_UNKNOWN / interrupted instead, and nothing is sent to them.
    void deliver(model::broadcast_ptr b, done_set done = {}, done_set unknown = {});
    /// Any thread: `b` was cancelled (its flag is set). Held for a later
    /// instant, it is listed now, so its recipients get their "cancelled"
    /// outcomes at once instead of at the instant.
    void cancel(model::broadcast_ptr b);

    /// Subscribers known here.
    std::atomic<std::uint64_t> recipients{0};
    /// Deliveries queued, set aside or in flight (written by the shard thread only).
    std::atomic<std::uint64_t> pending{0};
    /// Broadcasts waiting for the backlog to make room (written by the shard thread only).
    std::atomic<std::uint64_t> waiting{0};

  private:
    struct io_parts;  // TLS context and timers (Asio, in the .cc)

    /// A broadcast not yet listed into deliveries because the backlog is
    /// full; crisis first, then arrival order.
    struct waiting_broadcast {
        model::broadcast_ptr b;
        done_set done;
        done_set unknown;
        std::uint64_t order = 0;
    };
    struct waiting_first {
        bool operator()(const waiting_broadcast& a, const waiting_broadcast& b) const {
            if (a.b->priority != b.b->priority)
                return a.b->priority < b.b->priority;
            return a.order > b.order;
        }
    };
    /// A delivery set aside until `due` (pair limit, retry backoff).
    struct delayed {
        base::mono_time due;
        lane* route;
        delivery d;
        bool operator>(const delayed& o) const { return due > o.due; }
    };

    // Registry slice.
    void on_apply(const herald::v1::Subscription& s);
    void on_forget(const std::string& id);
    /// The lane that reaches `r` (and its request target), or nullptr when
    /// its channel has no gateway configured: its deliveries then fail with
    /// no_gateway:<channel>, never silently.
    lane* lane_for(recipient& r);

    // Broadcasts in, deliveries out.
    void on_deliver(const model::broadcast_ptr& b, const done_set& done, const done_set& unknown);
    void admit_or_wait(const model::broadcast_ptr& b, const done_set& done, const done_set& unknown);
    void admit();
    void admit_later();
    void expand(const model::broadcast_ptr& b, const done_set& done, const done_set& unknown);
    void finish(const delivery& d, herald::v1::Outcome outcome, std::string_view reason, bool exhausted);

    // Collapse: a newer announcement with the same audience and collapse key
    // supersedes an older one for every recipient it has not reached yet.
    void note_collapse_key(const model::broadcast& b);
    [[nodiscard]] bool superseded(const model::broadcast& b) const;

    // Lanes.
    struct tenant_limit;  // a tenant's bucket and the lanes waiting for its next token
    void pump(lane& l);
    tenant_limit* tenant_of(const std::string& tenant);
    /// `l` waits for the tenant's next token (at `at`), behind the lanes already waiting.
    void wait_for_tenant(tenant_limit& t, lane& l, base::mono_time at);
    /// The tenant's timer: its waiting lanes pumped, crisis first, then in arrival order.
    void serve_tenant(tenant_limit& t);
    void arm(lane& l, base::mono_time at);
    void delay(lane& l, delivery d, base::mono_time due);
    void arm_delay();
    void send(lane& l, recipient& r, delivery d);
    /// The request itself; the lane's inflight already counts it.
    void launch(lane& l, recipient& r, delivery d);
    /// Whether `d` must be marked started before its request (and is not yet).
    [[nodiscard]] bool needs_mark(const recipient& r, const delivery& d) const;
    /// End of the loop's turn: mark what was collected in one transaction, then send it.
    void start_batch();
    /// A marked delivery the gateway refused without accepting: unmark it.
    void unmark(delivery& d);
    void on_reply(lane& l, delivery d, const http_reply& reply);

    const gateway_options& options_;
    const schedule_rules rules_;
    status_board& board_;
    probe& probe_;
    const outcome_handler& on_outcome_;
    checkpoints* checkpoints_;
    base::loop_thread loop_;
    std::unique_ptr<io_parts> io_;

    // Shard-thread state below.
    recipient_index index_;
    std::unordered_map<std::string, std::unique_ptr<lane>> lanes_;
    std::unordered_map<std::string, std::unique_ptr<tenant_limit>> tenants_;
    std::priority_queue<delayed, std::vector<delayed>, std::greater<>> delayed_;
    std::uint64_t next_order_ = 0;
    std::uint64_t max_pending_;
    prometheus::Gauge& waiting_gauge_;
    std::priority_queue<waiting_broadcast, std::vector<waiting_broadcast>, waiting_first> waiting_;
    bool admit_posted_ = false;
    static constexpr std::size_t max_collapse_keys = 65536;
    std::unordered_map<std::string, model::seq_no> newest_by_collapse_key_;
    // Group commit of started marks: deliveries decided for sending this
    // turn, and buffers kept between batches (no allocation per batch once warm).
    struct starting {
        lane* route;
        delivery d;
    };
    std::vector<starting> starting_;
    std::vector<starting> starting_spare_;
    std::vector<checkpoints::start_mark> marks_;
    bool start_posted_ = false;
    bool marks_failing_ = false;
    std::mt19937_64 rng_;
    /// Broadcasts waiting on their timer for a later instant (cancel lists them early).
    std::unordered_set<const model::broadcast*> held_;
};

}  // namespace herald::outbound
