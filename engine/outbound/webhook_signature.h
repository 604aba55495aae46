// Standard Webhooks signatures (standardwebhooks.com), so receivers can check
// that a delivery comes from Herald and was not replayed: HMAC-SHA256 over
// "{webhook-id}.{webhook-timestamp}.{body}" with each `whsec_` secret, sent as
// space-separated "v1,<base64>" entries — several during a secret rotation.
// The webhook-id is derived from tenant, announcement and recipient, so it is
// the same on every retry and after a restart: the receiver's idempotency key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace herald::outbound {

/// A decoded signing key.
struct webhook_secret {
    std::string key;  // raw bytes
};

/// Parses "whsec_<base64>"; names what is wrong otherwise.
[[nodiscard]] base::result<webhook_secret> parse_webhook_secret(std::string_view text);

/// Parses a comma-separated list (base/webhook_secret_syntax.h): heraldd's
/// webhook_secrets, or a subscription's own webhook_secret. "" is no secret.
/// The failure never quotes the list.
[[nodiscard]] base::result<std::vector<webhook_secret>> parse_webhook_secrets(std::string_view list);

/// "v1,<base64 sig>" for each secret, space-separated.
[[nodiscard]] std::string webhook_signature(const std::vector<webhook_secret>& secrets, std::string_view id,
                                            std::int64_t timestamp_s, std::string_view body);

/// Stable id of one delivery: "msg_" + 32 hex digits of SHA-256(tenant/announcement/recipient).
[[nodiscard]] std::string delivery_id(std::string_view tenant, std::string_view announcement_id,
                                      std::string_view recipient_id);

[[nodiscard]] std::string base64_encode(std::string_view bytes);

}  // namespace herald::outbound
