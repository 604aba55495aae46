// The ops port's routes, wired from what each subsystem exports:
//   GET    /metrics /healthz /readyz                  (open)
//   GET    /v1/info                                   version, shards, Kafka, topics
//   POST   /v1/subscriptions                          NDJSON of herald.v1.Subscription
//   GET    /v1/subscriptions/{recipient}              the stored subscription (no webhook_secret)
//   POST   /v1/subscriptions/{recipient}/unsubscribe  {"audiences":[...]} or {} for all
//   DELETE /v1/subscriptions/{recipient}              forget the person everywhere
//   GET    /v1/broadcasts/{id}[?tenant=T]             targeted/sent/failed/suppressed/pending, ETA
//                                                     (409 when the id exists for several tenants)
//   GET    /v1/broadcasts?state=scheduled[&tenant=T]  live broadcasts waiting in the schedule store
//   DELETE /v1/broadcasts/{id}[?tenant=T]             cancel: a cancel record to herald.announcements
// Registry writes go through the herald.subscriptions topic and answer once
// this instance has applied them (on the ops server's worker thread).
//
// Every /v1/ route needs `Authorization: Bearer <key>` (docs/SECURITY.md):
// 401 without or with a wrong key, 403 when the key's role is below the
// route's, and a key of one tenant asking for another tenant's subscriber
// or broadcast gets 404, as if it did not exist.
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <string>

#include "metrics/registry.h"
#include "ops/router.h"
#include "outbound/status_board.h"
#include "registry/feed.h"
#include "schedule/scheduler.h"
#include "security/address_guard.h"
#include "security/admin_keys.h"

namespace herald::app {

/// /metrics, /healthz and /readyz. `not_ready` returns why heraldd is not
/// ready ("" when it is).
void add_health_routes(ops::router& routes, const metrics::registry& metrics,
                       std::function<std::string()> not_ready);

/// The authentication middleware. `keys` returns the keys in force (they
/// may be reloaded); `metrics_require_key` closes the open routes too.
void add_authentication(ops::router& routes, metrics::registry& metrics,
                        std::function<std::shared_ptr<const security::admin_keys>()> keys,
                        bool metrics_require_key);

/// GET /v1/info: `info` builds the answer when asked.
void add_info_route(ops::router& routes, std::function<boost::json::object()> info);

/// `guard` (copied) refuses subscriptions whose webhook is a literal refused
/// address; plain http:// webhooks get 422 unless `allow_insecure_webhooks`.
/// Answers never carry a subscription's webhook_secret.
void add_registry_routes(ops::router& routes, registry::subscription_feed& feed,
                         const security::address_guard& guard, bool allow_insecure_webhooks);

void add_broadcast_routes(ops::router& routes, const outbound::status_board& board);

class cancel_writer;
/// GET /v1/broadcasts?state=scheduled (this instance's schedule store) and
/// DELETE /v1/broadcasts/{id}[?tenant=T]: 202 once the cancel record is in
/// Kafka, 404 unknown (or another tenant's), 409 delivered, finished or
/// cancelled already. A tenant's key sees and cancels only its own.
void add_schedule_routes(ops::router& routes, const schedule::scheduler& scheduler,
                         const outbound::status_board& board, cancel_writer& cancels);

}  // namespace herald::app
