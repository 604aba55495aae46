// Broadcast: one announcement, encoded once, shared by every recipient.
//
// The dispatcher builds a Broadcast on the ingest thread, encodes its wire
// frames exactly once (one WebSocket frame, one SSE event), and hands the same
// immutable object to every shard. Recipients get a pointer to the same bytes:
// no per-recipient copy, encode or allocation. The only mutable part is the
// completion bookkeeping, written once per shard (never per recipient).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

namespace herald::fanout {

/// Where the announcement came from in Kafka, for committing once it is done.
struct kafka_position {
    std::int32_t partition = -1;
    std::int64_t offset = -1;
};

/// Why a broadcast ended without being written to anyone.
enum class broadcast_fate : std::uint8_t { delivered = 0, expired, superseded, cancelled };

struct broadcast {
    std::string id;
    std::string tenant;
    std::string audience;
    std::string collapse_key;
    std::uint64_t seq = 0;
    int priority = 2;  // herald.v1.Priority, unspecified mapped to normal
    /// Release instant on the monotonic clock; latency is measured from here.
    std::int64_t release_mono_ns = 0;
    /// Expiry on the wall clock; 0 = never.
    std::int64_t expires_wall_ns = 0;
    kafka_position source;
    /// Read back from Kafka at start-up for the recovery history only, never
    /// released: every announcement of its audience with seq above this was
    /// read back too (the partition's refill started there). 0 = a live one.
    std::uint64_t history_complete_after = 0;
    bool history_only = false;

    /// The encoded frames every recipient receives, byte for byte.
    std::string websocket_frame;
    std::string sse_frame;

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

    // Completion bookkeeping: each shard touches these once per broadcast.
    mutable std::atomic<std::uint32_t> shards_pending{0};
    mutable std::atomic<std::int64_t> first_write_mono_ns{std::numeric_limits<std::int64_t>::max()};
    mutable std::atomic<std::int64_t> last_write_mono_ns{0};
    mutable std::atomic<std::uint64_t> recipients{0};
    mutable std::atomic<std::uint8_t> fate{0};
};

using broadcast_ptr = std::shared_ptr<const broadcast>;

}  // namespace herald::fanout
