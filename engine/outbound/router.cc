#include "outbound/router.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "outbound/checkpoints.h"
#include "outbound/outbound_shard.h"
#include "outbound/probe.h"
#include "registry/subscription_codec.h"

namespace herald::outbound {

outbound_router::outbound_router(const gateway_options& options, status_board& board,
                                 metrics::registry& metrics, outcome_handler on_outcome, checkpoints* cp)
    : options_(options),
      board_(board),
      probe_(std::make_unique<probe>(metrics)),
      on_outcome_(std::move(on_outcome)),
      checkpoints_(cp) {
    options_.shards = std::max<std::uint32_t>(options_.shards, 1);
    for (std::uint32_t i = 0; i < options_.shards; ++i) {
        shards_.push_back(
            std::make_unique<outbound_shard>(options_, board_, *probe_, on_outcome_, i, checkpoints_));
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
std::size_t shard_of(const std::string& subscriber_key, std::size_t n) {
    return std::hash<std::string>{}(subscriber_key) % n;
}
}  // namespace

void outbound_router::apply(const herald::v1::Subscription& s) {
    const std::string tenant = s.tenant().empty() ? "default" : s.tenant();
    {
        // Audiences enter this set before their subscriber reaches a shard,
        // so a broadcast right after the subscription is not skipped.
        std::vector<std::string> scopes;
        for (const auto& a : s.audiences()) scopes.push_back(model::scope_of(tenant, a));
        std::shared_lock read(audiences_mutex_);
        const bool known = std::all_of(scopes.begin(), scopes.end(), [&](const std::string& scope) {
            return audiences_.count(scope) != 0;
        });
        read.unlock();
        if (!known) {
            std::unique_lock write(audiences_mutex_);
            audiences_.insert(scopes.begin(), scopes.end());
        }
    }
    shards_[shard_of(registry::subscriber_key(s), shards_.size())]->apply(
        std::make_shared<const herald::v1::Subscription>(s));
}

void outbound_router::forget(const std::string& subscriber_key) {
    shards_[shard_of(subscriber_key, shards_.size())]->forget(subscriber_key);
}

bool outbound_router::interested(const std::string& scope) const {
    std::shared_lock read(audiences_mutex_);
    return audiences_.count(scope) != 0;
}

deliver_result outbound_router::deliver(const model::broadcast_ptr& b) {
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
    track(b);
    for (auto& s : shards_) s->deliver(b);
    return durable ? deliver_result::written_down : deliver_result::not_durable;
}

void outbound_router::resume(const model::broadcast_ptr& b,
                             std::shared_ptr<const std::unordered_set<std::string>> done,
                             std::shared_ptr<const std::unordered_set<std::string>> unknown) {
    board_.started(b->id, b->tenant, b->audience, static_cast<std::uint32_t>(shards_.size()),
                   options_.webhook_rate);
    track(b);
    for (auto& s : shards_) s->deliver(b, done, unknown);
}

void outbound_router::track(const model::broadcast_ptr& b) {
    std::lock_guard lock(running_mutex_);
    running_[checkpoints::key(b->tenant, b->id)] = b;
    if (running_.size() >= next_sweep_) {
        std::erase_if(running_, [](const auto& r) { return r.second.expired(); });
        next_sweep_ = std::max<std::size_t>(1024, running_.size() * 2);
    }
}

outbound_router::cancel_result outbound_router::cancel(const std::string& tenant, const std::string& id) {
    model::broadcast_ptr b;
    {
        std::lock_guard lock(running_mutex_);
        const auto it = running_.find(checkpoints::key(tenant, id));
        if (it == running_.end())
            return board_.get(id, tenant) ? cancel_result::finished : cancel_result::unknown;
        b = it->second.lock();
        running_.erase(it);
    }
    const auto progress = board_.get(id, tenant);
    if (!b || (progress && progress->done()))
        return progress ? cancel_result::finished : cancel_result::unknown;
    b->cancelled.store(true, std::memory_order_relaxed);
    (void)board_.cancel(id, tenant);
    for (auto& s : shards_) s->cancel(b);
    return cancel_result::stopped;
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
