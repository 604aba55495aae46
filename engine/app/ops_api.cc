#include "app/ops_api.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <prometheus/counter.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>
#include <variant>

#include "app/cancel_writer.h"
#include "base/clock.h"
#include "outbound/endpoint.h"
#include "registry/subscription_codec.h"
#include "security/credentials.h"

namespace herald::app {
namespace {

using ops::http_request;
using ops::http_response;
using ops::route_match;

constexpr auto write_timeout = std::chrono::seconds(15);
constexpr std::size_t max_batch_lines = 10000;

/// What the registry routes check besides the subscription's own rules.
struct write_rules {
    security::address_guard guard;  // refuses webhooks at literal refused addresses
    bool allow_insecure_webhooks = false;
};

/// A stored subscription as the API shows it: its canonical JSON without
/// the webhook_secret (written, never read back).
boost::json::value subscription_json(const herald::v1::Subscription& s) {
    return boost::json::parse(registry::to_api_json(s));
}

/// Why a subscription may not be written by `who`, or "" when it may.
std::string refusal(const herald::v1::Subscription& s, const ops::caller& who, const write_rules& rules) {
    const security::address_guard& guard = rules.guard;
    if (!who.may_act_for(s.tenant()))
        return "tenant: this key may not manage tenant " + s.tenant() + "'s subscribers";
    if (auto secure = registry::check_webhook_transport(s, rules.allow_insecure_webhooks); !secure)
        return secure.err().describe();
    if (s.channel() == herald::v1::CHANNEL_WEBHOOK) {
        if (const auto ep = outbound::parse_endpoint(s.address())) {
            if (const auto rule = guard.refuses_literal(ep->host))
                return "address: " + std::string(security::class_name(*rule)) +
                       " addresses are refused (allow a network with outbound_allowed_networks)";
        }
    }
    return {};
}

http_response post_subscriptions(const http_request& req, const ops::caller& who,
                                 registry::subscription_feed& feed, const write_rules& rules) {
    std::vector<registry::subscription_feed::change> changes;
    boost::json::array rejected;
    std::size_t index = 0;
    std::size_t pos = 0;
    while (pos < req.body.size()) {
        std::size_t end = req.body.find('\n', pos);
        if (end == std::string::npos)
            end = req.body.size();
        std::string_view line(req.body.data() + pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) {
            ++index;
            continue;
        }
        if (changes.size() + rejected.size() >= max_batch_lines)
            return http_response::error(
                413, "at most " + std::to_string(max_batch_lines) + " subscriptions per request");
        auto s = registry::decode_subscription(line, true);
        if (s && s->tenant() == "default" && !who.all_tenants() &&
            line.find("\"tenant\"") == std::string_view::npos)
            s->set_tenant(who.tenant);  // a tenant's key writes its own subscribers by default
        std::string why = s ? refusal(*s, who, rules) : s.err().describe();
        if (!why.empty())
            rejected.push_back({{"index", index}, {"reason", why}});
        else
            changes.push_back({registry::subscriber_key(*s), registry::to_json(*s)});
        ++index;
    }
    if (!changes.empty()) {
        if (auto r = feed.publish(changes, write_timeout); !r)
            return http_response::error(503, r.err().detail);
    }
    const int status = rejected.empty() ? 200 : 422;
    return http_response::json(status, {{"accepted", changes.size()}, {"rejected", std::move(rejected)}});
}

http_response unsubscribe(const std::string& tenant, const std::string& id, const http_request& req,
                          registry::subscription_feed& feed, const write_rules& rules) {
    auto current = feed.get(tenant, id);
    if (!current)
        return http_response::error(404, "unknown recipient " + id);
    std::vector<std::string> leave;
    if (req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        google::protobuf::Struct body;
        if (!google::protobuf::util::JsonStringToMessage(req.body, &body).ok())
            return http_response::error(400, "body must be a JSON object like {\"audiences\":[\"a\"]} or {}");
        const auto it = body.fields().find("audiences");
        if (it != body.fields().end()) {
            if (!it->second.has_list_value())
                return http_response::error(400, "audiences must be a list of audience names");
            for (const auto& v : it->second.list_value().values()) leave.push_back(v.string_value());
        }
    }
    herald::v1::Subscription s = *current;
    const auto now = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(base::wall_now_ns());
    if (leave.empty()) {
        *s.mutable_opted_out_at() = now;
    } else {
        auto* audiences = s.mutable_audiences();
        audiences->erase(std::remove_if(audiences->begin(), audiences->end(),
                                        [&](const std::string& a) {
                                            return std::find(leave.begin(), leave.end(), a) != leave.end();
                                        }),
                         audiences->end());
        if (audiences->empty()) {
            // Nothing left: keep the last audiences for the record, opt out of all.
            *s.mutable_audiences() = current->audiences();
            *s.mutable_opted_out_at() = now;
        }
    }
    // Still subscribed to something at a plain http:// URL: the feed would
    // dead-letter the change and the opt-out would be lost. Opting out of
    // everything always works (an opted-out subscription is never refused).
    if (auto secure = registry::check_webhook_transport(s, rules.allow_insecure_webhooks); !secure)
        return http_response::error(
            422, secure.err().describe() +
                     "; opt out of every audience (an empty body) or re-subscribe with https:// first");
    if (auto r = feed.publish(s, write_timeout); !r)
        return http_response::error(503, r.err().detail);
    return http_response::json(200, subscription_json(s));
}

/// The subscriber a route names — {recipient} of ?tenant= (default: the
/// key's own) — or the answer refusing it: 400 for a bad id, 404 for a
/// tenant the key may not see (as if the subscriber did not exist).
struct subscriber_ref {
    std::string tenant;
    std::string id;
};
std::variant<subscriber_ref, http_response> subscriber_of(const http_request& req, const route_match& m) {
    subscriber_ref ref{m.who->tenant_for(req.query_value("tenant").value_or("")), m.param("recipient")};
    if (!registry::is_valid_recipient_id(ref.id))
        return http_response::error(400, "not a recipient id: " + ref.id);
    if (!security::is_valid_tenant(ref.tenant))
        return http_response::error(400, "not a tenant: " + ref.tenant);
    if (!m.who->may_act_for(ref.tenant))
        return http_response::error(404, "unknown recipient " + ref.id);
    return ref;
}

}  // namespace

void add_health_routes(ops::router& routes, const metrics::registry& metrics,
                       std::function<std::string()> not_ready) {
    routes.add("GET", "/metrics", ops::access::open, [&metrics](const http_request&, const route_match&) {
        return http_response{200, "text/plain; version=0.0.4; charset=utf-8", metrics.render(), {}};
    });
    routes.add("GET", "/healthz", ops::access::open,
               [](const http_request&, const route_match&) { return http_response::text(200, "ok\n"); });
    routes.add("GET", "/readyz", ops::access::open,
               [not_ready = std::move(not_ready)](const http_request&, const route_match&) {
                   const std::string why = not_ready();
                   return why.empty() ? http_response::text(200, "ready\n")
                                      : http_response::text(503, "not ready: " + why + "\n");
               });
}

void add_info_route(ops::router& routes, std::function<boost::json::object()> info) {
    routes.add("GET", "/v1/info", ops::access::read,
               [info = std::move(info)](const http_request&, const route_match&) {
                   return http_response::json(200, info());
               });
}

void add_registry_routes(ops::router& routes, registry::subscription_feed& feed,
                         const security::address_guard& guard, bool allow_insecure_webhooks) {
    const write_rules rules{guard, allow_insecure_webhooks};
    routes.add_blocking("POST", "/v1/subscriptions", ops::access::publish,
                        [&feed, rules](const http_request& req, const route_match& m) {
                            return post_subscriptions(req, *m.who, feed, rules);
                        });
    // A read too: it waits for the store, which the feed holds across its transactions.
    routes.add_blocking("GET", "/v1/subscriptions/{recipient}", ops::access::read,
                        [&feed](const http_request& req, const route_match& m) {
                            auto ref = subscriber_of(req, m);
                            if (auto* refused = std::get_if<http_response>(&ref))
                                return std::move(*refused);
                            const auto& [tenant, id] = std::get<subscriber_ref>(ref);
                            auto s = feed.get(tenant, id);
                            if (!s)
                                return http_response::error(404, "unknown recipient " + id);
                            return http_response::json(200, subscription_json(*s));
                        });
    routes.add_blocking("DELETE", "/v1/subscriptions/{recipient}", ops::access::publish,
                        [&feed](const http_request& req, const route_match& m) {
                            auto ref = subscriber_of(req, m);
                            if (auto* refused = std::get_if<http_response>(&ref))
                                return std::move(*refused);
                            const auto& [tenant, id] = std::get<subscriber_ref>(ref);
                            if (auto r = feed.publish_tombstone(tenant, id, write_timeout); !r)
                                return http_response::error(503, r.err().detail);
                            return http_response::json(200, {{"forgotten", id}, {"tenant", tenant}});
                        });
    routes.add_blocking("POST", "/v1/subscriptions/{recipient}/unsubscribe", ops::access::publish,
                        [&feed, rules](const http_request& req, const route_match& m) {
                            auto ref = subscriber_of(req, m);
                            if (auto* refused = std::get_if<http_response>(&ref))
                                return std::move(*refused);
                            const auto& [tenant, id] = std::get<subscriber_ref>(ref);
                            return unsubscribe(tenant, id, req, feed, rules);
                        });
}

void add_broadcast_routes(ops::router& routes, const outbound::status_board& board) {
    routes.add("GET", "/v1/broadcasts/{id}", ops::access::read,
               [&board](const http_request& req, const route_match& m) {
                   const std::string& id = m.param("id");
                   const ops::caller& who = *m.who;
                   // Ids are unique per tenant: ?tenant=T picks one; without
                   // it, the id must be unambiguous among what the key may see.
                   std::optional<std::string> tenant = req.query_value("tenant");
                   if (!tenant && !who.all_tenants())
                       tenant = who.tenant;
                   if (tenant) {
                       auto p = who.may_act_for(*tenant) ? board.get(id, *tenant) : std::nullopt;
                       if (!p)
                           return http_response::error(404,
                                                       "unknown broadcast " + id + " of tenant " + *tenant);
                       return http_response::json(200, p->to_json(base::mono_now_ns()));
                   }
                   const auto all = board.matching(id);
                   if (all.empty())
                       return http_response::error(404, "unknown broadcast " + id);
                   if (all.size() > 1) {
                       std::string tenants;
                       for (const auto& p : all) tenants += (tenants.empty() ? "" : ", ") + p.tenant;
                       return http_response::error(409, "broadcast " + id + " exists for several tenants (" +
                                                            tenants + "): name one with ?tenant=");
                   }
                   return http_response::json(200, all.front().to_json(base::mono_now_ns()));
               });
}

namespace {

std::string rfc3339(std::int64_t wall_ns) {
    return google::protobuf::util::TimeUtil::ToString(
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(wall_ns));
}

bool valid_id(std::string_view id) {
    return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
    });
}

}  // namespace

