// Why an announcement record was refused. Each name is used verbatim as the
// `reason` label of herald_announcements_rejected_total and as the
// herald-dlq-reason header on the dead-letter topic, so they are stable.
#pragma once

#include <system_error>

namespace herald::ingest {

enum class errc {
    malformed_json = 1,
    malformed_protobuf,
    missing_id,
    invalid_id,
    missing_audience,
    invalid_audience,
    missing_payload,
    payload_too_large,
    invalid_field,
    bad_timestamp,
};

[[nodiscard]] const std::error_category& ingest_category() noexcept;

[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), ingest_category()};
}

}  // namespace herald::ingest

template <>
struct std::is_error_code_enum<herald::ingest::errc> : std::true_type {};
