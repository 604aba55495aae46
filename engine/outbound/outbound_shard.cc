#include "outbound/outbound_shard.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <queue>
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "base/clock.h"
#include "base/log.h"
#include "outbound/checkpoints.h"
#include "outbound/gateway_reply.h"
#include "outbound/http_client.h"
#include "outbound/token_bucket.h"
#include "wire/frame_codec.h"

namespace herald::outbound {

/// herald_outbound_* families. Counters are touched once per HTTP attempt.
class outbound_probe {
  public:
    explicit outbound_probe(metrics::registry& reg) {
        auto& r = reg.prom();
        auto& deliveries = prometheus::BuildCounter()
                               .Name("herald_outbound_deliveries_total")
                               .Help("Final outcomes of outbound deliveries, by channel and outcome")
                               .Register(r);
        for (const char* c : {"webhook", "whatsapp", "sms"}) {
            for (const char* o : {"sent", "failed", "suppressed"}) {
                outcomes_[key(c, o)] = &deliveries.Add({{"channel", c}, {"outcome", o}});
            }
        }
        auto& attempts = prometheus::BuildCounter()
                             .Name("herald_outbound_attempts_total")
                             .Help("HTTP attempts to outbound gateways, by what the answer meant")
                             .Register(r);
        const char* verdicts[] = {"sent", "retry", "throttled", "pair_limited", "sender_paused", "failed"};
        for (std::size_t i = 0; i < attempts_.size(); ++i)
            attempts_[i] = &attempts.Add({{"result", verdicts[i]}});
        paused_ = &prometheus::BuildCounter()
                       .Name("herald_outbound_sender_paused_total")
                       .Help("Times a sender was paused after a spam-class refusal (WhatsApp 131048)")
                       .Register(r)
                       .Add({});
        request_seconds_ = &prometheus::BuildHistogram()
                                .Name("herald_outbound_request_seconds")
                                .Help("Time from request to gateway answer")
                                .Register(r)
                                .Add({}, metrics::latency_buckets());
        pending_ = &prometheus::BuildGauge()
                        .Name("herald_outbound_pending")
                        .Help("Outbound deliveries queued, waiting to retry or in flight")
                        .Register(r)
                        .Add({});
        waiting_ = &prometheus::BuildGauge()
                        .Name("herald_outbound_waiting_broadcasts")
                        .Help(
                            "Outbound broadcasts waiting for the in-memory backlog to make room, per "
                            "outbound shard (a broadcast waits on every shard)")
                        .Register(r);
        subscribers_ = &prometheus::BuildGauge()
                            .Name("herald_outbound_subscribers")
                            .Help("Outbound subscribers in the in-memory registry index")
                            .Register(r)
                            .Add({});
    }

    void outcome(herald::v1::Channel channel, herald::v1::Outcome o) {
        const char* c = channel == herald::v1::CHANNEL_WHATSAPP ? "whatsapp"
                        : channel == herald::v1::CHANNEL_SMS    ? "sms"
                                                                : "webhook";
        const char* n = o == herald::v1::OUTCOME_SENT     ? "sent"
                        : o == herald::v1::OUTCOME_FAILED ? "failed"
                                                          : "suppressed";
        outcomes_[key(c, n)]->Increment();
    }
    void attempt(verdict v) { attempts_[static_cast<std::size_t>(v)]->Increment(); }
    void sender_paused() { paused_->Increment(); }
    void request_seconds(double s) { request_seconds_->Observe(s); }
    void pending(double n) { pending_->Increment(n); }
    /// Each shard's own gauge (created once, by its constructor).
    prometheus::Gauge& waiting_gauge(std::uint32_t shard) {
        return waiting_->Add({{"shard", std::to_string(shard)}});
    }
    void subscribers(double n) { subscribers_->Increment(n); }

