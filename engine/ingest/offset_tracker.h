// At-least-once bookkeeping: which Kafka offsets may be committed.
//
// Broadcasts finish out of order (a held deliver_at one finishes late, an
// expired one at once), but a committed offset means "everything before this
// is done". Per partition the tracker keeps the offsets started and not yet
// finished; the committable position is the lowest unfinished offset, or one
// past the highest started when nothing is outstanding. Ingest thread only.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

namespace herald::ingest {

class offset_tracker {
  public:
    void started(std::int32_t partition, std::int64_t offset) {
        auto& p = partitions_[partition];
        p.outstanding.emplace(offset, false);
        p.next_after_started = std::max(p.next_after_started, offset + 1);
    }

    /// Marks an offset done; unknown offsets (revoked partition) are ignored.
    void finished(std::int32_t partition, std::int64_t offset) {
        auto it = partitions_.find(partition);
        if (it == partitions_.end()) {
            return;
        }
        auto o = it->second.outstanding.find(offset);
        if (o != it->second.outstanding.end()) {
            o->second = true;
        }
    }

    /// Positions (next offset to consume) that advanced since the last call.
    std::vector<std::pair<std::int32_t, std::int64_t>> take_committable() {
        std::vector<std::pair<std::int32_t, std::int64_t>> out;
        for (auto& [partition, p] : partitions_) {
            while (!p.outstanding.empty() && p.outstanding.begin()->second) {
                p.outstanding.erase(p.outstanding.begin());
            }
            const std::int64_t position =
                p.outstanding.empty() ? p.next_after_started : p.outstanding.begin()->first;
            if (position > p.committed) {
                p.committed = position;
                out.emplace_back(partition, position);
            }
        }
        return out;
    }

    /// Forgets a partition (revoked): its in-flight work is no longer ours to commit.
    void forget(std::int32_t partition) { partitions_.erase(partition); }

    [[nodiscard]] std::size_t outstanding() const {
        std::size_t n = 0;
        for (const auto& [_, p] : partitions_) {
            n += p.outstanding.size();
        }
        return n;
    }

  private:
    struct partition_state {
        std::map<std::int64_t, bool> outstanding;  // offset -> finished
        std::int64_t next_after_started = 0;
        std::int64_t committed = 0;
    };
    std::unordered_map<std::int32_t, partition_state> partitions_;
};

}  // namespace herald::ingest
