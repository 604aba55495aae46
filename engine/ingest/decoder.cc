#include "ingest/decoder.h"

#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <string>

#include "base/audience_name.h"

namespace herald::ingest {
namespace {

class category : public std::error_category {
  public:
    const char* name() const noexcept override { return "herald.ingest"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::malformed_json:
                return "malformed_json";
            case errc::malformed_protobuf:
                return "malformed_protobuf";
            case errc::missing_id:
                return "missing_id";
            case errc::invalid_id:
                return "invalid_id";
            case errc::missing_audience:
                return "missing_audience";
            case errc::invalid_audience:
                return "invalid_audience";
            case errc::missing_payload:
                return "missing_payload";
            case errc::payload_too_large:
                return "payload_too_large";
            case errc::invalid_field:
                return "invalid_field";
            case errc::bad_timestamp:
                return "bad_timestamp";
        }
        return "unknown";
    }
};

base::failure fail(errc e, std::string detail) {
    return base::failure(make_error_code(e), std::move(detail));
}

bool chars_in(std::string_view s, bool (*ok)(char)) {
    for (const char c : s) {
        if (!ok(c))
            return false;
    }
    return true;
}

bool id_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
}
bool tenant_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

std::string quoted(std::string_view s) {
    return "\"" + std::string(s.substr(0, 160)) + (s.size() > 160 ? "…\"" : "\"");
}

// Instants are handled as nanoseconds since 1970 in 64 bits, which reach
// from 1677 to 2262: anything outside (protobuf allows years 1..9999) is
// refused, never multiplied into an overflow.
constexpr std::int64_t min_seconds = -9'000'000'000;  // 1684
constexpr std::int64_t max_seconds = 9'000'000'000;   // 2255

bool valid_timestamp(const google::protobuf::Timestamp& t) {
    return t.seconds() >= min_seconds && t.seconds() <= max_seconds && t.nanos() >= 0 &&
           t.nanos() <= 999'999'999;
}

std::int64_t to_ns(const google::protobuf::Timestamp& t) {
    return t.seconds() * 1'000'000'000 + t.nanos();
}

}  // namespace

const std::error_category& ingest_category() noexcept {
    static const category instance;
    return instance;
}

bool is_json_content_type(std::string_view v) noexcept {
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    const std::size_t semi = v.find(';');
    std::string_view type = v.substr(0, semi);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    constexpr std::string_view json = "application/json";
    if (type.size() != json.size())
        return false;
    for (std::size_t i = 0; i < json.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(type[i])) != json[i])
            return false;
    }
    return true;
}

// A cancel names an earlier announcement; nothing of it is delivered, so
// only what identifies its target is checked (and a payload, which would
// make it look like an announcement that then silently goes nowhere, refused).
static base::result<void> validate_cancel(herald::v1::Announcement& a) {
    if (a.cancel().size() > 128 || !chars_in(a.cancel(), id_char)) {
        return fail(errc::invalid_id,
                    "cancel " + quoted(a.cancel()) + " must be 1..128 characters of [A-Za-z0-9._:-]");
    }
    if (a.tenant().empty()) {
        a.set_tenant("default");
    } else if (a.tenant().size() > 64 || !chars_in(a.tenant(), tenant_char)) {
        return fail(errc::invalid_field,
                    "tenant " + quoted(a.tenant()) + " must be 0..64 characters of [a-z0-9._-]");
    }
    if (!a.audience().empty() && !base::is_valid_audience(a.audience())) {
        return fail(errc::invalid_audience,
                    "audience " + quoted(a.audience()) +
                        " must be 1..128 characters of [a-z0-9._:-], starting with a letter or digit");
    }
    if (a.payload_case() != herald::v1::Announcement::PAYLOAD_NOT_SET)
        return fail(errc::invalid_field, "a cancel record carries no text, json or binary");
    return {};
}