  private:
    static std::string key(const char* a, const char* b) { return std::string(a) + "/" + b; }
    std::unordered_map<std::string, prometheus::Counter*> outcomes_;
    std::array<prometheus::Counter*, 6> attempts_{};
    prometheus::Counter* paused_;
    prometheus::Histogram* request_seconds_;
    prometheus::Gauge* pending_;
    prometheus::Family<prometheus::Gauge>* waiting_;
    prometheus::Gauge* subscribers_;
};

namespace {

std::string json_escape(std::string_view s) {
    std::string out;
    wire::append_json_string(out, s);
    return out;
}

}  // namespace

class outbound_router::shard {
  public:
    shard(const gateway_options& options, status_board& board, outbound_probe& probe,
          const outcome_handler& on_outcome, std::uint32_t index, checkpoints* cp)
        : options_(options),
          board_(board),
          probe_(probe),
          on_outcome_(on_outcome),
          checkpoints_(cp),
          tls_(asio::ssl::context::tls_client),
          delay_timer_(io_),
          max_pending_(
              std::max<std::uint64_t>(options.max_pending / std::max<std::uint32_t>(options.shards, 1), 1)),
          waiting_gauge_(probe.waiting_gauge(index)),
          rng_(std::random_device{}() + index) {
        tls_.set_default_verify_paths();
        tls_.set_verify_mode(options_.verify_tls ? asio::ssl::verify_peer : asio::ssl::verify_none);
    }

    void start() {
        thread_ = std::thread([this] {
            auto guard = asio::make_work_guard(io_);
            io_.run();
        });
    }
    void stop() {
        io_.stop();
        if (thread_.joinable())
            thread_.join();
    }

    void apply(std::shared_ptr<const herald::v1::Subscription> s) {
        asio::post(io_, [this, s = std::move(s)] { on_apply(*s); });
    }
    void forget(std::string id) {
        asio::post(io_, [this, id = std::move(id)] { on_forget(id); });
    }
    using done_set = std::shared_ptr<const std::unordered_set<std::string>>;

    void deliver(fanout::broadcast_ptr b, done_set done = {}) {
        asio::post(io_, [this, b = std::move(b), done = std::move(done)] { on_deliver(b, done); });
    }

    std::atomic<std::uint64_t> recipients{0};
    std::atomic<std::uint64_t> pending{0};  // written by the shard thread only
    std::atomic<std::uint64_t> waiting{0};  // written by the shard thread only

  private:
    struct lane;
    enum class lane_kind : std::uint8_t { webhook, whatsapp, sms };

    struct recipient {
        std::string id;
        std::string address;
        std::string target;
        herald::v1::Channel channel = herald::v1::CHANNEL_UNSPECIFIED;
        std::vector<std::string> audiences;  // sorted; empty when opted out
        std::int64_t last_inbound_wall_ns = 0;
        std::int64_t next_allowed_mono_ns = 0;
        std::uint32_t generation = 0;
        lane* route = nullptr;
        bool alive = false;

        [[nodiscard]] bool member_of(const std::string& audience) const {
            return std::binary_search(audiences.begin(), audiences.end(), audience);
        }
    };

    struct delivery {
        fanout::broadcast_ptr b;
        std::uint32_t slot = 0;
        std::uint32_t generation = 0;
        std::uint32_t attempts = 0;
        std::uint32_t pair_refusals = 0;
        std::uint64_t order = 0;
    };
    struct by_priority {
        bool operator()(const delivery& a, const delivery& b) const {
            if (a.b->priority != b.b->priority)
                return a.b->priority < b.b->priority;
            return a.order > b.order;
        }
    };

    struct lane {
        lane(asio::io_context& io, endpoint e, double rate, double burst, lane_kind k)
            : ep(std::move(e)),
              bucket(rate, burst, base::mono_now_ns()),
              timer(io),
              kind(k),
              whatsapp(k == lane_kind::whatsapp) {}
        endpoint ep;
        token_bucket bucket;
        std::priority_queue<delivery, std::vector<delivery>, by_priority> queue;
        std::vector<std::shared_ptr<http_connection>> idle;
        std::uint32_t open = 0;
        std::uint32_t inflight = 0;
        asio::steady_timer timer;
        bool timer_armed = false;
        lane_kind kind;
        bool whatsapp = false;
    };

    /// A broadcast not yet listed into deliveries because the shard's backlog
    /// is full; crisis first, then arrival order.
    struct waiting_broadcast {
        fanout::broadcast_ptr b;
        done_set done;
        std::uint64_t order = 0;
    };
    struct waiting_first {
        bool operator()(const waiting_broadcast& a, const waiting_broadcast& b) const {
            if (a.b->priority != b.b->priority)
                return a.b->priority < b.b->priority;
            return a.order > b.order;
        }
    };

