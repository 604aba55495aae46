#include "outbound/outbound_shard.h"

#include <openssl/ssl.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/assert.h"
#include "base/clock.h"
#include "base/log.h"
#include "outbound/checkpoints.h"
#include "outbound/gateway_reply.h"
#include "outbound/http_client.h"
#include "outbound/requests.h"

namespace herald::outbound {

/// One gateway endpoint as this shard sees it.
struct lane {
    lane(asio::io_context& io, endpoint e, double rate, double burst, lane_kind k)
        : ep(std::move(e)), bucket(rate, burst, base::mono_now_ns()), timer(io), kind(k) {}
    endpoint ep;
    token_bucket bucket;
    std::priority_queue<delivery, std::vector<delivery>, by_priority> queue;
    std::vector<std::shared_ptr<http_connection>> idle;
    std::uint32_t open = 0;
    std::uint32_t inflight = 0;
    asio::steady_timer timer;
    bool timer_armed = false;
    lane_kind kind;
};

struct outbound_shard::tenant_limit {
    tenant_limit(asio::io_context& io, double rate, double burst)
        : bucket(rate, burst, base::mono_now_ns()), timer(io) {}
    token_bucket bucket;
    std::vector<lane*> waiting;  // in arrival order
    asio::steady_timer timer;
    bool timer_armed = false;
};

struct outbound_shard::io_parts {
    explicit io_parts(asio::io_context& io) : tls(asio::ssl::context::tls_client), delay_timer(io) {}
    asio::ssl::context tls;
    asio::steady_timer delay_timer;
};

namespace {

const char* channel_name(herald::v1::Channel c) {
    return c == herald::v1::CHANNEL_SMS ? "sms" : c == herald::v1::CHANNEL_WHATSAPP ? "whatsapp" : "webhook";
}

}  // namespace

outbound_shard::outbound_shard(const gateway_options& options, status_board& board, probe& probe,
                               const outcome_handler& on_outcome, std::uint32_t index, checkpoints* cp)
    : options_(options),
      rules_{std::chrono::nanoseconds(options.retry.max_age_ns)},
      board_(board),
      probe_(probe),
      on_outcome_(on_outcome),
      checkpoints_(cp),
      loop_("herald-out-" + std::to_string(index)),
      io_(std::make_unique<io_parts>(loop_.context())),
      max_pending_(
          std::max<std::uint64_t>(options.max_pending / std::max<std::uint32_t>(options.shards, 1), 1)),
      waiting_gauge_(probe.waiting_gauge(index)),
      rng_(std::random_device{}() + index) {
    io_->tls.set_default_verify_paths();
    if (!options_.ca_file.empty()) {
        // check_ca_file read it at start-up; a file changed since then
        // leaves the system's CAs, and deliveries to a private gateway fail
        // with transport_error:tls_certificate.
        beast::error_code ec;
        io_->tls.load_verify_file(options_.ca_file, ec);
        if (ec)
            HERALD_LOG_ERROR("outbound", "outbound_ca_file: cannot load \"", options_.ca_file,
                             "\": ", ec.message());
    }
    SSL_CTX_set_min_proto_version(io_->tls.native_handle(), TLS1_2_VERSION);
    io_->tls.set_verify_mode(options_.verify_tls ? asio::ssl::verify_peer : asio::ssl::verify_none);
}

outbound_shard::~outbound_shard() {
    stop();
}

void outbound_shard::start() {
    loop_.start();
}

void outbound_shard::stop() {
    loop_.stop();
}

void outbound_shard::apply(std::shared_ptr<const herald::v1::Subscription> s) {
    loop_.post([this, s = std::move(s)] { on_apply(*s); });
}

void outbound_shard::forget(std::string subscriber_key) {
    loop_.post([this, key = std::move(subscriber_key)] { on_forget(key); });
}

void outbound_shard::deliver(model::broadcast_ptr b, done_set done, done_set unknown) {
    loop_.post([this, b = std::move(b), done = std::move(done), unknown = std::move(unknown)] {
        on_deliver(b, done, unknown);
    });
}

// --- registry slice -------------------------------------------------------

lane* outbound_shard::lane_for(recipient& r) {
    std::optional<endpoint> ep;
    lane_kind kind = lane_kind::webhook;
    std::string key;
    double rate = options_.webhook_rate;
    double burst = options_.webhook_burst;
    if (r.channel == herald::v1::CHANNEL_WEBHOOK) {
        ep = parse_endpoint(r.address);
        // Plain http:// without the switch: stored before it was turned off
        // (the API and the feed refuse new ones); fails as insecure_webhook.
        if (!ep || (!ep->tls && !options_.allow_insecure_webhooks))
            return nullptr;
        r.target = ep->target;
        key = ep->key();
    } else if (r.channel == herald::v1::CHANNEL_WHATSAPP) {
        if (options_.whatsapp_phone_number_id.empty())
            return nullptr;
        ep = parse_endpoint(options_.whatsapp_base_url);
        if (!ep)
            return nullptr;
        const std::string prefix = ep->target == "/" ? "" : ep->target;
        r.target = prefix + "/" + options_.whatsapp_api_version + "/" + options_.whatsapp_phone_number_id +
                   "/messages";
        key = "whatsapp:" + options_.whatsapp_phone_number_id;
        kind = lane_kind::whatsapp;
        rate = options_.whatsapp_rate;
        burst = options_.whatsapp_burst;
    } else if (r.channel == herald::v1::CHANNEL_SMS) {
        ep = parse_endpoint(options_.sms_gateway_url);
        if (!ep)
            return nullptr;
        r.target = ep->target;
        key = "sms:" + ep->key();
        kind = lane_kind::sms;
        rate = options_.sms_rate;
        burst = options_.sms_burst;
    } else {
        return nullptr;
    }
    auto it = lanes_.find(key);
    if (it == lanes_.end()) {
        const double n = std::max<std::uint32_t>(options_.shards, 1);
        it = lanes_
                 .emplace(key, std::make_unique<lane>(loop_.context(), std::move(*ep), rate / n,
                                                      std::max(1.0, burst / n), kind))
                 .first;
    }
    return it->second.get();
}

void outbound_shard::on_apply(const herald::v1::Subscription& s) {
    HERALD_ASSERT(loop_.is_current());
    const auto [at, created] = index_.apply(s);
    recipient& r = index_.at(at);
    r.route = lane_for(r);
    if (created) {
        recipients.fetch_add(1, std::memory_order_relaxed);
        probe_.subscribers(1);
    }
}

void outbound_shard::on_forget(const std::string& key) {
    HERALD_ASSERT(loop_.is_current());
    if (index_.forget(key)) {
        recipients.fetch_sub(1, std::memory_order_relaxed);
        probe_.subscribers(-1);
    }
}

// --- broadcasts in, deliveries out -----------------------------------------

void outbound_shard::on_deliver(const model::broadcast_ptr& b, const done_set& done,
                                const done_set& unknown) {
    HERALD_ASSERT(loop_.is_current());
    const base::mono_time now = base::mono_now();
    if (b->release_at > now + std::chrono::milliseconds(1)) {
        // deliver_at ahead: list the recipients at the release instant.
        auto timer = std::make_shared<asio::steady_timer>(loop_.context());
        timer->expires_at(b->release_at);
        held_.insert(b.get());
        timer->async_wait([this, b, done, unknown, timer](const beast::error_code& ec) {
            // Not held any more: a cancel listed it already.
            if (held_.erase(b.get()) != 0 && !ec)
                admit_or_wait(b, done, unknown);
        });
        return;
    }
    admit_or_wait(b, done, unknown);
}

void outbound_shard::cancel(model::broadcast_ptr b) {
    loop_.post([this, b = std::move(b)] {
        if (held_.erase(b.get()) != 0)
            admit_or_wait(b, {}, {});
    });
}

void outbound_shard::admit_or_wait(const model::broadcast_ptr& b, const done_set& done,
                                   const done_set& unknown) {
    // At its release instant, not on arrival: one scheduled for tomorrow
    // must not supersede one due now.
    note_collapse_key(*b);
    waiting_.push(waiting_broadcast{b, done, unknown, next_order_++});
    waiting.fetch_add(1, std::memory_order_relaxed);
    waiting_gauge_.Increment();
    admit();
}

void outbound_shard::admit() {
    while (!waiting_.empty() && pending.load(std::memory_order_relaxed) < max_pending_) {
        waiting_broadcast w = waiting_.top();
        waiting_.pop();
        waiting.fetch_sub(1, std::memory_order_relaxed);
        waiting_gauge_.Decrement();
        expand(w.b, w.done, w.unknown);
    }
}

void outbound_shard::admit_later() {
    // After deliveries finished: list waiting broadcasts outside the pump
    // that finished them (listing pumps the lanes again).
    if (waiting_.empty() || admit_posted_)
        return;
    admit_posted_ = true;
    loop_.post([this] {
        admit_posted_ = false;
        admit();
    });
}

void outbound_shard::note_collapse_key(const model::broadcast& b) {
    if (b.collapse_key.empty() || b.expired_at(base::wall_now()))
        return;  // an expired one replaces nothing
    if (newest_by_collapse_key_.size() >= max_collapse_keys)
        newest_by_collapse_key_.clear();  // forgetting only means an older one is still sent
    auto& newest = newest_by_collapse_key_[b.scope + '\n' + b.collapse_key];
    newest = std::max(newest, b.seq);
}

bool outbound_shard::superseded(const model::broadcast& b) const {
    if (b.collapse_key.empty())
        return false;
    const auto it = newest_by_collapse_key_.find(b.scope + '\n' + b.collapse_key);
    return it != newest_by_collapse_key_.end() && it->second > b.seq;
}

void outbound_shard::expand(const model::broadcast_ptr& b, const done_set& done, const done_set& unknown) {
    const auto* members = index_.members(b->scope);
    if (members == nullptr) {
        board_.expanded(b->id, b->tenant, 0);
        return;
    }
    std::size_t n = 0;
    std::vector<delivery> unreachable;
    std::vector<delivery> interrupted;
    for (const recipient_index::slot slot : *members) {
        recipient& r = index_.at(slot);
        if (done && done->count(r.key) != 0)
            continue;  // finished before the restart
        delivery d{b, slot, r.generation, 0, 0, next_order_++};
        if (unknown && unknown->count(r.key) != 0)
            interrupted.push_back(std::move(d));  // maybe delivered before the crash: never again
        else if (r.route != nullptr)
            r.route->queue.push(std::move(d));
        else
            unreachable.push_back(std::move(d));
        ++n;
    }
    pending.fetch_add(n, std::memory_order_relaxed);
    probe_.pending(static_cast<double>(n));
    board_.expanded(b->id, b->tenant, n);
    for (const delivery& d : unreachable) {
        const recipient& r = index_.at(d.slot);
        const bool insecure = r.channel == herald::v1::CHANNEL_WEBHOOK && !options_.allow_insecure_webhooks &&
                              r.address.rfind("http://", 0) == 0;
        finish(
            d, herald::v1::OUTCOME_FAILED,
            insecure ? std::string("insecure_webhook") : std::string("no_gateway:") + channel_name(r.channel),
            false);
    }
    for (const delivery& d : interrupted) finish(d, herald::v1::OUTCOME_UNKNOWN, "interrupted", false);
    for (auto& [key, l] : lanes_) pump(*l);
}

void outbound_shard::finish(const delivery& d, herald::v1::Outcome outcome, std::string_view reason,
                            bool exhausted) {
    pending.fetch_sub(1, std::memory_order_relaxed);
    probe_.pending(-1);
    admit_later();
    const recipient* r = index_.live(d.slot, d.generation);
    switch (outcome) {
        case herald::v1::OUTCOME_SENT:
            board_.sent(d.b->id, d.b->tenant);
            break;
        case herald::v1::OUTCOME_FAILED:
            board_.failed(d.b->id, d.b->tenant);
            break;
        case herald::v1::OUTCOME_UNKNOWN:
            board_.unknown(d.b->id, d.b->tenant);
            break;
        default:
            board_.suppressed(d.b->id, d.b->tenant, std::string(reason));
            break;
    }
    if (r == nullptr)
        return;  // forgotten: no receipt or checkpoint may name them any more
    if (checkpoints_ != nullptr)
        checkpoints_->finished(checkpoints::key(d.b->tenant, d.b->id), r->key);
    probe_.outcome(r->channel, outcome);
    if (on_outcome_) {
        const std::string why(reason);
        on_outcome_(outcome_event{*d.b, r->id, r->channel, outcome, why, d.attempts, exhausted});
    }
}

// --- lanes ------------------------------------------------------------------

void outbound_shard::pump(lane& l) {
    HERALD_ASSERT(loop_.is_current());
    const base::mono_time now = base::mono_now();
    const base::wall_time wall = base::wall_now();
    while (!l.queue.empty() && l.inflight < options_.connections_per_endpoint) {
        const delivery& top = l.queue.top();
        recipient* r = index_.live(top.slot, top.generation);
        tenant_limit* t = tenant_of(top.b->tenant);
        const tenant_view tenant{t != nullptr ? &t->bucket : nullptr,
                                 t != nullptr && std::any_of(t->waiting.begin(), t->waiting.end(),
                                                             [&](const lane* w) { return w != &l; })};
        const decision next = decide(top, r, l.kind, l.bucket, tenant, superseded(*top.b), rules_, now, wall);
        switch (next.what) {
            case step::suppress:
            case step::fail: {
                delivery d = top;
                l.queue.pop();
                finish(d,
                       next.what == step::fail ? herald::v1::OUTCOME_FAILED : herald::v1::OUTCOME_SUPPRESSED,
                       next.reason, next.exhausted);
                continue;
            }
            case step::wait_recipient: {
                delivery d = top;
                l.queue.pop();
                delay(l, std::move(d), next.at);
                continue;
            }
            case step::wait_lane:
                arm(l, next.at);
                return;
            case step::wait_tenant:
                wait_for_tenant(*t, l, next.at);
                return;
            case step::send: {
                if (t != nullptr)
                    (void)t->bucket.try_take(base::to_ns(now));
                (void)l.bucket.try_take(base::to_ns(now));
                delivery d = top;
                l.queue.pop();
                r->next_allowed = now + options_.recipient_min_interval;
                if (needs_mark(*r, d)) {
                    // Counted in flight now, so the lane does not decide more
                    // than its connections; sent once the batch is marked.
                    ++l.inflight;
                    starting_.push_back(starting{&l, std::move(d)});
                    if (!start_posted_) {
                        start_posted_ = true;
                        loop_.post([this] { start_batch(); });
                    }
                } else {
                    send(l, *r, std::move(d));
                }
                continue;
            }
        }
    }
}

outbound_shard::tenant_limit* outbound_shard::tenant_of(const std::string& tenant) {
    if (options_.tenant_rate <= 0)
        return nullptr;
    auto it = tenants_.find(tenant);
    if (it == tenants_.end()) {
        const double n = std::max<std::uint32_t>(options_.shards, 1);
        const double burst = options_.tenant_burst > 0 ? options_.tenant_burst : options_.tenant_rate;
        it = tenants_
                 .emplace(tenant, std::make_unique<tenant_limit>(loop_.context(), options_.tenant_rate / n,
                                                                 std::max(1.0, burst / n)))
                 .first;
    }
    return it->second.get();
}

void outbound_shard::wait_for_tenant(tenant_limit& t, lane& l, base::mono_time at) {
    if (std::find(t.waiting.begin(), t.waiting.end(), &l) == t.waiting.end())
        t.waiting.push_back(&l);
    if (t.timer_armed)
        return;
    t.timer_armed = true;
    t.timer.expires_at(std::max(at, base::mono_now()));
    t.timer.async_wait([this, tp = &t](const beast::error_code& ec) {
        tp->timer_armed = false;
        if (!ec)
            serve_tenant(*tp);
    });
}

void outbound_shard::serve_tenant(tenant_limit& t) {
    std::vector<lane*> turn;
    turn.swap(t.waiting);
    // Crisis first across endpoints, then whichever head came first: the
    // tenant's tokens go where its most urgent, oldest work waits.
    std::stable_sort(turn.begin(), turn.end(), [](const lane* a, const lane* b) {
        if (a->queue.empty() || b->queue.empty())
            return !a->queue.empty() && b->queue.empty();
        const delivery& x = a->queue.top();
        const delivery& y = b->queue.top();
        if (x.b->priority != y.b->priority)
            return x.b->priority > y.b->priority;
        return x.order < y.order;
    });
    for (lane* l : turn) pump(*l);
}

void outbound_shard::arm(lane& l, base::mono_time at) {
    if (l.timer_armed)
        return;
    l.timer_armed = true;
    l.timer.expires_at(std::max(at, base::mono_now()));
    l.timer.async_wait([this, lp = &l](const beast::error_code& ec) {
        lp->timer_armed = false;
        if (!ec)
            pump(*lp);
    });
}

void outbound_shard::delay(lane& l, delivery d, base::mono_time due) {
    const bool earliest = delayed_.empty() || due < delayed_.top().due;
    delayed_.push(delayed{due, &l, std::move(d)});
    if (earliest)
        arm_delay();
}

void outbound_shard::arm_delay() {
    if (delayed_.empty())
        return;
    io_->delay_timer.expires_at(std::max(delayed_.top().due, base::mono_now()));
    io_->delay_timer.async_wait([this](const beast::error_code& ec) {
        if (ec)
            return;
        const base::mono_time now = base::mono_now();
        std::vector<lane*> touched;
        while (!delayed_.empty() && delayed_.top().due <= now) {
            delayed top = delayed_.top();
            delayed_.pop();
            top.route->queue.push(std::move(top.d));
            touched.push_back(top.route);
        }
        for (lane* l : touched) pump(*l);
        arm_delay();
    });
}

bool outbound_shard::needs_mark(const recipient& r, const delivery& d) const {
    return checkpoints_ != nullptr && !d.marked && at_most_once(r.channel, options_);
}

void outbound_shard::start_batch() {
    HERALD_ASSERT(loop_.is_current());
    start_posted_ = false;
    marks_.clear();
    for (const starting& s : starting_) {
        if (const recipient* r = index_.live(s.d.slot, s.d.generation))
            marks_.push_back(checkpoints::start_mark{s.d.b->tenant, s.d.b->id, r->key, r->channel});
    }
    if (!marks_.empty()) {
        if (auto ok = checkpoints_->mark_started(marks_); !ok) {
            // Sent anyway, like a broadcast the store could not write down:
            // nobody waits for a disk. A crash now may repeat these.
            if (!marks_failing_)
                HERALD_LOG_ERROR("outbound",
                                 "cannot mark deliveries started; sending them unmarked (a "
                                 "crash may repeat them): ",
                                 ok.err().detail);
            marks_failing_ = true;
        } else {
            if (marks_failing_)
                HERALD_LOG_INFO("outbound", "started marks are written again");
            marks_failing_ = false;
            probe_.started_batch(marks_.size());
        }
    }
    // Swapped out first: a send that answers at once pumps and may collect anew.
    starting_spare_.swap(starting_);
    for (starting& s : starting_spare_) {
        recipient* r = index_.live(s.d.slot, s.d.generation);
        if (r == nullptr) {  // forgotten meanwhile: as decide() would have said
            --s.route->inflight;
            finish(s.d, herald::v1::OUTCOME_SUPPRESSED, "forgotten", false);
            pump(*s.route);
            continue;
        }
        s.d.marked = !marks_failing_;
        launch(*s.route, *r, std::move(s.d));
    }
    starting_spare_.clear();
}

void outbound_shard::unmark(delivery& d) {
    if (!d.marked)
        return;
    d.marked = false;
    if (const recipient* r = index_.live(d.slot, d.generation))
        checkpoints_->not_started(checkpoints::key(d.b->tenant, d.b->id), r->key);
}

void outbound_shard::send(lane& l, recipient& r, delivery d) {
    ++l.inflight;
    launch(l, r, std::move(d));
}

void outbound_shard::launch(lane& l, recipient& r, delivery d) {
    ++d.attempts;
    std::shared_ptr<http_connection> conn;
    if (!l.idle.empty()) {
        conn = std::move(l.idle.back());
        l.idle.pop_back();
    } else {
        conn = std::make_shared<http_connection>(loop_.context(), io_->tls, l.ep, options_.connect_timeout,
                                                 options_.response_timeout, options_.guard);
        ++l.open;
    }
    gateway_request built = build_request(l.kind, *d.b, r, options_, base::wall_now());
    http::request<http::string_body> req{http::verb::post, built.target, 11};
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "herald/0.1");
    for (auto& [name, value] : built.headers) req.set(name, value);
    req.body() = std::move(built.body);
    const base::mono_time started = base::mono_now();
    conn->send(std::move(req), [this, lp = &l, conn, d = std::move(d), started](http_reply reply) mutable {
        --lp->inflight;
        if (conn->connected()) {
            lp->idle.push_back(conn);
        } else {
            --lp->open;
        }
        probe_.request_seconds(std::chrono::duration<double>(base::mono_now() - started).count());
        on_reply(*lp, std::move(d), reply);
        pump(*lp);
    });
}

