// The small value types every subsystem passes to another: where a record
// sits in Kafka and where an announcement sits in its audience's sequence.
// Each is its own type (no runtime cost) so that an offset handed where a
// sequence number is expected, or a partition where a shard index is, does
// not compile. Times are base::mono_time and base::wall_time.
#pragma once

#include <cstdint>

#include "base/strong_id.h"

namespace herald::model {

/// A partition of a Kafka topic.
using kafka_partition = base::named_type<std::int32_t, struct kafka_partition_tag>;
/// A record's offset within its partition.
using kafka_offset = base::named_type<std::int64_t, struct kafka_offset_tag>;
/// An announcement's position in its audience: increasing, not dense, what
/// live clients resume from (`since=`) and what collapse keys compare.
using seq_no = base::named_type<std::uint64_t, struct seq_no_tag>;

/// Where an announcement came from in Kafka, for committing once it is done.
struct kafka_position {
    kafka_partition partition{-1};
    kafka_offset offset{-1};

    [[nodiscard]] bool known() const noexcept { return partition.get() >= 0 && offset.get() >= 0; }
    friend bool operator==(const kafka_position&, const kafka_position&) = default;
};

}  // namespace herald::model
