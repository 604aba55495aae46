#include "fanout/shard.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <span>
#include <thread>

#include "base/assert.h"
#include "base/clock.h"
#include "base/log.h"
#include "channels/demo_page.h"
#include "config/config.h"
#include "wire/frame_codec.h"

namespace herald::fanout {
namespace asio = boost::asio;
namespace {

constexpr std::size_t drain_batch = 64;
constexpr int drain_rounds_before_yield = 16;
// A broadcast due within this window is released at once rather than staged:
// the timer could not fire any closer to the instant anyway.
constexpr std::chrono::nanoseconds release_slack{100'000};
constexpr auto tick_period = std::chrono::milliseconds(250);

void atomic_min(std::atomic<std::int64_t>& target, std::int64_t v) {
    auto cur = target.load(std::memory_order_relaxed);
    while (v < cur && !target.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
}

void atomic_max(std::atomic<std::int64_t>& target, std::int64_t v) {
    auto cur = target.load(std::memory_order_relaxed);
    while (v > cur && !target.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
}

std::string collapse_slot(const model::broadcast& b) {
    return b.scope + '\n' + b.collapse_key;
}

/// Priority first, but never ahead of an earlier seq of its own audience: a
/// broadcast goes with the highest priority of itself and everything after
/// it of its audience, so a crisis pulls its audience's earlier queue along
/// instead of overtaking it. Stable: equal ones keep their arrival order.
template <typename T, typename BroadcastOf>
void order_for_release(std::span<T> items, BroadcastOf broadcast_of) {
    const std::size_t n = items.size();
    const auto mixed = std::any_of(items.begin(), items.end(), [&](const T& x) {
        return broadcast_of(x).priority != broadcast_of(items.front()).priority;
    });
    if (n < 2 || !mixed)
        return;  // the common case: nothing to reorder
    std::vector<std::pair<int, T>> keyed(n);
    for (std::size_t i = n; i-- > 0;) {
        const model::broadcast& b = broadcast_of(items[i]);
        keyed[i].first = b.priority;
        for (std::size_t j = i + 1; j < n; ++j) {
            if (broadcast_of(items[j]).scope == b.scope) {
                keyed[i].first = std::max(keyed[i].first, keyed[j].first);  // keyed[j] covers the rest
                break;
            }
        }
    }
    for (std::size_t i = 0; i < n; ++i) keyed[i].second = std::move(items[i]);
    std::stable_sort(keyed.begin(), keyed.end(),
                     [](const auto& x, const auto& y) { return x.first > y.first; });
    for (std::size_t i = 0; i < n; ++i) items[i] = std::move(keyed[i].second);
}

}  // namespace

shard_options shard_options::from(const config::config& cfg) {
    shard_options o;
    o.queue_capacity = cfg.shard_queue_capacity;
    o.session = channels::session_limits::from(cfg);
    o.history_max_per_audience = cfg.history_max_per_audience;
    o.history_max_age = cfg.history_max_age;
    return o;
}

shard::shard(base::shard_id id, const shard_options& options, probe& probe,
             channels::connection_budget& budget, done_handler on_done)
    : id_(id),
      options_(options),
      probe_(probe),
      budget_(budget),
      on_done_(std::move(on_done)),
      loop_("herald-shard-" + std::to_string(id.get())),
      queue_(options.queue_capacity),
      env_{
          loop_.context(), options.session, stats_, options.access, {}, {}, std::string(channels::demo_page)},
      release_timer_(loop_.context()),
      tick_timer_(loop_.context()) {
    env_.on_open = [this](channels::live_session& s, const std::string& tenant,
                          const std::vector<std::string>& audiences,
                          const std::vector<model::audience_position>& since) {
        on_session_open(s, tenant, audiences, since);
    };
    env_.on_closed = [this](channels::live_session& s) { on_session_closed(s); };
    env_.tls = options.tls;
    env_.on_tls_failure = options.on_tls_failure;
}

shard::~shard() {
    loop_.stop();
    for (auto& [at, s] : pending_) {
        release_staged(s);
    }
}

base::result<std::uint16_t> shard::listen(const std::string& host, std::uint16_t port) {
    listener_ = std::make_unique<channels::client_listener>(
        loop_.context(), budget_, [this](channels::accepted_connection c) { adopt(std::move(c)); });
    return listener_->bind(host, port);
}

void shard::start() {
    if (listener_) {
        listener_->start();
    }
    arm_tick();
    loop_.start();
}

void shard::adopt(channels::accepted_connection c) {
    HERALD_ASSERT(loop_.is_current());
    auto session =
        std::make_shared<channels::live_session>(std::move(c.socket), env_, c.counted_ip, c.refuse_status);
    session->table_index = static_cast<std::uint32_t>(sessions_.size());
    sessions_.push_back(session);
    session->start();
}

void shard::on_session_open(channels::live_session& s, const std::string& tenant,
                            const std::vector<std::string>& audiences,
                            const std::vector<model::audience_position>& since) {
    HERALD_ASSERT(loop_.is_current());
    // A connection joins its audiences within its tenant only: another
    // tenant's announcement to the same audience name never reaches it.
    for (const auto& a : audiences) {
        const std::string scope = model::scope_of(tenant, a);
        index_.join(s, scope);
        // Replay runs on the shard thread before any later release, so what
        // was missed arrives first, in order, and the live stream follows
        // without a gap or a duplicate.
        for (const auto& p : since) {
            if (p.audience == a)
                recover(s, scope, p);
        }
    }
    if (s.writes_own_ids()) {
        // Where each audience stands now, so the browser's Last-Event-ID
        // resumes even an audience that sends nothing before a disconnect.
        std::vector<model::audience_position> current;
        for (const auto& a : audiences) {
            const auto it = history_.find(model::scope_of(tenant, a));
            if (it != history_.end() && !it->second.items.empty())
                current.push_back({a, it->second.items.back()->epoch, it->second.items.back()->seq});
        }
        s.start_positions(current);
    }
}

void shard::deliver_to(channels::live_session& member, const model::broadcast& b,
                       channels::frame_hold& hold) {
    if (member.channel() == channels::live_channel::websocket)
        member.deliver(b.websocket_frame, hold);
    else if (!member.writes_own_ids())
        member.deliver(b.sse_frame, hold);
    else
        member.deliver_positioned(b.audience, b.epoch, b.seq, b.sse_body(), hold);
}

void shard::evict_old(audience_history& h, base::mono_time now) {
    while (!h.items.empty() && (h.items.size() > options_.history_max_per_audience ||
                                now - h.items.front()->release_at > options_.history_max_age)) {
        h.complete_after = std::max(h.complete_after, h.items.front()->seq);
        h.evicted = true;
        h.items.pop_front();
    }
}

void shard::remember(const model::broadcast_ptr& b) {
    if (options_.history_max_per_audience == 0)
        return;
    auto [it, inserted] = history_.try_emplace(b->scope);
    audience_history& h = it->second;
    if (inserted)
        h.complete_after = model::seq_no(b->seq.get() - 1);
    h.items.push_back(b);
    h.epoch = b->epoch;
    evict_old(h, base::mono_now());
}

void shard::remember_past(const model::broadcast_ptr& b) {
    if (options_.history_max_per_audience == 0)
        return;
    auto [it, inserted] = history_.try_emplace(b->scope);
    audience_history& h = it->second;
    if (inserted) {
        h.complete_after = b->history_complete_after;
    } else if (!h.evicted) {
        // Released ones came first (a partition assigned again later): the
        // read-back covers everything from its start up to them.
        h.complete_after = std::min(h.complete_after, b->history_complete_after);
    }
    if (std::any_of(h.items.begin(), h.items.end(),
                    [&](const model::broadcast_ptr& x) { return x->seq == b->seq && x->epoch == b->epoch; }))
        return;  // already remembered (a partition assigned again)
    // Release order, as if this process had released them: by seq, except
    // that a scheduled one went out at its instant, after whatever was
    // released before that (read in seq order, so it is placed as found and
    // later ones go before it when they came out earlier).
    auto pos = h.items.end();
    while (pos != h.items.begin()) {
        const model::broadcast& prev = **std::prev(pos);
        const bool released_after =
            prev.scheduled || b->scheduled ? prev.release_at > b->release_at : prev.seq > b->seq;
        if (!released_after)
            break;
        --pos;
    }
    if (pos == h.items.end())
        h.epoch = b->epoch;
    h.items.insert(pos, b);
    evict_old(h, base::mono_now());
}

void shard::recover(channels::live_session& s, const std::string& scope,
                    const model::audience_position& since) {
    auto it = history_.find(scope);
    if (it != history_.end())
        evict_old(it->second, base::mono_now());
    const audience_history* h = it == history_.end() ? nullptr : &it->second;
    const std::string* current_epoch = h != nullptr && !h->epoch.empty() ? &h->epoch : nullptr;
    // Where the replay starts: just after the client's own broadcast when it
    // is still remembered (release order: a scheduled one released after it
    // comes after it even with a lower seq), else after every seq <= since.
    // Another sequence space: nothing compares, everything remembered is new.
    const bool other_epoch =
        current_epoch != nullptr && !since.epoch.empty() && since.epoch != *current_epoch;
    bool gap = true;  // nothing released for this audience since start: whether anything came after `since`
                      // is unknown
    bool found = false;
    bool replay_all = other_epoch;
    auto from = h != nullptr ? h->items.end() : std::deque<model::broadcast_ptr>::const_iterator{};
    if (h != nullptr && !other_epoch) {
        for (auto i = h->items.end(); i != h->items.begin();) {
            --i;
            if ((*i)->seq == since.seq && (since.epoch.empty() || (*i)->epoch == since.epoch)) {
                from = std::next(i);
                found = true;
                break;
            }
        }
        // A position older than what the history is complete from: say so.
        gap = !found && since.seq < h->complete_after;
        // The client's own broadcast was evicted (first in, first out in
        // release order): everything still here came after it, even a
        // scheduled one with a lower seq.
        replay_all = !found && h->evicted && since.seq <= h->complete_after;
    }
    if (gap) {
        probe_.recovery(false);
        std::string notice = R"({"type":"gap","audience":)";
        wire::append_json_string(notice, since.audience);
        notice += ",\"since\":" + std::to_string(since.seq.get());
        if (!since.epoch.empty())
            notice += ",\"since_epoch\":\"" + since.epoch + "\"";
        if (current_epoch != nullptr && !current_epoch->empty())
            notice += ",\"epoch\":\"" + *current_epoch + "\"";
        if (h != nullptr && !h->items.empty())
            notice += ",\"oldest_seq\":" + std::to_string(h->items.front()->seq.get());
        notice += "}";
        s.send_notice("gap", notice);
    } else {
        probe_.recovery(true);
    }
    if (h == nullptr)
        return;
    gap&& current_epoch != nullptr && !since.epoch.empty() && since.epoch != *current_epoch;
    for (auto i = found ? from : h->items.begin(); i != h->items.end(); ++i) {
        const model::broadcast_ptr& b = *i;
        if (other_epoch ? b->epoch != *current_epoch : (!found && !replay_all && b->seq <= since.seq))
            continue;
        auto* hold = new staged();
        hold->b = b;
        hold->release_at = base::mono_now();
        hold->measure_latency = false;  // a replay is counted apart, never as latency
        hold->owner = this;
        hold->on_unused = &shard::release_staged;
        hold->ref();
        deliver_to(s, *b, *hold);
        hold->unref();
        probe_.recovered_frame();
    }
}

void shard::on_session_closed(channels::live_session& s) {
    (s.refused() ? budget_.refusing : budget_.open).fetch_sub(1, std::memory_order_relaxed);
    if (s.counted_ip() && budget_.per_ip != nullptr)
        budget_.per_ip->release(*s.counted_ip());
    // Deferred: this may run inside a release loop that is walking the very
    // member vector leave_all() would reorder.
    asio::post(loop_.context(), [this, self = s.shared_from_this()] {
        index_.leave_all(*self);
        const std::uint32_t i = self->table_index;
        if (i < sessions_.size() && sessions_[i] == self) {
            sessions_[i] = std::move(sessions_.back());
            sessions_[i]->table_index = i;
            sessions_.pop_back();
        }
    });
}

bool shard::try_enqueue(model::broadcast_ptr b) {
    if (depth_.load(std::memory_order_relaxed) >= options_.queue_capacity) {
        return false;
    }
    depth_.fetch_add(1, std::memory_order_relaxed);
    if (!queue_.enqueue(std::move(b))) {
        depth_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    ring_doorbell();
    return true;
}

void shard::ring_doorbell() {
    if (!doorbell_.exchange(true, std::memory_order_acq_rel)) {
        asio::post(loop_.context(), [this] { drain(); });
    }
}

void shard::drain() {
    // Reset before draining: anything enqueued after this point rings again.
    doorbell_.store(false, std::memory_order_release);
    model::broadcast_ptr batch[drain_batch];
    for (int round = 0; round < drain_rounds_before_yield; ++round) {
        const std::size_t n = queue_.try_dequeue_bulk(batch, drain_batch);
        if (n == 0) {
            break;
        }
        depth_.fetch_sub(static_cast<std::uint32_t>(n), std::memory_order_relaxed);
        // Crisis before marketing: within what is waiting, higher priority
        // first, each audience still in seq order.
        order_for_release(std::span(batch, n),
                          [](const model::broadcast_ptr& p) -> const model::broadcast& { return *p; });
        staged* due[drain_batch];
        std::size_t due_count = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (staged* s = accept(std::move(batch[i]))) {
                due[due_count++] = s;
            }
        }
        release_due(due, due_count);
        if (round + 1 == drain_rounds_before_yield) {
            ring_doorbell();  // let socket events in before the next rounds
        }
    }
    probe_.set_queue_depth(id_.get(), depth_.load(std::memory_order_relaxed));
}

shard::staged* shard::accept(model::broadcast_ptr b) {
    if (b->history_only) {
        remember_past(b);
        return nullptr;
    }
    if (stopping_) {
        finish(b, model::broadcast_fate::cancelled, 0, 0, 0);
        return nullptr;
    }
    if (b->expired_at(base::wall_now())) {
        finish(b, model::broadcast_fate::expired, 0, 0, 0);
        return nullptr;
    }
    if (!b->collapse_key.empty()) {
        supersede_pending(*b);
    }
    auto* s = new staged;
    s->refs = 1;  // the shard's own reference, dropped after release
    s->release_at = b->release_at;
    s->on_unused = &shard::release_staged;
    s->owner = this;
    s->b = std::move(b);
    if (s->release_at > base::mono_now() + release_slack) {
        s->pending = true;
        s->pending_it = pending_.emplace(s->release_at, s);
        if (!s->b->collapse_key.empty()) {
            pending_by_collapse_key_[collapse_slot(*s->b)] = s;
        }
        probe_.set_pending_releases(id_.get(), static_cast<double>(pending_.size()));
        arm_release_timer();
        return nullptr;
    }
    return s;
}

void shard::supersede_pending(const model::broadcast& b) {
    const auto it = pending_by_collapse_key_.find(collapse_slot(b));
    if (it == pending_by_collapse_key_.end()) {
        return;
    }
    staged* old = it->second;
    pending_by_collapse_key_.erase(it);
    pending_.erase(old->pending_it);
    old->pending = false;
    finish(old->b, model::broadcast_fate::superseded, 0, 0, 0);
    old->unref();
    probe_.set_pending_releases(id_.get(), static_cast<double>(pending_.size()));
}

void shard::arm_release_timer() {
    if (pending_.empty()) {
        return;
    }
    const base::mono_time at = pending_.begin()->first;
    if (release_timer_.expiry() == at) {
        return;
    }
    release_timer_.expires_at(at);
    release_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) {
            on_release_timer();
        }
    });
}

void shard::on_release_timer() {
    const base::mono_time now = base::mono_now();
    std::vector<staged*> due;
    while (!pending_.empty() && pending_.begin()->first <= now + release_slack) {
        staged* s = pending_.begin()->second;
        pending_.erase(pending_.begin());
        s->pending = false;
        if (!s->b->collapse_key.empty()) {
            const auto it = pending_by_collapse_key_.find(collapse_slot(*s->b));
            if (it != pending_by_collapse_key_.end() && it->second == s) {
                pending_by_collapse_key_.erase(it);
            }
        }
        if (s->b->expired_at(base::wall_now())) {
            finish(s->b, model::broadcast_fate::expired, 0, 0, 0);
            s->unref();
            continue;
        }
        due.push_back(s);
    }
    // Held broadcasts sharing an instant go out together, priority first
    // (each audience in seq order).
    order_for_release(std::span(due), [](const staged* p) -> const model::broadcast& { return *p->b; });
    release_due(due.data(), due.size());
    probe_.set_pending_releases(id_.get(), static_cast<double>(pending_.size()));
    arm_release_timer();
}

void shard::release(staged* s) {
    HERALD_ASSERT(loop_.is_current());
    const model::broadcast& b = *s->b;
    std::int64_t first_write = 0;
    std::int64_t last_write = 0;
    std::uint64_t recipients = 0;
    if (auto* group = index_.find(b.scope)) {
        const auto& members = group->members;
        const std::size_t n = members.size();
        const std::size_t start = static_cast<std::size_t>(group->rotation++ % n);
        const audience::live_index<channels::live_session>::walk walking(index_);
        first_write = base::mono_now_ns();
        for (std::size_t k = 0; k < n; ++k) {
            std::size_t i = start + k;
            if (i >= n) {
                i -= n;
            }
            deliver_to(*members[i], b, *s);
        }
        last_write = base::mono_now_ns();
        recipients = n;
        probe_.flush(stats_);
    }
    finish(s->b, model::broadcast_fate::delivered, first_write, last_write, recipients);
    s->unref();
}

void shard::release_due(staged** due, std::size_t n) {
    // Runs of one audience, in priority order; a broadcast to another
    // audience does not wait for them (each run is released as found).
    constexpr std::size_t max_run = channels::live_session::max_merged_frames;
    staged* run[max_run];
    while (n > 0) {
        std::size_t run_size = 0;
        const std::string& scope = due[0]->b->scope;
        std::size_t keep = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (run_size < max_run && due[i]->b->scope == scope) {
                run[run_size++] = due[i];
            } else {
                due[keep++] = due[i];  // compact the rest, order preserved
            }
        }
        release_merged(run, run_size);
        n = keep;
    }
}