    struct delayed {
        std::int64_t due_ns;
        lane* route;
        delivery d;
        bool operator>(const delayed& o) const { return due_ns > o.due_ns; }
    };

    // --- registry slice -------------------------------------------------

    /// The lane that reaches `r`, or nullptr when its channel has no gateway
    /// configured (its deliveries then fail with the reason, never silently).
    lane* lane_for(recipient& r) {
        std::optional<endpoint> ep;
        lane_kind kind = lane_kind::webhook;
        std::string key;
        double rate = options_.webhook_rate;
        double burst = options_.webhook_burst;
        if (r.channel == herald::v1::CHANNEL_WEBHOOK) {
            ep = parse_endpoint(r.address);
            if (!ep)
                return nullptr;
            r.target = ep->target;
            key = ep->key();
        } else if (r.channel == herald::v1::CHANNEL_WHATSAPP) {
            if (options_.whatsapp_phone_number_id.empty())
                return nullptr;
            ep = parse_endpoint(options_.whatsapp_base_url);
            if (!ep)
                return nullptr;
            std::string prefix = ep->target == "/" ? "" : ep->target;
            r.target = prefix + "/" + options_.whatsapp_api_version + "/" +
                       options_.whatsapp_phone_number_id + "/messages";
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
                     .emplace(key, std::make_unique<lane>(io_, std::move(*ep), rate / n,
                                                          std::max(1.0, burst / n), kind))
                     .first;
        }
        return it->second.get();
    }

    void leave_audiences(std::uint32_t slot, const recipient& r) {
        for (const auto& a : r.audiences) {
            auto m = members_.find(a);
            if (m == members_.end())
                continue;
            auto& v = m->second;
            if (auto pos = std::find(v.begin(), v.end(), slot); pos != v.end()) {
                *pos = v.back();
                v.pop_back();
            }
            if (v.empty())
                members_.erase(m);
        }
    }

    void on_apply(const herald::v1::Subscription& s) {
        std::uint32_t slot = 0;
        if (auto it = by_id_.find(s.recipient_id()); it != by_id_.end()) {
            slot = it->second;
            leave_audiences(slot, slots_[slot]);
        } else {
            if (!free_.empty()) {
                slot = free_.back();
                free_.pop_back();
            } else {
                slot = static_cast<std::uint32_t>(slots_.size());
                slots_.emplace_back();
            }
            by_id_.emplace(s.recipient_id(), slot);
            recipients.fetch_add(1, std::memory_order_relaxed);
            probe_.subscribers(1);
        }
        recipient& r = slots_[slot];
        r.alive = true;
        r.id = s.recipient_id();
        r.channel = s.channel();
        r.address = s.address();
        r.last_inbound_wall_ns = s.has_last_inbound_at() ? s.last_inbound_at().seconds() * 1'000'000'000 +
                                                               s.last_inbound_at().nanos()
                                                         : 0;
        r.route = lane_for(r);
        r.audiences.clear();
        if (!s.has_opted_out_at() && s.has_consent()) {
            r.audiences.assign(s.audiences().begin(), s.audiences().end());
            std::sort(r.audiences.begin(), r.audiences.end());
            r.audiences.erase(std::unique(r.audiences.begin(), r.audiences.end()), r.audiences.end());
            for (const auto& a : r.audiences) members_[a].push_back(slot);
        }
    }

    void on_forget(const std::string& id) {
        auto it = by_id_.find(id);
        if (it == by_id_.end())
            return;
        const std::uint32_t slot = it->second;
        recipient& r = slots_[slot];
        leave_audiences(slot, r);
        const auto generation = r.generation + 1;
        r = recipient{};
        r.generation = generation;  // deliveries still queued for the old one find nobody
        by_id_.erase(it);
        free_.push_back(slot);
        recipients.fetch_sub(1, std::memory_order_relaxed);
        probe_.subscribers(-1);
    }

    // --- delivery --------------------------------------------------------

