#include "schedule/scheduler.h"

#include <algorithm>

#include "base/clock.h"
#include "base/log.h"

namespace herald::schedule {

scheduler::scheduler(std::unique_ptr<store> s, probe& p, std::chrono::nanoseconds lead)
    : store_(std::move(s)), probe_(p), lead_(lead) {
    const std::int64_t now = base::wall_now_ns();
    std::lock_guard lock(mutex_);
    for (auto& e : store_->scheduled()) {
        std::string k = key(e.tenant, e.id);
        slots_.emplace(std::move(k), slot{std::move(e), false});
    }
    for (auto& x : store_->ended(now)) ended_[key(x.tenant, x.id)] = {x.why, x.at_ns};
    publish_size();
}

scheduler::~scheduler() {
    stop();
}

void scheduler::start(release_handler on_release, std::chrono::milliseconds period) {
    on_release_ = std::move(on_release);
    loop_.every(period, [this] { tick(base::wall_now_ns()); });
    loop_.start();
}

void scheduler::stop() {
    loop_.stop();
}

void scheduler::publish_size() {
    probe_.set_scheduled(static_cast<double>(slots_.size()));
}

void scheduler::remember_ended(const std::string& k, ending why, std::int64_t at_ns) {
    ended_[k] = {why, at_ns};
    // Forget what is past the retention now and then, not on every call.
    if (at_ns < next_expiry_ns_)
        return;
    constexpr std::int64_t retention = std::chrono::nanoseconds(store::ended_retention).count();
    std::erase_if(ended_, [&](const auto& x) { return x.second.second < at_ns - retention; });
    next_expiry_ns_ = at_ns + retention / 60;
}

scheduler::added scheduler::add(const entry& e) {
    std::lock_guard lock(mutex_);
    const std::string k = key(e.tenant, e.id);
    if (slots_.count(k) != 0 || ended_.count(k) != 0)
        return added::known;
    auto written = store_->add(e);
    if (!written) {
        HERALD_LOG_ERROR("schedule", "cannot write broadcast ", e.id, " down: ", written.err().detail);
        return added::failed;
    }
    if (!*written)
        return added::known;
    slots_.emplace(k, slot{e, false});
    publish_size();
    return added::scheduled;
}

scheduler::cancel_result scheduler::cancel(const std::string& tenant, const std::string& id,
                                           std::string* audience) {
    const std::int64_t now = base::wall_now_ns();
    std::lock_guard lock(mutex_);
    const std::string k = key(tenant, id);
    const auto it = slots_.find(k);
    if (it == slots_.end()) {
        if (const auto e = ended_.find(k); e != ended_.end() && e->second.first == ending::cancelled)
            return cancel_result::already;
    }
    // Durable before anything else: an outbound broadcast is not resumed
    // after a restart once this is written.
    if (auto r = store_->end(tenant, id, ending::cancelled, now); !r)
        HERALD_LOG_ERROR("schedule", "cannot write the cancel of ", id, " down: ", r.err().detail);
    remember_ended(k, ending::cancelled, now);
    if (it == slots_.end())
        return cancel_result::unknown;
    const bool released = it->second.released;
    if (audience != nullptr)
        *audience = it->second.e.audience;
    slots_.erase(it);
    publish_size();
    probe_.cancelled();
    return released ? cancel_result::released : cancel_result::waiting;
}

void scheduler::done(const std::string& tenant, const std::string& id, bool delivered) {
    const std::int64_t now = base::wall_now_ns();
    std::lock_guard lock(mutex_);
    const std::string k = key(tenant, id);
    const auto it = slots_.find(k);
    if (it == slots_.end())
        return;  // cancelled meanwhile
    if (!delivered) {
        it->second.released = false;
        return;
    }
    if (auto r = store_->end(tenant, id, ending::released, now); !r) {
        // Left in the store: released again after a restart (at least once).
        HERALD_LOG_ERROR("schedule", "cannot remove released broadcast ", id, ": ", r.err().detail);
    }
    remember_ended(k, ending::released, now);
    slots_.erase(it);
    publish_size();
    probe_.released();
}

std::optional<ending> scheduler::ended(const std::string& tenant, const std::string& id) const {
    std::lock_guard lock(mutex_);
    const auto it = ended_.find(key(tenant, id));
    if (it == ended_.end())
        return std::nullopt;
    return it->second.first;
}

std::optional<entry> scheduler::find(const std::string& tenant, const std::string& id) const {
    std::lock_guard lock(mutex_);
    const auto it = slots_.find(key(tenant, id));
    if (it == slots_.end())
        return std::nullopt;
    return it->second.e;
}

std::vector<entry> scheduler::list() const {
    std::vector<entry> out;
    {
        std::lock_guard lock(mutex_);
        out.reserve(slots_.size());
        for (const auto& [k, s] : slots_) {
            entry e = s.e;
            e.announcement.clear();
            out.push_back(std::move(e));
        }
    }
    std::sort(out.begin(), out.end(), [](const entry& a, const entry& b) {
        return a.deliver_at_ns != b.deliver_at_ns ? a.deliver_at_ns < b.deliver_at_ns
               : a.tenant != b.tenant             ? a.tenant < b.tenant
                                                  : a.id < b.id;
    });
    return out;
}

std::size_t scheduler::size() const {
    std::lock_guard lock(mutex_);
    return slots_.size();
}

void scheduler::tick(std::int64_t now_wall_ns) {
    std::vector<entry> due;
    {
        std::lock_guard lock(mutex_);
        for (auto& [k, s] : slots_) {
            if (!s.released && s.e.deliver_at_ns - lead_.count() <= now_wall_ns) {
                s.released = true;
                due.push_back(s.e);
            }
        }
    }
    std::sort(due.begin(), due.end(),
              [](const entry& a, const entry& b) { return a.deliver_at_ns < b.deliver_at_ns; });
    for (const entry& e : due) {
        if (on_release_)
            on_release_(e);
    }
}

}  // namespace herald::schedule