void shard::release_merged(staged** run, std::size_t n) {
    if (n == 1) {
        release(run[0]);
        return;
    }
    std::int64_t first_write = 0;
    std::int64_t last_write = 0;
    std::uint64_t recipients = 0;
    if (auto* group = index_.find(run[0]->b->scope)) {
        std::string_view ws_frames[channels::live_session::max_merged_frames];
        std::string_view sse_frames[channels::live_session::max_merged_frames];
        channels::frame_hold* holds[channels::live_session::max_merged_frames];
        for (std::size_t i = 0; i < n; ++i) {
            ws_frames[i] = run[i]->b->websocket_frame;
            sse_frames[i] = run[i]->b->sse_frame;
            holds[i] = run[i];
        }
        const std::span<const std::string_view> ws(ws_frames, n);
        const std::span<const std::string_view> sse(sse_frames, n);
        const std::span<channels::frame_hold* const> hold_span(holds, n);
        const auto& members = group->members;
        const std::size_t count = members.size();
        const std::size_t start = static_cast<std::size_t>(group->rotation++ % count);
        const audience::live_index<channels::live_session>::walk walking(index_);
        first_write = base::mono_now_ns();
        for (std::size_t k = 0; k < count; ++k) {
            std::size_t i = start + k;
            if (i >= count) {
                i -= count;
            }
            channels::live_session& member = *members[i];
            if (member.writes_own_ids()) {
                for (std::size_t f = 0; f < n; ++f) deliver_to(member, *run[f]->b, *run[f]);
                continue;
            }
            member.deliver_merged(member.channel() == channels::live_channel::websocket ? ws : sse,
                                  hold_span);
        }
        last_write = base::mono_now_ns();
        recipients = count;
        probe_.flush(stats_);
    }
    for (std::size_t i = 0; i < n; ++i) {
        finish(run[i]->b, model::broadcast_fate::delivered, first_write, last_write, recipients);
        run[i]->unref();
    }
}

