#include "outbound/recipient_index.h"

#include "model/broadcast.h"
#include "registry/subscription_codec.h"

namespace herald::outbound {

std::pair<recipient_index::slot, bool> recipient_index::apply(const herald::v1::Subscription& s) {
    slot at = 0;
    bool created = false;
    std::string key = registry::subscriber_key(s);
    if (auto it = by_id_.find(key); it != by_id_.end()) {
        at = it->second;
        leave_audiences(at, slots_[at]);
    } else {
        if (!free_.empty()) {
            at = free_.back();
            free_.pop_back();
        } else {
            at = static_cast<slot>(slots_.size());
            slots_.emplace_back();
        }
        by_id_.emplace(key, at);
        created = true;
    }
    recipient& r = slots_[at];
    r.alive = true;
    r.id = s.recipient_id();
    r.tenant = s.tenant().empty() ? "default" : s.tenant();
    r.key = std::move(key);
    r.channel = s.channel();
    r.address = s.address();
    r.webhook_secrets.clear();
    if (!s.webhook_secret().empty()) {
        // Validated by the registry (validate_subscription): it parses.
        if (auto own = parse_webhook_secrets(s.webhook_secret()))
            r.webhook_secrets = std::move(*own);
    }
    r.last_inbound =
        s.has_last_inbound_at()
            ? base::wall_from_ns(s.last_inbound_at().seconds() * 1'000'000'000 + s.last_inbound_at().nanos())
            : base::wall_time{};
    r.audiences.clear();
    if (!s.has_opted_out_at() && s.has_consent()) {
        r.audiences.assign(s.audiences().begin(), s.audiences().end());
        std::sort(r.audiences.begin(), r.audiences.end());
        r.audiences.erase(std::unique(r.audiences.begin(), r.audiences.end()), r.audiences.end());
        for (const auto& a : r.audiences) members_[model::scope_of(r.tenant, a)].push_back(at);
    }
    return {at, created};
}

bool recipient_index::forget(const std::string& key) {
    auto it = by_id_.find(key);
    if (it == by_id_.end())
        return false;
    const slot at = it->second;
    recipient& r = slots_[at];
    leave_audiences(at, r);
    const auto generation = r.generation + 1;
    r = recipient{};
    r.generation = generation;  // deliveries still queued for the old one find nobody
    by_id_.erase(it);
    free_.push_back(at);
    return true;
}

const std::vector<recipient_index::slot>* recipient_index::members(const std::string& scope) const {
    const auto it = members_.find(scope);
    return it == members_.end() ? nullptr : &it->second;
}

void recipient_index::leave_audiences(slot s, const recipient& r) {
    for (const auto& a : r.audiences) {
        auto m = members_.find(model::scope_of(r.tenant, a));
        if (m == members_.end())
            continue;
        auto& v = m->second;
        if (auto pos = std::find(v.begin(), v.end(), s); pos != v.end()) {
            *pos = v.back();
            v.pop_back();
        }
        if (v.empty())
            members_.erase(m);
    }
}

}  // namespace herald::outbound