    void on_deliver(const fanout::broadcast_ptr& b, const done_set& done) {
        const std::int64_t now = base::mono_now_ns();
        if (b->release_mono_ns > now + 1'000'000) {
            // deliver_at ahead: list the recipients at the release instant.
            auto timer = std::make_shared<asio::steady_timer>(io_);
            timer->expires_after(std::chrono::nanoseconds(b->release_mono_ns - now));
            timer->async_wait([this, b, done, timer](const beast::error_code& ec) {
                if (!ec)
                    admit_or_wait(b, done);
            });
            return;
        }
        admit_or_wait(b, done);
    }

    // --- bounded backlog ---------------------------------------------------
    //
    // Listing a broadcast turns it into one delivery per recipient, and at a
    // gateway's 80 messages/s those live for a long time. So a shard lists a
    // broadcast only while fewer than max_pending_ deliveries are held; the
    // rest wait as one pointer each, crisis first, and are listed as
    // deliveries finish. One broadcast is always listed whole, so the bound
    // is max_pending_ plus the largest audience. The waiting line itself is
    // bounded by the outbound consumer, which pauses its Kafka partitions
    // when too many broadcasts wait.

    void admit_or_wait(const fanout::broadcast_ptr& b, const done_set& done) {
        // At its release instant, not on arrival: one scheduled for tomorrow
        // must not supersede one due now.
        note_collapse_key(*b);
        waiting_.push(waiting_broadcast{b, done, next_order_++});
        waiting.fetch_add(1, std::memory_order_relaxed);
        waiting_gauge_.Increment();
        admit();
    }

    void admit() {
        while (!waiting_.empty() && pending.load(std::memory_order_relaxed) < max_pending_) {
            waiting_broadcast w = waiting_.top();
            waiting_.pop();
            waiting.fetch_sub(1, std::memory_order_relaxed);
            waiting_gauge_.Decrement();
            expand(w.b, w.done);
        }
    }

    /// After deliveries finished: list waiting broadcasts, outside the pump
    /// that finished them (listing pumps the lanes again).
    void admit_later() {
        if (waiting_.empty() || admit_posted_)
            return;
        admit_posted_ = true;
        asio::post(io_, [this] {
            admit_posted_ = false;
            admit();
        });
    }

    // --- collapse ----------------------------------------------------------
    //
    // A newer announcement with the same audience and collapse key supersedes
    // an older one for every recipient the older has not reached yet (a
    // ticker's 2:0 replaces its 1:0 still queued behind the rate limit).

    static std::string collapse_slot(const fanout::broadcast& b) {
        return b.audience + '\n' + b.collapse_key;
    }

    void note_collapse_key(const fanout::broadcast& b) {
        if (b.collapse_key.empty() || (b.expires_wall_ns != 0 && b.expires_wall_ns <= base::wall_now_ns()))
            return;  // an expired one replaces nothing
        if (newest_by_collapse_key_.size() >= max_collapse_keys)
            newest_by_collapse_key_.clear();  // forgetting only means an older one is still sent
        auto& newest = newest_by_collapse_key_[collapse_slot(b)];
        newest = std::max(newest, b.seq);
    }

    [[nodiscard]] bool superseded(const fanout::broadcast& b) const {
        if (b.collapse_key.empty())
            return false;
        const auto it = newest_by_collapse_key_.find(collapse_slot(b));
        return it != newest_by_collapse_key_.end() && it->second > b.seq;
    }

    void expand(const fanout::broadcast_ptr& b, const done_set& done) {
        auto m = members_.find(b->audience);
        if (m == members_.end()) {
            board_.expanded(b->id, b->tenant, 0);
            return;
        }
        std::size_t n = 0;
        std::vector<delivery> unreachable;
        for (const std::uint32_t slot : m->second) {
            recipient& r = slots_[slot];
            if (done && done->count(r.id) != 0)
                continue;  // finished before the restart
            delivery d{b, slot, r.generation, 0, 0, next_order_++};
            if (r.route != nullptr)
                r.route->queue.push(std::move(d));
            else
                unreachable.push_back(std::move(d));
            ++n;
        }
        pending.fetch_add(n, std::memory_order_relaxed);
        probe_.pending(static_cast<double>(n));
        board_.expanded(b->id, b->tenant, n);
        for (const delivery& d : unreachable) {
            const auto channel = slots_[d.slot].channel;
            finish(d, herald::v1::OUTCOME_FAILED,
                   std::string("no_gateway:") + (channel == herald::v1::CHANNEL_SMS        ? "sms"
                                                 : channel == herald::v1::CHANNEL_WHATSAPP ? "whatsapp"
                                                                                           : "webhook"),
                   false);
        }
        for (auto& [key, l] : lanes_) pump(*l);
    }

