// From a validated announcement to the immutable broadcast every channel
// shares: ids, priority and instants taken over, the live JSON encoded once
// and wrapped once as a WebSocket frame and once as an SSE event, the
// protobuf kept for crash recovery. The one place an announcement's fields
// are interpreted, so live and outbound delivery cannot disagree about them.
#pragma once

#include <memory>

#include "herald/v1/announcement.pb.h"
#include "model/broadcast.h"

namespace herald::model {

/// Builds (and encodes) the broadcast of `a` at `seq` in `epoch` (empty:
/// none, outbound only). A deliver_at is mapped to the monotonic clock now;
/// without one the release is now.
[[nodiscard]] std::shared_ptr<broadcast> build_broadcast(const herald::v1::Announcement& a, seq_no seq,
                                                         kafka_position source, std::string_view epoch = {});

/// An announcement's wall instant from its protobuf timestamp.
[[nodiscard]] base::wall_time wall_of(const google::protobuf::Timestamp& t) noexcept;

}  // namespace herald::model
