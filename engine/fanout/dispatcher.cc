#include "fanout/dispatcher.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/clock.h"
#include "model/build.h"

namespace herald::fanout {

dispatcher::dispatcher(std::vector<shard*> shards, probe& probe, completion_handler on_complete)
    : shards_(std::move(shards)), probe_(probe), on_complete_(std::move(on_complete)) {}

model::broadcast_ptr dispatcher::publish(const herald::v1::Announcement& a, model::kafka_position source,
                                         std::string_view epoch) {
    return release(model::build_broadcast(a, sequencer_.next(a.audience(), source), source, epoch));
}

model::broadcast_ptr dispatcher::publish(const herald::v1::Announcement& a, model::kafka_position source,
                                         model::seq_no seq, std::string_view epoch) {
    return release(model::build_broadcast(a, seq, source, epoch));
}

model::broadcast_ptr dispatcher::release(std::shared_ptr<model::broadcast> b) {
    if (b->expired_at(base::wall_now())) {
        b->live.fate.store(static_cast<std::uint8_t>(model::broadcast_fate::expired),
                           std::memory_order_relaxed);
        model::broadcast_ptr done = b;
        on_shard_done(done);
        return done;
    }
    b->live.shards_pending.store(static_cast<std::uint32_t>(shards_.size()), std::memory_order_release);
    model::broadcast_ptr shared = b;
    for (shard* s : shards_) {
        while (!s->try_enqueue(shared)) {
            if (stopping_.load(std::memory_order_acquire)) {
                // Shutting down with a full queue: the shard will never see
                // it; count it done for this shard so completion still fires.
                if (shared->live.shards_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
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

void dispatcher::remember(const herald::v1::Announcement& a, model::kafka_position source,
                          model::kafka_offset refill_from, std::string_view epoch) {
    auto b = model::build_broadcast(a, sequencer_.next(a.audience(), source), source, epoch);
    if (b->expired_at(base::wall_now()) || b->release_at > base::mono_now())
        return;
    // Its age in the history counts from when it went out, not from now.
    if (!a.has_deliver_at() && a.has_created_at())
        b->release_at = std::min(base::to_mono(model::wall_of(a.created_at())), base::mono_now());
    b->history_only = true;
    // Offsets from refill_from on were read back; seq = offset + 1.
    b->history_complete_after =
        model::seq_no(static_cast<std::uint64_t>(std::max<std::int64_t>(refill_from.get(), 0)));
    const model::broadcast_ptr shared = b;
    for (shard* s : shards_) {
        while (!s->try_enqueue(shared) && !stopping_.load(std::memory_order_acquire)) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
}

bool dispatcher::queues_empty() const noexcept {
    return std::all_of(shards_.begin(), shards_.end(), [](const shard* s) { return s->queue_depth() == 0; });
}

void dispatcher::on_shard_done(const model::broadcast_ptr& b) {
    const model::live_progress& live = b->live;
    switch (live.final_fate()) {
        case model::broadcast_fate::delivered: {
            probe_.broadcast_delivered();
            const auto first = live.first_write_mono_ns.load(std::memory_order_relaxed);
            const auto last = live.last_write_mono_ns.load(std::memory_order_relaxed);
            if (live.recipients.load(std::memory_order_relaxed) != 0 && last >= first) {
                probe_.observe_spread_seconds(static_cast<double>(last - first) * 1e-9);
            }
            break;
        }
        case model::broadcast_fate::expired:
            probe_.dropped_expired();
            break;
        case model::broadcast_fate::superseded:
            probe_.dropped_superseded();
            break;
        case model::broadcast_fate::cancelled:
            probe_.dropped_cancelled();
            break;
    }
    if (on_complete_) {
        on_complete_(b);
    }
}

}  // namespace herald::fanout