    void finish(const delivery& d, herald::v1::Outcome outcome, const std::string& reason, bool exhausted) {
        pending.fetch_sub(1, std::memory_order_relaxed);
        probe_.pending(-1);
        admit_later();
        const recipient* r = live(d);
        switch (outcome) {
            case herald::v1::OUTCOME_SENT:
                board_.sent(d.b->id, d.b->tenant);
                break;
            case herald::v1::OUTCOME_FAILED:
                board_.failed(d.b->id, d.b->tenant);
                break;
            default:
                board_.suppressed(d.b->id, d.b->tenant, reason);
                break;
        }
        if (r == nullptr)
            return;  // forgotten: no receipt or checkpoint may name them any more
        if (checkpoints_ != nullptr)
            checkpoints_->finished(checkpoints::key(d.b->tenant, d.b->id), r->id);
        probe_.outcome(r->channel, outcome);
        if (on_outcome_) {
            on_outcome_(outcome_event{*d.b, r->id, r->channel, outcome, reason, d.attempts, exhausted});
        }
    }

    recipient* live(const delivery& d) {
        recipient& r = slots_[d.slot];
        return r.alive && r.generation == d.generation ? &r : nullptr;
    }

    void pump(lane& l) {
        const std::int64_t now = base::mono_now_ns();
        const std::int64_t wall = base::wall_now_ns();
        while (!l.queue.empty() && l.inflight < options_.connections_per_endpoint) {
            const delivery& top = l.queue.top();
            recipient* r = live(top);
            std::string reason;
            if (r == nullptr) {
                reason = "forgotten";
            } else if (!r->member_of(top.b->audience)) {
                reason = "opted_out";
            } else if (top.b->expires_wall_ns != 0 && top.b->expires_wall_ns <= wall) {
                reason = "expired";
            } else if (superseded(*top.b)) {
                reason = "superseded";
            }
            if (!reason.empty()) {
                delivery d = top;
                l.queue.pop();
                finish(d, herald::v1::OUTCOME_SUPPRESSED, reason, false);
                continue;
            }
            if (now - top.b->release_mono_ns > options_.retry.max_age_ns) {
                delivery d = top;
                l.queue.pop();
                finish(d, herald::v1::OUTCOME_FAILED, "too_old", true);
                continue;
            }
            if (l.whatsapp && top.b->whatsapp_free_text &&
                wall - r->last_inbound_wall_ns > 24LL * 3600 * 1'000'000'000) {
                delivery d = top;
                l.queue.pop();
                finish(d, herald::v1::OUTCOME_FAILED, "outside_customer_service_window", false);
                continue;
            }
            if (r->next_allowed_mono_ns > now) {
                delivery d = top;
                l.queue.pop();
                delay(l, std::move(d), r->next_allowed_mono_ns);
                continue;
            }
            if (!l.bucket.available(now)) {
                arm(l, l.bucket.next_token_ns(now));
                break;
            }
            token_bucket* tenant = tenant_bucket(top.b->tenant);
            if (tenant != nullptr && !tenant->available(now)) {
                // The tenant is at its limit. Waiting here keeps this lane's
                // priority order (a set-aside delivery would come back by due
                // time, not priority); other tenants on this lane wait too.
                arm(l, tenant->next_token_ns(now));
                break;
            }
            if (tenant != nullptr)
                (void)tenant->try_take(now);
            (void)l.bucket.try_take(now);
            delivery d = top;
            l.queue.pop();
            r->next_allowed_mono_ns = now + options_.recipient_min_interval_ns;
            send(l, *r, std::move(d));
        }
    }