void shard::release_staged(channels::frame_hold* hold) {
    delete static_cast<staged*>(hold);
}

void shard::finish(const model::broadcast_ptr& ptr, model::broadcast_fate fate, std::int64_t first_write,
                   std::int64_t last_write, std::uint64_t recipients) {
    model::live_progress& live = ptr->live;
    if (fate != model::broadcast_fate::delivered) {
        live.fate.store(static_cast<std::uint8_t>(fate), std::memory_order_relaxed);
    } else {
        remember(ptr);
    }
    if (recipients != 0) {
        atomic_min(live.first_write_mono_ns, first_write);
        atomic_max(live.last_write_mono_ns, last_write);
        live.recipients.fetch_add(recipients, std::memory_order_relaxed);
    }
    const std::uint32_t shards_before = live.shards_pending.fetch_sub(1, std::memory_order_acq_rel);
    HERALD_BUG(shards_before != 0, "shard.finished_twice");
    if (shards_before == 1 && on_done_) {
        on_done_(ptr);
    }
}

void shard::arm_tick() {
    tick_timer_.expires_after(tick_period);
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        const std::int64_t now = base::mono_now_ns();
        const base::wall_time wall = base::wall_now();
        for (std::size_t i = 0; i < sessions_.size(); ++i) {
            sessions_[i]->tick(now, wall);
        }
        probe_.flush(stats_);
        publish_gauges();
        arm_tick();
    });
}

