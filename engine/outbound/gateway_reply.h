// What a gateway's answer means for one delivery. Webhook receivers speak
// plain HTTP status codes; the WhatsApp Cloud API adds its own error codes in
// the body, some of which must not be retried like a 5xx: a throughput limit
// (130429) slows the whole sender, a pair limit (131056) waits 4^n seconds
// for that one recipient, a spam-class refusal (131048) pauses the sender's
// broadcast instead of hammering on. Pure functions, so every mapping is
// unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald::outbound {

enum class verdict : std::uint8_t {
    sent,           // accepted by the gateway
    retry,          // transient: back off with jitter and try again
    throttled,      // the sender is too fast: slow the whole lane, then retry
    pair_limited,   // this recipient got too much: wait 4^n s, then retry
    sender_paused,  // spam-class: pause the lane for a long while, then retry
    failed,         // permanent: give up, reason in the receipt
};

struct reply_meaning {
    verdict what = verdict::failed;
    std::string reason;               // "http_503", "gateway_131026", ...; empty when sent
    std::int64_t retry_after_ns = 0;  // from Retry-After, 0 if absent
};

/// Retry-After as delay-seconds (HTTP-date is not used by these gateways); 0 if absent or bad.
[[nodiscard]] std::int64_t parse_retry_after_ns(std::string_view header) noexcept;

/// A generic webhook receiver's answer.
[[nodiscard]] reply_meaning classify_webhook_reply(int status, std::string_view retry_after);

/// A WhatsApp Cloud API answer, body = its JSON ({"error":{"code":N,...}}).
[[nodiscard]] reply_meaning classify_whatsapp_reply(int status, std::string_view body,
                                                    std::string_view retry_after);

/// The connection failed or timed out before an answer: transient
/// ("transport_error"; "transport_error:tls_certificate" when the gateway's
/// certificate was refused), except an address the guard refused
/// ("blocked_address").
[[nodiscard]] reply_meaning transport_failure(std::string_view what);

}  // namespace herald::outbound
