// The ops API of the outbound registry and of broadcast progress:
//   POST   /v1/subscriptions                    NDJSON of herald.v1.Subscription
//   GET    /v1/subscriptions/{recipient}        the stored subscription
//   POST   /v1/subscriptions/{recipient}/unsubscribe   {"audiences":[...]} or {} for all
//   DELETE /v1/subscriptions/{recipient}        forget the person everywhere
//   GET    /v1/broadcasts/{announcement id}[?tenant=T]   targeted/sent/failed/suppressed/pending, ETA
//                                                (409 when the id exists for several tenants)
// Writes go through the herald.subscriptions topic and answer once applied.
#pragma once

#include <optional>

#include "ops/http_server.h"
#include "outbound/status_board.h"
#include "registry/feed.h"

namespace herald::app {

/// The answer for `req` if it is one of these routes, nullopt otherwise.
[[nodiscard]] std::optional<ops::http_response> outbound_api(const ops::http_request& req,
                                                             registry::subscription_feed& feed,
                                                             const outbound::status_board& board);

}  // namespace herald::app
