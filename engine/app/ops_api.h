// The ops port's routes, wired from what each subsystem exports:
//   GET    /metrics /healthz /readyz                  (open)
//   GET    /v1/info                                   version, shards, Kafka, topics
//   POST   /v1/subscriptions                          NDJSON of herald.v1.Subscription
//   GET    /v1/subscriptions/{recipient}              the stored subscription
//   POST   /v1/subscriptions/{recipient}/unsubscribe  {"audiences":[...]} or {} for all
//   DELETE /v1/subscriptions/{recipient}              forget the person everywhere
//   GET    /v1/broadcasts/{id}[?tenant=T]             targeted/sent/failed/suppressed/pending, ETA
//                                                     (409 when the id exists for several tenants)
// Registry writes go through the herald.subscriptions topic and answer once
// this instance has applied them.
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <string>

#include "metrics/registry.h"
#include "ops/router.h"
#include "outbound/status_board.h"
#include "registry/feed.h"

namespace herald::app {

/// /metrics, /healthz and /readyz. `not_ready` returns why heraldd is not
/// ready ("" when it is).
void add_health_routes(ops::router& routes, const metrics::registry& metrics,
                       std::function<std::string()> not_ready);

/// GET /v1/info: `info` builds the answer when asked.
void add_info_route(ops::router& routes, std::function<boost::json::object()> info);

void add_registry_routes(ops::router& routes, registry::subscription_feed& feed);

void add_broadcast_routes(ops::router& routes, const outbound::status_board& board);

}  // namespace herald::app
