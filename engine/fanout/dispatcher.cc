#include "fanout/dispatcher.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/clock.h"
#include "wire/frame_codec.h"

namespace herald::fanout {
namespace {

std::int64_t to_ns(const google::protobuf::Timestamp& t) {
    return t.seconds() * 1'000'000'000 + t.nanos();
}

}  // namespace

dispatcher::dispatcher(std::vector<shard*> shards, probe& probe, completion_handler on_complete)
    : shards_(std::move(shards)), probe_(probe), on_complete_(std::move(on_complete)) {}

std::shared_ptr<broadcast> dispatcher::build(const herald::v1::Announcement& a, std::uint64_t seq,
                                             kafka_position source) {
    auto b = std::make_shared<broadcast>();
    b->id = a.id();
    b->tenant = a.tenant().empty() ? "default" : a.tenant();
    b->audience = a.audience();
    b->collapse_key = a.collapse_key();
    b->seq = seq;
    b->priority =
        a.priority() == herald::v1::PRIORITY_UNSPECIFIED ? herald::v1::PRIORITY_NORMAL : a.priority();
    b->source = source;
    b->expires_wall_ns = a.has_expires_at() ? to_ns(a.expires_at()) : 0;
    b->release_mono_ns =
        a.has_deliver_at() ? base::wall_to_mono_ns(to_ns(a.deliver_at())) : base::mono_now_ns();

    std::string json = wire::encode_live_json(a, seq);
    b->websocket_frame = wire::websocket_frame(wire::ws_opcode::text, json);
    b->sse_frame = wire::sse_event(seq, json);
    b->payload_json = std::move(json);
    b->announcement_pb = a.SerializeAsString();
    b->text = a.text();
    if (const auto it = a.labels().find("whatsapp.template"); it != a.labels().end())
        b->whatsapp_template = it->second;
    if (const auto it = a.labels().find("whatsapp.language"); it != a.labels().end())
        b->whatsapp_language = it->second;
    if (const auto it = a.labels().find("whatsapp.type"); it != a.labels().end())
        b->whatsapp_free_text = it->second == "text";
    return b;
}

broadcast_ptr dispatcher::publish(const herald::v1::Announcement& a, kafka_position source) {
    const std::uint64_t seq = sequencer_.next(a.audience(), source.offset, source.partition);

    auto b = build(a, seq, source);
    if (b->expires_wall_ns != 0 && b->expires_wall_ns <= base::wall_now_ns()) {
        b->fate.store(static_cast<std::uint8_t>(broadcast_fate::expired), std::memory_order_relaxed);
        b->shards_pending.store(0, std::memory_order_relaxed);
        broadcast_ptr done = b;
        on_shard_done(done);
        return done;
    }
    b->shards_pending.store(static_cast<std::uint32_t>(shards_.size()), std::memory_order_release);
    broadcast_ptr shared = b;
    for (shard* s : shards_) {
        while (!s->try_enqueue(shared)) {
            if (stopping_.load(std::memory_order_acquire)) {
                // Shutting down with a full queue: the shard will never see
                // it; count it done for this shard so completion still fires.
                if (shared->shards_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                    on_shard_done(shared);
                }
                break;
            }
            probe_.dispatcher_waited();
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    return shared;
}

void dispatcher::remember(const herald::v1::Announcement& a, kafka_position source,
                          std::int64_t refill_from_offset) {
    const std::uint64_t seq = sequencer_.next(a.audience(), source.offset, source.partition);
    auto b = build(a, seq, source);
    const std::int64_t now_wall = base::wall_now_ns();
    if ((b->expires_wall_ns != 0 && b->expires_wall_ns <= now_wall) ||
        b->release_mono_ns > base::mono_now_ns())
        return;
    // Its age in the history counts from when it went out, not from now.
    if (!a.has_deliver_at() && a.has_created_at())
        b->release_mono_ns = std::min(base::wall_to_mono_ns(to_ns(a.created_at())), base::mono_now_ns());
    b->history_only = true;
    // Offsets from refill_from_offset on were read back; seq = offset + 1.
    b->history_complete_after = static_cast<std::uint64_t>(std::max<std::int64_t>(refill_from_offset, 0));
    const broadcast_ptr shared = b;
    for (shard* s : shards_) {
        while (!s->try_enqueue(shared) && !stopping_.load(std::memory_order_acquire)) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
}

void dispatcher::on_shard_done(const broadcast_ptr& b) {
    switch (static_cast<broadcast_fate>(b->fate.load(std::memory_order_relaxed))) {
        case broadcast_fate::delivered: {
            probe_.broadcast_delivered();
            const auto first = b->first_write_mono_ns.load(std::memory_order_relaxed);
            const auto last = b->last_write_mono_ns.load(std::memory_order_relaxed);
            if (b->recipients.load(std::memory_order_relaxed) != 0 && last >= first) {
                probe_.observe_spread_seconds(static_cast<double>(last - first) * 1e-9);
            }
            break;
        }
        case broadcast_fate::expired:
            probe_.dropped_expired();
            break;
        case broadcast_fate::superseded:
            probe_.dropped_superseded();
            break;
        case broadcast_fate::cancelled:
            probe_.dropped_cancelled();
            break;
    }
    if (on_complete_) {
        on_complete_(b);
    }
}

}  // namespace herald::fanout