    token_bucket* tenant_bucket(const std::string& tenant) {
        if (options_.tenant_rate <= 0)
            return nullptr;
        auto it = tenants_.find(tenant);
        if (it == tenants_.end()) {
            const double n = std::max<std::uint32_t>(options_.shards, 1);
            const double burst = options_.tenant_burst > 0 ? options_.tenant_burst : options_.tenant_rate;
            it = tenants_
                     .emplace(tenant, token_bucket(options_.tenant_rate / n, std::max(1.0, burst / n),
                                                   base::mono_now_ns()))
                     .first;
        }
        return &it->second;
    }

    void arm(lane& l, std::int64_t at_ns) {
        if (l.timer_armed)
            return;
        l.timer_armed = true;
        l.timer.expires_after(
            std::chrono::nanoseconds(std::max<std::int64_t>(at_ns - base::mono_now_ns(), 0)));
        l.timer.async_wait([this, lp = &l](const beast::error_code& ec) {
            lp->timer_armed = false;
            if (!ec)
                pump(*lp);
        });
    }

    void delay(lane& l, delivery d, std::int64_t due_ns) {
        const bool earliest = delayed_.empty() || due_ns < delayed_.top().due_ns;
        delayed_.push(delayed{due_ns, &l, std::move(d)});
        if (earliest)
            arm_delay();
    }

    void arm_delay() {
        if (delayed_.empty())
            return;
        delay_timer_.expires_after(
            std::chrono::nanoseconds(std::max<std::int64_t>(delayed_.top().due_ns - base::mono_now_ns(), 0)));
        delay_timer_.async_wait([this](const beast::error_code& ec) {
            if (ec)
                return;
            const std::int64_t now = base::mono_now_ns();
            std::vector<lane*> touched;
            while (!delayed_.empty() && delayed_.top().due_ns <= now) {
                delayed top = delayed_.top();
                delayed_.pop();
                top.route->queue.push(std::move(top.d));
                touched.push_back(top.route);
            }
            for (lane* l : touched) pump(*l);
            arm_delay();
        });
    }

    http::request<http::string_body> build_request(const lane& l, const recipient& r, const delivery& d) {
        http::request<http::string_body> req{http::verb::post, r.target, 11};
        req.set(http::field::content_type, "application/json");
        req.set(http::field::user_agent, "herald/0.1");
        const fanout::broadcast& b = *d.b;
        const std::string id = delivery_id(b.tenant, b.id, r.id);
        req.set("idempotency-key", id);
        if (l.whatsapp) {
            std::string body = R"({"messaging_product":"whatsapp","recipient_type":"individual","to":)" +
                               json_escape(r.address);
            if (b.whatsapp_free_text) {
                body += R"(,"type":"text","text":{"body":)" + json_escape(b.text) + "}}";
            } else {
                body += R"(,"type":"template","template":{"name":)" +
                        json_escape(b.whatsapp_template.empty() ? options_.whatsapp_template
                                                                : b.whatsapp_template) +
                        R"(,"language":{"code":)" +
                        json_escape(b.whatsapp_language.empty() ? options_.whatsapp_language
                                                                : b.whatsapp_language) +
                        R"(},"components":[{"type":"body","parameters":[{"type":"text","text":)" +
                        json_escape(b.text) + "}]}]}}";
            }
            req.set(http::field::authorization, "Bearer " + options_.whatsapp_token);
            req.body() = std::move(body);
        } else {
            // The live frame's JSON with the recipient added: one shape for
            // every webhook; an SMS gateway also gets the number to text.
            std::string body = b.payload_json;
            body.pop_back();
            body += ",\"recipient_id\":" + json_escape(r.id);
            if (l.kind == lane_kind::sms)
                body += ",\"to\":" + json_escape(r.address);
            body += "}";
            const std::int64_t ts = base::wall_now_ns() / 1'000'000'000;
            req.set("webhook-id", id);
            req.set("webhook-timestamp", std::to_string(ts));
            if (!options_.webhook_secrets.empty()) {
                req.set("webhook-signature", webhook_signature(options_.webhook_secrets, id, ts, body));
            }
            req.body() = std::move(body);
        }
        return req;
    }