void add_schedule_routes(ops::router& routes, const schedule::scheduler& scheduler,
                         const outbound::status_board& board, cancel_writer& cancels) {
    routes.add("GET", "/v1/broadcasts", ops::access::read,
               [&scheduler](const http_request& req, const route_match& m) {
                   if (req.query_value("state").value_or("") != "scheduled")
                       return http_response::error(400, "state: only state=scheduled can be listed");
                   const ops::caller& who = *m.who;
                   std::optional<std::string> tenant = req.query_value("tenant");
                   if (tenant && !who.may_act_for(*tenant))
                       return http_response::error(
                           403, "tenant: this key may not see tenant " + *tenant + "'s broadcasts");
                   if (!tenant && !who.all_tenants())
                       tenant = who.tenant;
                   boost::json::array out;
                   for (const auto& e : scheduler.list()) {
                       if (tenant && e.tenant != *tenant)
                           continue;
                       out.push_back(boost::json::object{{"id", e.id},
                                                         {"tenant", e.tenant},
                                                         {"audience", e.audience},
                                                         {"deliver_at", rfc3339(e.deliver_at_ns)},
                                                         {"seq", e.seq.get()},
                                                         {"created_at", rfc3339(e.created_at_ns)}});
                   }
                   const auto n = out.size();
                   return http_response::json(200, {{"broadcasts", std::move(out)}, {"count", n}});
               });
    routes.add_blocking(
        "DELETE", "/v1/broadcasts/{id}", ops::access::publish,
        [&scheduler, &board, &cancels](const http_request& req, const route_match& m) {
            const std::string& id = m.param("id");
            const ops::caller& who = *m.who;
            const std::string tenant = who.tenant_for(req.query_value("tenant").value_or(""));
            if (!security::is_valid_tenant(tenant))
                return http_response::error(400, "not a tenant: " + tenant);
            if (!valid_id(id))
                return http_response::error(400,
                                            "not an announcement id: 1..128 characters of [A-Za-z0-9._:-]");
            // Another tenant's broadcast does not exist for this key.
            const auto unknown = [&] {
                return http_response::error(404, "unknown broadcast " + id + " of tenant " + tenant);
            };
            if (!who.may_act_for(tenant))
                return unknown();
            const auto conflict = [&](const std::string& why) {
                return http_response::error(409, "broadcast " + id + " of tenant " + tenant + " " + why);
            };
            std::string audience;
            std::string was;
            const auto ended = scheduler.ended(tenant, id);
            if (const auto e = scheduler.find(tenant, id)) {
                audience = e->audience;
                was = "scheduled";
            } else if (ended == schedule::ending::cancelled) {
                return conflict("is cancelled already");
            } else if (const auto p = board.get(id, tenant)) {
                if (p->cancelled)
                    return conflict("is cancelled already");
                if (!p->outbound_known || p->done())
                    return conflict("was delivered already (nothing left to cancel)");
                audience = p->audience;
                was = "running";
            } else if (ended == schedule::ending::released) {
                return conflict("was delivered already (nothing left to cancel)");
            } else {
                return unknown();
            }
            if (auto written = cancels.write(audience, tenant, id, write_timeout); !written)
                return http_response::error(503, written.err().detail);
            return http_response::json(202, {{"cancel", id},
                                             {"tenant", tenant},
                                             {"audience", audience},
                                             {"was", was},
                                             {"state", "cancelling"}});
        });
}

