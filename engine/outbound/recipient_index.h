// One outbound shard's slice of the registry: the subscribers hashed to it
// ((tenant, recipient) -> channel, address, audiences) and, per audience of
// a tenant (model::scope_of), who is in it: a tenant's broadcast never
// lists another tenant's subscriber, whatever the names. Deliveries name a recipient by slot and generation,
// so a delivery queued for a person who was forgotten meanwhile finds nobody rather than whoever took the
// slot next. Owned by one shard thread; nothing is locked.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "herald/v1/subscription.pb.h"
#include "outbound/webhook_signature.h"

namespace herald::outbound {

struct lane;  // the outbound shard's route to a gateway endpoint

struct recipient {
    std::string id;      // the tenant's recipient_id
    std::string tenant;  // the subscriber is (tenant, id)
    std::string key;     // registry::subscriber_key(tenant, id)
    std::string address;
    std::string target;  // request target at the gateway (set with the route)
    /// The subscription's own webhook_secret, decoded: signs its webhooks
    /// instead of the global secrets. Empty: the global ones.
    std::vector<webhook_secret> webhook_secrets;
    herald::v1::Channel channel = herald::v1::CHANNEL_UNSPECIFIED;
    std::vector<std::string> audiences;  // sorted; empty when opted out
    base::wall_time last_inbound;        // opens WhatsApp's 24-hour window; epoch = never
    base::mono_time next_allowed;        // the pair limit: nothing to them before this
    std::uint32_t generation = 0;
    lane* route = nullptr;  // nullptr: no gateway for the channel
    bool alive = false;

    [[nodiscard]] bool member_of(const std::string& audience) const {
        return std::binary_search(audiences.begin(), audiences.end(), audience);
    }
};

class recipient_index {
  public:
    using slot = std::uint32_t;

    /// Takes over a subscription: a new recipient or a changed one (its
    /// audiences replaced; none while opted out or without consent).
    /// Returns its slot and whether it is new.
    std::pair<slot, bool> apply(const herald::v1::Subscription& s);
    /// Forgets a subscriber by key (tenant/recipient_id); false when unknown.
    bool forget(const std::string& key);

    [[nodiscard]] recipient& at(slot s) noexcept { return slots_[s]; }
    /// The recipient a delivery was made for, or nullptr when forgotten since.
    [[nodiscard]] recipient* live(slot s, std::uint32_t generation) noexcept {
        recipient& r = slots_[s];
        return r.alive && r.generation == generation ? &r : nullptr;
    }
    /// The slots of the members of a tenant's audience (its scope, see
    /// model::scope_of), or nullptr when it has none here.
    [[nodiscard]] const std::vector<slot>* members(const std::string& scope) const;
    [[nodiscard]] std::size_t size() const noexcept { return by_id_.size(); }

  private:
    void leave_audiences(slot s, const recipient& r);

    std::vector<recipient> slots_;
    std::vector<slot> free_;
    std::unordered_map<std::string, slot> by_id_;
    std::unordered_map<std::string, std::vector<slot>> members_;  // by scope
};

}  // namespace herald::outbound