void outbound_shard::on_reply(lane& l, delivery d, const http_reply& reply) {
    const reply_meaning m = reply.status == 0 ? transport_failure(reply.error)
                            : l.kind == lane_kind::whatsapp
                                ? classify_whatsapp_reply(reply.status, reply.body, reply.retry_after)
                                : classify_webhook_reply(reply.status, reply.retry_after);
    probe_.attempt(m.what);
    const base::mono_time now = base::mono_now();
    const std::chrono::nanoseconds retry_after(m.retry_after_ns);
    switch (m.what) {
        case verdict::sent:
            finish(d, herald::v1::OUTCOME_SENT, {}, false);
            return;
        case verdict::failed:
            finish(d, herald::v1::OUTCOME_FAILED, m.reason, false);
            return;
        case verdict::retry:
            if (d.attempts >= options_.retry.max_attempts) {
                finish(d, herald::v1::OUTCOME_FAILED, "attempts_exhausted:" + m.reason, true);
                return;
            }
            {
                // Computed before d is moved: argument evaluation order is unspecified.
                const auto wait =
                    std::chrono::nanoseconds(backoff_ns(options_.retry, d.attempts, m.retry_after_ns, rng_));
                delay(l, std::move(d), now + wait);
                return;
            }
        case verdict::throttled:
            // The whole sender is too fast: slow the lane, not just this one.
            --d.attempts;
            unmark(d);  // refused, certainly not delivered
            l.bucket.pause_until(
                base::to_ns(now + std::max<std::chrono::nanoseconds>(retry_after, std::chrono::seconds(1))));
            l.queue.push(std::move(d));
            return;
        case verdict::pair_limited: {
            --d.attempts;
            unmark(d);
            ++d.pair_refusals;
            const auto wait =
                std::max(std::chrono::nanoseconds(pair_limit_wait_ns(d.pair_refusals)), retry_after);
            delay(l, std::move(d), now + wait);
            return;
        }
        case verdict::sender_paused:
            --d.attempts;
            unmark(d);
            probe_.sender_paused();
            HERALD_LOG_WARN(
                "outbound", "sender ", l.ep.key(), " refused as spam (", m.reason, "): pausing it for ",
                std::chrono::duration_cast<std::chrono::seconds>(options_.sender_pause).count(), " s");
            l.bucket.pause_until(base::to_ns(now + options_.sender_pause));
            l.queue.push(std::move(d));
            return;
    }
}

}  // namespace herald::outbound
