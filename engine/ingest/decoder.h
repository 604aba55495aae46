// Turns a Kafka record value into a validated herald.v1.Announcement, or
// says precisely why not. Everything a producer controls is checked here,
// before anything is allocated per recipient: syntax of ids and audiences,
// payload size, timestamps that make sense. An expires_at in the past is
// not an error (expiry is counted downstream, not dead-lettered). A record
// with `cancel` set is a cancel: only its target (cancel id, tenant, an
// optional audience) is checked, and it must carry no payload.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "herald/v1/announcement.pb.h"
#include "ingest/errc.h"

namespace herald::ingest {

struct limits {
    std::uint32_t max_payload_bytes = 65536;
    std::int64_t max_clock_skew_ns = 300LL * 1'000'000'000;
    std::int64_t max_deliver_ahead_ns = 7LL * 86400 * 1'000'000'000;
};

/// Decodes canonical protobuf JSON (`is_json`) or protobuf binary and
/// validates it against `lim` at wall time `now_wall_ns`.
[[nodiscard]] base::result<herald::v1::Announcement> decode_announcement(std::string_view value, bool is_json,
                                                                         const limits& lim,
                                                                         std::int64_t now_wall_ns);

/// "application/json", optionally with parameters ("; charset=utf-8"), any case.
[[nodiscard]] bool is_json_content_type(std::string_view header_value) noexcept;

}  // namespace herald::ingest
