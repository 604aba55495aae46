// Where a live client stands in each of its audiences, and the epoch that
// makes such a position mean something across restarts.
//
// Sequence numbers are per audience (seq = Kafka offset + 1 of the
// audience's partition), so a client of several audiences has one position
// per audience: `AUDIENCE:EPOCH:SEQ`, joined with ',' for several. The epoch
// names the sequence space a seq belongs to: a hash of the Kafka cluster id,
// the topic and the partition, so it is the same on every instance and
// across Herald restarts, and changes when the space restarts (the embedded
// cluster gets a new id at every start; a topic on another cluster). A
// position from another epoch cannot be compared with the current one: the
// client is told `gap`. Audience names may contain ':' but never ',', so a
// position is parsed from the right.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/fundamental.h"

namespace herald::model {

/// The epoch of a partition's sequence space: 16 lowercase hex digits.
[[nodiscard]] std::string epoch_of(std::string_view cluster_id, std::string_view topic,
                                   std::int32_t partition);

/// One audience's position. An empty audience and epoch: the bare `SEQ` of
/// a one-audience connection (the form before epochs existed).
struct audience_position {
    std::string audience;
    std::string epoch;
    seq_no seq;

    friend bool operator==(const audience_position&, const audience_position&) = default;
};

/// Parses `since=` / SSE `Last-Event-ID`: `SEQ`, or `A:EPOCH:SEQ[,B:EPOCH:SEQ...]`
/// (at most `max_positions`). The error's detail says what is wrong, for a 400.
[[nodiscard]] base::result<std::vector<audience_position>> parse_positions(std::string_view text,
                                                                           std::size_t max_positions);

/// `A:EPOCH:SEQ`, appended to `out`.
void append_position(std::string& out, std::string_view audience, std::string_view epoch, seq_no seq);

}  // namespace herald::model
