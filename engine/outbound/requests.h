// The HTTP request each kind of gateway receives for one recipient of one
// broadcast, built without Beast so every byte is unit-tested:
//   * webhook: the live frame's JSON with "recipient_id" added, signed per
//     Standard Webhooks (webhook-id = the delivery's idempotency key,
//     webhook-timestamp, webhook-signature) with the subscriber's own
//     webhook_secret, else the global webhook_secrets, else unsigned;
//   * sms: the same (signed with the global secrets), plus "to" (the E.164
//     number to text), and the gateway's bearer token when one is set;
//   * whatsapp: a Cloud API message — a template with the text as its body
//     parameter, or free text ("whatsapp.type": "text") — with the bearer
//     token.
// Every request carries `idempotency-key`, stable across retries and restarts.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "model/broadcast.h"
#include "outbound/options.h"
#include "outbound/recipient_index.h"
#include "outbound/schedule.h"

namespace herald::outbound {

struct gateway_request {
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;  // besides host, content-type, user-agent
    std::string body;                                          // application/json
};

/// The request for `r` at a gateway of `kind`; `now` stamps webhook signatures.
[[nodiscard]] gateway_request build_request(lane_kind kind, const model::broadcast& b, const recipient& r,
                                            const gateway_options& options, base::wall_time now);

}  // namespace herald::outbound
