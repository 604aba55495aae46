#include "app/ops_api.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>

#include "base/clock.h"
#include "registry/subscription_codec.h"

namespace herald::app {
namespace {

using ops::http_request;
using ops::http_response;
using ops::route_match;

constexpr auto write_timeout = std::chrono::seconds(15);
constexpr std::size_t max_batch_lines = 10000;

/// A stored subscription as the API shows it: its canonical JSON.
boost::json::value subscription_json(const herald::v1::Subscription& s) {
    return boost::json::parse(registry::to_json(s));
}

http_response post_subscriptions(const http_request& req, registry::subscription_feed& feed) {
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
        if (!s)
            rejected.push_back({{"index", index}, {"reason", s.err().describe()}});
        else
            changes.push_back({s->recipient_id(), registry::to_json(*s)});
        ++index;
    }
    if (!changes.empty()) {
        if (auto r = feed.publish(changes, write_timeout); !r)
            return http_response::error(503, r.err().detail);
    }
    const int status = rejected.empty() ? 200 : 422;
    return http_response::json(status, {{"accepted", changes.size()}, {"rejected", std::move(rejected)}});
}

http_response unsubscribe(const std::string& id, const http_request& req, registry::subscription_feed& feed) {
    auto current = feed.get(id);
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
    if (auto r = feed.publish(s, write_timeout); !r)
        return http_response::error(503, r.err().detail);
    return http_response::json(200, subscription_json(s));
}

/// The {recipient} of a route, or an answer refusing it.
std::optional<http_response> bad_recipient(const std::string& id) {
    if (!registry::is_valid_recipient_id(id))
        return http_response::error(400, "not a recipient id: " + id);
    return std::nullopt;
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

void add_registry_routes(ops::router& routes, registry::subscription_feed& feed) {
    routes.add(
        "POST", "/v1/subscriptions", ops::access::publish,
        [&feed](const http_request& req, const route_match&) { return post_subscriptions(req, feed); });
    routes.add("GET", "/v1/subscriptions/{recipient}", ops::access::read,
               [&feed](const http_request&, const route_match& m) {
                   const std::string& id = m.param("recipient");
                   if (auto refused = bad_recipient(id))
                       return std::move(*refused);
                   auto s = feed.get(id);
                   if (!s)
                       return http_response::error(404, "unknown recipient " + id);
                   return http_response::json(200, subscription_json(*s));
               });
    routes.add("DELETE", "/v1/subscriptions/{recipient}", ops::access::publish,
               [&feed](const http_request&, const route_match& m) {
                   const std::string& id = m.param("recipient");
                   if (auto refused = bad_recipient(id))
                       return std::move(*refused);
                   if (auto r = feed.publish_tombstone(id, write_timeout); !r)
                       return http_response::error(503, r.err().detail);
                   return http_response::json(200, {{"forgotten", id}});
               });
    routes.add("POST", "/v1/subscriptions/{recipient}/unsubscribe", ops::access::publish,
               [&feed](const http_request& req, const route_match& m) {
                   const std::string& id = m.param("recipient");
                   if (auto refused = bad_recipient(id))
                       return std::move(*refused);
                   return unsubscribe(id, req, feed);
               });
}

void add_broadcast_routes(ops::router& routes, const outbound::status_board& board) {
    routes.add("GET", "/v1/broadcasts/{id}", ops::access::read,
               [&board](const http_request& req, const route_match& m) {
                   const std::string& id = m.param("id");
                   // Ids are unique per tenant: ?tenant=T picks one; without
                   // it, the id must be unambiguous.
                   if (const auto tenant = req.query_value("tenant")) {
                       auto p = board.get(id, *tenant);
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

}  // namespace herald::app