void shard::publish_gauges() {
    probe_.set_connections(id_.get(), static_cast<double>(sessions_.size()));
    probe_.set_queue_depth(id_.get(), depth_.load(std::memory_order_relaxed));
}

void shard::shutdown(std::uint16_t code, std::string_view reason, std::chrono::milliseconds deadline) {
    if (!loop_.running()) {
        return;
    }
    const std::string reason_copy(reason);
    loop_.run_and_wait([&] {
        stopping_ = true;
        if (listener_) {
            listener_->stop();
        }
        // Held broadcasts were never released: cancel them (uncommitted, so
        // they are consumed again after a restart).
        while (!pending_.empty()) {
            staged* s = pending_.begin()->second;
            pending_.erase(pending_.begin());
            s->pending = false;
            finish(s->b, model::broadcast_fate::cancelled, 0, 0, 0);
            s->unref();
        }
        pending_by_collapse_key_.clear();
        release_timer_.cancel();
        for (std::size_t i = 0; i < sessions_.size(); ++i) {
            sessions_[i]->close(code, reason_copy);
        }
    });
    // Let close frames drain until every session is gone or the deadline passes.
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        std::size_t open = 0;
        loop_.run_and_wait([&] { open = sessions_.size(); });
        if (open == 0 || std::chrono::steady_clock::now() >= until) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    loop_.run_and_wait([&] {
        tick_timer_.cancel();
        for (std::size_t i = 0; i < sessions_.size(); ++i) {
            sessions_[i]->close(1001, "");
        }
    });
    loop_.stop();
}

