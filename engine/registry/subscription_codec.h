// Turns what operators and producers send about outbound subscribers — a
// herald.subscriptions record (canonical JSON or protobuf binary), a line of
// the ops API, a CSV row — into a validated herald.v1.Subscription, or says
// precisely why not. Shared by heraldd and the herald CLI so that a row the
// CLI accepts is one the daemon accepts, and every refusal names its field.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "base/result.h"
#include "herald/v1/subscription.pb.h"

namespace herald::registry {

/// Why a subscription was refused. The names (see registry_category()) are
/// stable: they are metric labels and DLQ reasons.
enum class errc {
    malformed_json = 1,    // "malformed_json"
    malformed_protobuf,    // "malformed_protobuf"
    missing_recipient_id,  // "missing_recipient_id"
    invalid_recipient_id,  // "invalid_recipient_id"
    invalid_tenant,        // "invalid_tenant"
    missing_audiences,     // "missing_audiences"
    invalid_audience,      // "invalid_audience"
    missing_channel,       // "missing_channel"
    invalid_address,       // "invalid_address"
    missing_consent,       // "missing_consent"
    invalid_field,         // "invalid_field"
    insecure_webhook,      // "insecure_webhook": plain http:// while allow_insecure_webhooks is off
};

[[nodiscard]] const std::error_category& registry_category() noexcept;

[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), registry_category()};
}

/// E.164: '+', then 8..15 digits, the first not 0. "+4917612345678".
[[nodiscard]] bool is_e164(std::string_view number) noexcept;

/// An absolute http:// or https:// URL with a host, optional :port
/// (1..65535) and optional path/query; no spaces, no userinfo, no fragment,
/// at most 2048 characters.
[[nodiscard]] bool is_webhook_url(std::string_view url) noexcept;

/// Recipient ids: 1..128 characters of [A-Za-z0-9._:@+-].
[[nodiscard]] bool is_valid_recipient_id(std::string_view id) noexcept;

/// A subscriber is (tenant, recipient_id): "tenant/recipient_id" is its key in
/// the store, on herald.subscriptions and in the outbound index, so two
/// tenants' recipients with the same id never meet. ('/' is in neither syntax.)
[[nodiscard]] std::string subscriber_key(std::string_view tenant, std::string_view recipient_id);
[[nodiscard]] inline std::string subscriber_key(const herald::v1::Subscription& s) {
    return subscriber_key(s.tenant().empty() ? std::string_view("default") : std::string_view(s.tenant()),
                          s.recipient_id());
}
/// Splits a subscriber key; a bare recipient id (records written before
/// tenants were keys) is the default tenant's. nullopt for a malformed key.
struct subscriber {
    std::string tenant;
    std::string recipient_id;
};
[[nodiscard]] std::optional<subscriber> parse_subscriber_key(std::string_view key);

/// Validates a decoded subscription in place: fills tenant "default", sorts
/// and de-duplicates audiences; checks every rule of subscription.proto:
/// recipient id syntax, tenant [a-z0-9._-]{0,64}, 1..256 audiences each valid
/// per base::is_valid_audience, channel set, address per channel (URL for
/// webhook, E.164 for whatsapp/sms), consent with given_at and a 1..128
/// character source unless opted_out_at is set, at most 32 tags, and a
/// webhook_secret only on a webhook, in the syntax of heraldd's own
/// (base/webhook_secret_syntax.h). No refusal ever quotes the secret.
[[nodiscard]] base::result<void> validate_subscription(herald::v1::Subscription& s);

/// Refuses (insecure_webhook, naming the address field) an active webhook
/// subscription to a plain http:// URL unless `allow_insecure`. An opted-out
/// one passes: nothing is sent to it, and its opt-out must always apply.
[[nodiscard]] base::result<void> check_webhook_transport(const herald::v1::Subscription& s,
                                                         bool allow_insecure);
/// Whether `s` is an active webhook to a plain http:// URL.
[[nodiscard]] bool is_insecure_webhook(const herald::v1::Subscription& s) noexcept;

/// Decodes canonical protobuf JSON (`is_json`) or protobuf binary, then
/// validates. Unknown JSON fields are refused (malformed_json) so typos are
/// noticed.
[[nodiscard]] base::result<herald::v1::Subscription> decode_subscription(std::string_view value,
                                                                         bool is_json);

/// A refusal's detail fit for a dead letter or a log line: the field and the
/// rule it broke, never an address (phone number, URL) and never a quote of
/// the record (a JSON parser's message may quote it). E.g.
/// "address: not an E.164 phone number" for "...: +4917612345678".
[[nodiscard]] std::string public_detail(const base::error& e);

/// Best effort for a refused record: the subscriber it names, when its value
/// still carries a valid recipient_id (and tenant, default "default");
/// nullopt when it names none. Addresses are never looked at.
[[nodiscard]] std::optional<subscriber> identify(std::string_view value, bool is_json);

/// Canonical protobuf JSON on one line (no trailing newline), as written to
/// herald.subscriptions: with the webhook_secret, which every instance needs
/// to sign. Never an answer: see to_api_json.
[[nodiscard]] std::string to_json(const herald::v1::Subscription& s);

/// The same without webhook_secret: what the ops API (and so the CLI)
/// shows of a stored subscription. A credential is written, never read back.
[[nodiscard]] std::string to_api_json(const herald::v1::Subscription& s);

/// `record` (JSON or protobuf bytes) with every "whsec_" secret's base64
/// overwritten by '*' in place — same length, so protobuf framing survives —
/// for copies that leave the registry (dead letters).
[[nodiscard]] std::string redact_secrets(std::string record);

/// One refused CSV line, numbered from 1 (the header is line 1).
struct csv_error {
    std::size_t line = 0;
    std::string reason;  // e.g. "address: not an E.164 phone number: 0171-123"
};

struct csv_import {
    std::vector<std::pair<std::size_t, herald::v1::Subscription>> accepted;  // (line, subscription)
    std::vector<csv_error> errors;                                           // every refused line
};

/// Parses an RFC 4180 CSV file (quoted fields, "" escapes, CRLF or LF, a
/// final line with or without newline, blank lines skipped). The first line
/// is a header naming the columns, in any order:
///   recipient_id, audiences, channel, address, consent_source,
///   consent_given_at (RFC 3339), and optionally tenant, tags.
/// `audiences` and `tags` are separated by ';'. `channel` is webhook,
/// whatsapp or sms. A missing required column in the header is one error on
/// line 1 and nothing is accepted. Every other bad line is reported with its
/// line number and reason; none is silently dropped.
[[nodiscard]] csv_import parse_subscriptions_csv(std::string_view text);

}  // namespace herald::registry

template <>
struct std::is_error_code_enum<herald::registry::errc> : std::true_type {};
