// Sequence numbers per audience. An audience's announcements share one Kafka
// partition (record key = audience), so the partition offset is already a
// durable, increasing per-audience position: seq = offset + 1, raised if
// needed to stay strictly above the audience's previous seq (covers
// producers that did not key by audience). Sequence numbers are therefore
// increasing but not dense, and the same on every instance.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "model/fundamental.h"

namespace herald::model {

/// The seq an announcement at `offset` gets when nothing raised it.
[[nodiscard]] inline seq_no seq_at(kafka_offset offset) noexcept {
    return seq_no(static_cast<std::uint64_t>(std::max<std::int64_t>(offset.get(), 0)) + 1);
}

/// A record read again from the partition that carried the audience's last
/// one (a partition assigned again, a history read-back) keeps offset + 1,
/// the seq it had the first time — unless it had been raised (an audience
/// whose records came from several partitions). One per consumer thread.
class audience_sequencer {
  public:
    seq_no next(const std::string& audience, kafka_position at) {
        const seq_no natural = seq_at(at.offset);
        position& last = last_[audience];
        if (last.seq.get() != 0 && at.partition == last.at.partition && at.offset <= last.at.offset)
            return natural;  // read again: the same seq as before
        last.seq = std::max(seq_no(last.seq.get() + 1), natural);
        last.at = at;
        return last.seq;
    }

  private:
    struct position {
        seq_no seq;
        kafka_position at;
    };
    std::unordered_map<std::string, position> last_;
};

}  // namespace herald::model
