#include "outbound/schedule.h"

namespace herald::outbound {

decision decide(const delivery& d, const recipient* r, lane_kind kind, token_bucket& lane_bucket,
                tenant_view tenant, bool superseded, const schedule_rules& rules, base::mono_time now,
                base::wall_time wall) {
    const model::broadcast& b = *d.b;
    if (r == nullptr)
        return {step::suppress, "forgotten", false, {}};
    if (b.cancelled.load(std::memory_order_relaxed))
        return {step::suppress, "cancelled", false, {}};
    if (!r->member_of(b.audience))
        return {step::suppress, "opted_out", false, {}};
    if (b.expired_at(wall))
        return {step::suppress, "expired", false, {}};
    if (superseded)
        return {step::suppress, "superseded", false, {}};
    if (now - b.release_at > rules.max_age)
        return {step::fail, "too_old", true, {}};
    if (kind == lane_kind::whatsapp && b.whatsapp_free_text && wall - r->last_inbound > rules.whatsapp_window)
        return {step::fail, "outside_customer_service_window", false, {}};
    if (r->next_allowed > now)
        return {step::wait_recipient, {}, false, r->next_allowed};
    const std::int64_t now_ns = base::to_ns(now);
    if (!lane_bucket.available(now_ns))
        return {step::wait_lane, {}, false, base::mono_from_ns(lane_bucket.next_token_ns(now_ns))};
    if (tenant.bucket != nullptr && (tenant.others_waiting || !tenant.bucket->available(now_ns)))
        return {step::wait_tenant, {}, false, base::mono_from_ns(tenant.bucket->next_token_ns(now_ns))};
    return {step::send, {}, false, {}};
}

}  // namespace herald::outbound