static base::result<void> validate_announcement(herald::v1::Announcement& a, const limits& lim,
                                                std::int64_t now_wall_ns) {
    if (!a.cancel().empty())
        return validate_cancel(a);
    if (a.id().empty())
        return fail(errc::missing_id, "id is required");
    if (a.id().size() > 128 || !chars_in(a.id(), id_char)) {
        return fail(errc::invalid_id,
                    "id " + quoted(a.id()) + " must be 1..128 characters of [A-Za-z0-9._:-]");
    }
    if (a.tenant().empty()) {
        a.set_tenant("default");
    } else if (a.tenant().size() > 64 || !chars_in(a.tenant(), tenant_char)) {
        return fail(errc::invalid_field,
                    "tenant " + quoted(a.tenant()) + " must be 0..64 characters of [a-z0-9._-]");
    }
    if (a.audience().empty())
        return fail(errc::missing_audience, "audience is required");
    if (!base::is_valid_audience(a.audience())) {
        return fail(errc::invalid_audience,
                    "audience " + quoted(a.audience()) +
                        " must be 1..128 characters of [a-z0-9._:-], starting with a letter or digit");
    }
    std::size_t payload_bytes = 0;
    switch (a.payload_case()) {
        case herald::v1::Announcement::kText:
            payload_bytes = a.text().size();
            break;
        case herald::v1::Announcement::kJson:
            payload_bytes = a.json().ByteSizeLong();
            break;
        case herald::v1::Announcement::kBinary:
            payload_bytes = a.binary().size();
            break;
        default:
            return fail(errc::missing_payload, "one of text, json or binary is required");
    }
    if (payload_bytes > lim.max_payload_bytes) {
        return fail(errc::payload_too_large, "payload of " + std::to_string(payload_bytes) +
                                                 " bytes exceeds max_payload_bytes " +
                                                 std::to_string(lim.max_payload_bytes));
    }
    if (a.content_type().size() > 127)
        return fail(errc::invalid_field, "content_type longer than 127 characters");
    if (a.collapse_key().size() > 128)
        return fail(errc::invalid_field, "collapse_key longer than 128 characters");
    if (a.labels_size() > 32)
        return fail(errc::invalid_field, "more than 32 labels");
    for (const auto& [k, v] : a.labels()) {
        if (k.empty() || k.size() > 64)
            return fail(errc::invalid_field, "label key " + quoted(k) + " must be 1..64 characters");
        if (v.size() > 256)
            return fail(errc::invalid_field, "label " + quoted(k) + " value longer than 256 characters");
    }
    for (const auto* field : {&a.created_at(), &a.deliver_at(), &a.expires_at()}) {
        if (!valid_timestamp(*field))
            return fail(errc::bad_timestamp, "timestamp out of range (years 1684..2255)");
    }
    if (a.has_created_at() && to_ns(a.created_at()) > now_wall_ns + lim.max_clock_skew_ns) {
        return fail(errc::bad_timestamp, "created_at lies further in the future than max_clock_skew");
    }
    if (a.has_deliver_at() && to_ns(a.deliver_at()) > now_wall_ns + lim.max_deliver_ahead_ns) {
        return fail(errc::bad_timestamp, "deliver_at lies further ahead than max_deliver_ahead");
    }
    if (a.has_deliver_at() && a.has_expires_at() && to_ns(a.expires_at()) <= to_ns(a.deliver_at())) {
        return fail(errc::bad_timestamp, "expires_at must be after deliver_at");
    }
    return {};
}

base::result<herald::v1::Announcement> decode_announcement(std::string_view value, bool is_json,
                                                           const limits& lim, std::int64_t now_wall_ns) {
    // Refuse absurd records before parsing them (base64 and JSON escaping can
    // inflate a payload up to ~4x; 64 KiB covers every other field).
    const std::size_t ceiling = static_cast<std::size_t>(lim.max_payload_bytes) * 4 + std::size_t{64} * 1024;
    if (value.size() > ceiling) {
        return fail(errc::payload_too_large, "record of " + std::to_string(value.size()) + " bytes exceeds " +
                                                 std::to_string(ceiling));
    }
    herald::v1::Announcement a;
    if (is_json) {
        google::protobuf::util::JsonParseOptions options;
        options.ignore_unknown_fields = false;
        const auto status = google::protobuf::util::JsonStringToMessage(
            google::protobuf::StringPiece(value.data(), value.size()), &a, options);
        if (!status.ok()) {
            return fail(errc::malformed_json, std::string(status.message()));
        }
    } else if (!a.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return fail(errc::malformed_protobuf,
                    "value is not a herald.v1.Announcement in protobuf binary "
                    "(JSON needs the header content-type: application/json)");
    }
    if (auto ok = validate_announcement(a, lim, now_wall_ns); !ok) {
        return base::failure(ok.err());
    }
    return a;
}

}  // namespace herald::ingest