void add_authentication(ops::router& routes, metrics::registry& metrics,
                        std::function<std::shared_ptr<const security::admin_keys>()> keys,
                        bool metrics_require_key) {
    auto& family = prometheus::BuildCounter()
                       .Name("herald_ops_auth_failures_total")
                       .Help("Ops API requests refused by authentication, by reason")
                       .Register(metrics.prom());
    prometheus::Counter* missing = &family.Add({{"reason", "missing_key"}});
    prometheus::Counter* wrong = &family.Add({{"reason", "wrong_key"}});
    prometheus::Counter* forbidden = &family.Add({{"reason", "role"}});
    routes.use(
        [=, keys = std::move(keys)](const http_request& req, route_match& m) -> std::optional<http_response> {
            if (m.access == ops::access::open && !metrics_require_key)
                return std::nullopt;
            const auto unauthorized = [](const std::string& message) {
                http_response out = http_response::error(401, message);
                out.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"herald\"");
                return out;
            };
            const auto header = req.header("authorization");
            const auto token = header ? security::bearer_token(*header) : std::nullopt;
            if (!token) {
                missing->Increment();
                return unauthorized("an API key is required: Authorization: Bearer <key>");
            }
            const auto principal = keys()->authenticate(*token);
            if (!principal) {
                wrong->Increment();
                return unauthorized("the API key is not valid");
            }
            const auto level = static_cast<std::uint8_t>(principal->role);
            m.who = ops::caller{principal->name, level, principal->tenant};
            if (level < static_cast<std::uint8_t>(m.access)) {
                forbidden->Increment();
                return http_response::error(
                    403, "key " + principal->name + " (" + std::string(security::role_name(principal->role)) +
                             ") may not " + std::string(m.method) + " " + std::string(m.pattern));
            }
            return std::nullopt;
        });
}

}  // namespace herald::app