void shard::cancel_held(std::string tenant, std::string id) {
    loop_.post([this, tenant = std::move(tenant), id = std::move(id)] {
        const auto find = [&] {
            return std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) {
                return p.second->b->id == id && p.second->b->tenant == tenant;
            });
        };
        auto it = find();
        // The broadcast was queued before the cancel was posted, but a busy
        // shard may not have taken it from its queue yet: take what waits
        // there first (a bounded number of rounds: newer work keeps coming).
        for (int round = 0; it == pending_.end() && round < 8 && depth_.load(std::memory_order_relaxed) > 0;
             ++round) {
            drain();
            it = find();
        }
        if (it != pending_.end()) {
            staged* s = it->second;
            s->b->cancelled.store(true, std::memory_order_relaxed);
            if (const auto slot = pending_by_collapse_key_.find(collapse_slot(*s->b));
                slot != pending_by_collapse_key_.end() && slot->second == s) {
                pending_by_collapse_key_.erase(slot);
            }
            pending_.erase(it);
            s->pending = false;
            finish(s->b, model::broadcast_fate::cancelled, 0, 0, 0);
            s->unref();
            probe_.set_pending_releases(id_.get(), static_cast<double>(pending_.size()));
            arm_release_timer();
        }
    });
}

}  // namespace herald::fanout