    void send(lane& l, recipient& r, delivery d) {
        ++d.attempts;
        ++l.inflight;
        std::shared_ptr<http_connection> conn;
        if (!l.idle.empty()) {
            conn = std::move(l.idle.back());
            l.idle.pop_back();
        } else {
            conn = std::make_shared<http_connection>(io_, tls_, l.ep,
                                                     std::chrono::nanoseconds(options_.connect_timeout_ns),
                                                     std::chrono::nanoseconds(options_.response_timeout_ns));
            ++l.open;
        }
        auto req = build_request(l, r, d);
        const std::int64_t started = base::mono_now_ns();
        conn->send(std::move(req),
                   [this, lp = &l, conn, d = std::move(d), started](http_reply reply) mutable {
                       --lp->inflight;
                       if (conn->connected()) {
                           lp->idle.push_back(conn);
                       } else {
                           --lp->open;
                       }
                       probe_.request_seconds(static_cast<double>(base::mono_now_ns() - started) * 1e-9);
                       on_reply(*lp, std::move(d), reply);
                       pump(*lp);
                   });
    }

    void on_reply(lane& l, delivery d, const http_reply& reply) {
        const reply_meaning m = reply.status == 0 ? transport_failure(reply.error)
                                : l.whatsapp
                                    ? classify_whatsapp_reply(reply.status, reply.body, reply.retry_after)
                                    : classify_webhook_reply(reply.status, reply.retry_after);
        probe_.attempt(m.what);
        const std::int64_t now = base::mono_now_ns();
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
                delay(l, std::move(d), now + backoff_ns(options_.retry, d.attempts, m.retry_after_ns, rng_));
                return;
            case verdict::throttled:
                // The whole sender is too fast: slow the lane, not just this one.
                --d.attempts;
                l.bucket.pause_until(now + std::max<std::int64_t>(m.retry_after_ns, 1'000'000'000));
                l.queue.push(std::move(d));
                return;
            case verdict::pair_limited:
                --d.attempts;
                ++d.pair_refusals;
                delay(l, std::move(d), now + std::max(pair_limit_wait_ns(d.pair_refusals), m.retry_after_ns));
                return;
            case verdict::sender_paused:
                --d.attempts;
                probe_.sender_paused();
                HERALD_LOG_WARN("outbound", "sender ", l.ep.key(), " refused as spam (", m.reason,
                                "): pausing it for ", options_.sender_pause_ns / 1'000'000'000, " s");
                l.bucket.pause_until(now + options_.sender_pause_ns);
                l.queue.push(std::move(d));
                return;
        }
    }

    const gateway_options& options_;
    status_board& board_;
    outbound_probe& probe_;
    const outcome_handler& on_outcome_;
    checkpoints* checkpoints_;
    asio::io_context io_{1};
    asio::ssl::context tls_;
    std::thread thread_;
    std::vector<recipient> slots_;
    std::vector<std::uint32_t> free_;
    std::unordered_map<std::string, std::uint32_t> by_id_;
    std::unordered_map<std::string, std::vector<std::uint32_t>> members_;
    std::unordered_map<std::string, std::unique_ptr<lane>> lanes_;
    std::unordered_map<std::string, token_bucket> tenants_;
    std::priority_queue<delayed, std::vector<delayed>, std::greater<>> delayed_;
    asio::steady_timer delay_timer_;
    std::uint64_t next_order_ = 0;
    std::uint64_t max_pending_;
    prometheus::Gauge& waiting_gauge_;
    std::priority_queue<waiting_broadcast, std::vector<waiting_broadcast>, waiting_first> waiting_;
    bool admit_posted_ = false;
    static constexpr std::size_t max_collapse_keys = 65536;
    std::unordered_map<std::string, std::uint64_t> newest_by_collapse_key_;
    std::mt19937_64 rng_;
};

outbound_router::outbound_router(const gateway_options& options, status_board& board,
                                 metrics::registry& metrics, outcome_handler on_outcome, checkpoints* cp)
    : options_(options),
      board_(board),
      probe_(std::make_unique<outbound_probe>(metrics)),
      on_outcome_(std::move(on_outcome)),
      checkpoints_(cp) {
    options_.shards = std::max<std::uint32_t>(options_.shards, 1);
    for (std::uint32_t i = 0; i < options_.shards; ++i) {
        shards_.push_back(std::make_unique<shard>(options_, board_, *probe_, on_outcome_, i, checkpoints_));
    }
}

outbound_router::~outbound_router() {
    stop();
}

void outbound_router::start() {
    for (auto& s : shards_) s->start();
}

void outbound_router::stop() {
    for (auto& s : shards_) s->stop();
}

namespace {
std::size_t shard_of(const std::string& recipient_id, std::size_t n) {
    return std::hash<std::string>{}(recipient_id) % n;
}
}  // namespace

void outbound_router::apply(const herald::v1::Subscription& s) {
    {
        // Audiences enter this set before their subscriber reaches a shard,
        // so a broadcast right after the subscription is not skipped.
        std::shared_lock read(audiences_mutex_);
        const bool known = std::all_of(s.audiences().begin(), s.audiences().end(),
                                       [&](const std::string& a) { return audiences_.count(a) != 0; });
        read.unlock();
        if (!known) {
            std::unique_lock write(audiences_mutex_);
            audiences_.insert(s.audiences().begin(), s.audiences().end());
        }
    }
    shards_[shard_of(s.recipient_id(), shards_.size())]->apply(
        std::make_shared<const herald::v1::Subscription>(s));
}

void outbound_router::forget(const std::string& recipient_id) {
    shards_[shard_of(recipient_id, shards_.size())]->forget(recipient_id);
}

bool outbound_router::interested(const std::string& audience) const {
    std::shared_lock read(audiences_mutex_);
    return audiences_.count(audience) != 0;
}

deliver_result outbound_router::deliver(const fanout::broadcast_ptr& b) {
    bool durable = true;
    const std::string key = checkpoints::key(b->tenant, b->id);
    if (checkpoints_ != nullptr) {
        auto r = checkpoints_->started(key, b->announcement_pb, b->seq);
        // A busy or briefly failing disk: try again before giving up on
        // crash safety (the outbound consumer waits meanwhile, Kafka buffers).
        for (int retry = 0; !r && retry < 2; ++retry) {  // 50 + 200 ms: little delay for a stop
            std::this_thread::sleep_for(std::chrono::milliseconds(50 << (2 * retry)));
            r = checkpoints_->started(key, b->announcement_pb, b->seq);
        }
        if (!r) {
            // Delivered anyway (nobody waits for a disk), but its offset must
            // not be committed: a restart consumes it again.
            HERALD_LOG_ERROR("outbound", "broadcast ", b->id, " is not crash-safe: ", r.err().detail);
            durable = false;
        } else if (!*r) {
            // Written down before: Kafka redelivered it (a crash or a
            // rebalance before the commit). Resumed or finished already.
            HERALD_LOG_INFO("outbound", "broadcast ", b->id, " is already known here; not sent again");
            return deliver_result::known;
        }
    }
    // The board before the flusher may look: it takes a broadcast it cannot
    // find there as long gone.
    board_.started(b->id, b->tenant, b->audience, static_cast<std::uint32_t>(shards_.size()),
                   options_.webhook_rate);
    if (checkpoints_ != nullptr && durable)
        checkpoints_->opened(key);
    for (auto& s : shards_) s->deliver(b);
    return durable ? deliver_result::written_down : deliver_result::not_durable;
}

void outbound_router::resume(const fanout::broadcast_ptr& b,
                             std::shared_ptr<const std::unordered_set<std::string>> done) {
    board_.started(b->id, b->tenant, b->audience, static_cast<std::uint32_t>(shards_.size()),
                   options_.webhook_rate);
    for (auto& s : shards_) s->deliver(b, done);
}

std::uint64_t outbound_router::recipients() const noexcept {
    std::uint64_t n = 0;
    for (const auto& s : shards_) n += s->recipients.load(std::memory_order_relaxed);
    return n;
}

std::uint64_t outbound_router::pending() const noexcept {
    std::uint64_t n = 0;
    for (const auto& s : shards_) n += s->pending.load(std::memory_order_relaxed);
    return n;
}

std::uint64_t outbound_router::waiting() const noexcept {
    // Every broadcast waits on every shard: the longest line is the count.
    std::uint64_t n = 0;
    for (const auto& s : shards_) n = std::max(n, s->waiting.load(std::memory_order_relaxed));
    return n;
}

}  // namespace herald::outbound
