// Broadcast: one announcement, encoded once, shared by every recipient.
//
// Built once per announcement (build_broadcast, on the consumer thread), its
// wire frames encoded exactly once (one WebSocket frame, one SSE event), the
// same immutable object is handed to every live shard and every outbound
// shard. Recipients get a pointer to the same bytes: no per-recipient copy,
// encode or allocation. The only mutable part is the live completion
// bookkeeping, written once per shard (never per recipient).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "model/fundamental.h"

namespace herald::model {

/// Why a broadcast ended without being written to anyone.
enum class broadcast_fate : std::uint8_t { delivered = 0, expired, superseded, cancelled };

/// The live shards' completion bookkeeping: each shard touches it once per
/// broadcast, the last one reports the broadcast done.
struct live_progress {
    std::atomic<std::uint32_t> shards_pending{0};
    std::atomic<std::int64_t> first_write_mono_ns{std::numeric_limits<std::int64_t>::max()};
    std::atomic<std::int64_t> last_write_mono_ns{0};
    std::atomic<std::uint64_t> recipients{0};
    std::atomic<std::uint8_t> fate{0};

    [[nodiscard]] broadcast_fate final_fate() const noexcept {
        return static_cast<broadcast_fate>(fate.load(std::memory_order_relaxed));
    }
};

/// The key of an audience within its tenant: tenants are isolated by
/// keying everything per audience (indexes, histories, collapse slots,
/// outbound members) with this, never with the bare name.
[[nodiscard]] inline std::string scope_of(std::string_view tenant, std::string_view audience) {
    std::string s;
    s.reserve(tenant.size() + 1 + audience.size());
    s.append(tenant).push_back('\x1f');
    s.append(audience);
    return s;
}

struct broadcast {
    std::string id;
    std::string tenant;
    std::string audience;
    /// scope_of(tenant, audience), computed once.
    std::string scope;
    std::string collapse_key;
    seq_no seq;
    /// The sequence space `seq` belongs to (model/position.h); empty for
    /// outbound-only broadcasts.
    std::string epoch;
    int priority = 2;  // herald.v1.Priority, unspecified mapped to normal
    /// Release instant; latency is measured from here.
    base::mono_time release_at;
    /// Expiry; the epoch (wall_time{}) = never.
    base::wall_time expires_at;
    kafka_position source;
    /// Read back from Kafka at start-up for the recovery history only, never
    /// released: every announcement of its audience with seq above this was
    /// read back too (the partition's refill started there).
    seq_no history_complete_after;
    bool history_only = false;
    /// It had a deliver_at: released at that instant, possibly after
    /// announcements with higher seqs (recovery follows release order).
    bool scheduled = false;
    /// Released from the live schedule store: its Kafka offset was finished
    /// when it was written there, so its completion removes it from the
    /// store instead of committing anything.
    bool from_schedule = false;

    /// The encoded frames every recipient receives, byte for byte.
    std::string websocket_frame;
    /// "id: AUDIENCE:EPOCH:SEQ\n" (one-audience connections take it whole)...
    std::string sse_frame;
    /// ...where its data lines start: a connection of several audiences
    /// writes its own id line (all its positions), then the shared rest.
    std::uint32_t sse_body_offset = 0;

    [[nodiscard]] std::string_view sse_body() const noexcept {
        return std::string_view(sse_frame).substr(sse_body_offset);
    }

    /// For outbound gateways: the live frame's JSON object, the text payload,
    /// and the WhatsApp template choice from the labels "whatsapp.template",
    /// "whatsapp.language" and "whatsapp.type" ("text": free text, only inside
    /// the 24-hour customer-service window).
    std::string payload_json;
    /// The announcement itself (protobuf binary), so an interrupted outbound
    /// broadcast can be rebuilt after a restart.
    std::string announcement_pb;
    std::string text;
    std::string whatsapp_template;
    std::string whatsapp_language;
    bool whatsapp_free_text = false;

    [[nodiscard]] bool expires() const noexcept { return expires_at != base::wall_time{}; }
    [[nodiscard]] bool expired_at(base::wall_time now) const noexcept {
        return expires() && expires_at <= now;
    }

    mutable live_progress live;
    /// Set once by a cancel record (any thread): outbound shards suppress its
    /// remaining deliveries ("cancelled"); a live shard that dropped it for
    /// this reason lets its offset be committed (a drain's cancel does not).
    mutable std::atomic<bool> cancelled{false};
};

using broadcast_ptr = std::shared_ptr<const broadcast>;

}  // namespace herald::model
