#include "app/outbound_api.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <chrono>

#include "base/clock.h"
#include "registry/subscription_codec.h"
#include "wire/frame_codec.h"

namespace herald::app {
namespace {

constexpr auto write_timeout = std::chrono::seconds(15);
constexpr std::size_t max_batch_lines = 10000;

ops::http_response json(int status, std::string body) {
    return {status, "application/json", std::move(body)};
}

ops::http_response error(int status, const std::string& message) {
    std::string body = "{\"error\":";
    wire::append_json_string(body, message);
    return json(status, body + "}\n");
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            const auto hex = [](char c) -> int {
                if (c >= '0' && c <= '9')
                    return c - '0';
                if (c >= 'a' && c <= 'f')
                    return c - 'a' + 10;
                if (c >= 'A' && c <= 'F')
                    return c - 'A' + 10;
                return -1;
            };
            const int hi = hex(s[i + 1]);
            const int lo = hex(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

/// The decoded value of `name` in a query string, if present.
std::optional<std::string> query_value(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
    return std::nullopt;
}

ops::http_response post_subscriptions(const ops::http_request& req, registry::subscription_feed& feed) {
    std::vector<registry::subscription_feed::change> changes;
    std::string rejected;
    std::size_t index = 0;
    std::size_t pos = 0;
    std::size_t refused = 0;
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
        if (changes.size() + refused >= max_batch_lines)
            return error(413, "at most " + std::to_string(max_batch_lines) + " subscriptions per request");
        auto s = registry::decode_subscription(line, true);
        if (!s) {
            rejected += std::string(rejected.empty() ? "" : ",") + "{\"index\":" + std::to_string(index) +
                        ",\"reason\":";
            wire::append_json_string(rejected, s.err().describe());
            rejected += "}";
            ++refused;
        } else {
            changes.push_back({s->recipient_id(), registry::to_json(*s)});
        }
        ++index;
    }
    if (!changes.empty()) {
        if (auto r = feed.publish(changes, write_timeout); !r)
            return error(503, r.err().detail);
    }
    return json(refused == 0 ? 200 : 422,
                "{\"accepted\":" + std::to_string(changes.size()) + ",\"rejected\":[" + rejected + "]}\n");
}

ops::http_response unsubscribe(const std::string& id, const ops::http_request& req,
                               registry::subscription_feed& feed) {
    auto current = feed.get(id);
    if (!current)
        return error(404, "unknown recipient " + id);
    std::vector<std::string> leave;
    if (req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        google::protobuf::Struct body;
        if (!google::protobuf::util::JsonStringToMessage(req.body, &body).ok())
            return error(400, "body must be a JSON object like {\"audiences\":[\"a\"]} or {}");
        const auto it = body.fields().find("audiences");
        if (it != body.fields().end()) {
            if (!it->second.has_list_value())
                return error(400, "audiences must be a list of audience names");
            for (const auto& v : it->second.list_value().values()) leave.push_back(v.string_value());
        }
    }
    herald::v1::Subscription s = *current;
    if (leave.empty()) {
        *s.mutable_opted_out_at() =
            google::protobuf::util::TimeUtil::NanosecondsToTimestamp(base::wall_now_ns());
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
            *s.mutable_opted_out_at() =
                google::protobuf::util::TimeUtil::NanosecondsToTimestamp(base::wall_now_ns());
        }
    }
    if (auto r = feed.publish(s, write_timeout); !r)
        return error(503, r.err().detail);
    return json(200, registry::to_json(s) + "\n");
}

}  // namespace

std::optional<ops::http_response> outbound_api(const ops::http_request& req,
                                               registry::subscription_feed& feed,
                                               const outbound::status_board& board) {
    constexpr std::string_view subs = "/v1/subscriptions";
    constexpr std::string_view casts = "/v1/broadcasts/";
    const std::string_view path = req.path;
    if (path == subs) {
        if (req.method != "POST")
            return error(405, "use POST with NDJSON of herald.v1.Subscription");
        return post_subscriptions(req, feed);
    }
    if (path.rfind(std::string(subs) + "/", 0) == 0) {
        std::string_view rest = path.substr(subs.size() + 1);
        constexpr std::string_view unsub = "/unsubscribe";
        const bool is_unsub = rest.size() > unsub.size() && rest.substr(rest.size() - unsub.size()) == unsub;
        if (is_unsub)
            rest.remove_suffix(unsub.size());
        const std::string id = percent_decode(rest);
        if (!registry::is_valid_recipient_id(id))
            return error(400, "not a recipient id: " + id);
        if (is_unsub) {
            if (req.method != "POST")
                return error(405, "use POST");
            return unsubscribe(id, req, feed);
        }
        if (req.method == "GET") {
            auto s = feed.get(id);
            if (!s)
                return error(404, "unknown recipient " + id);
            return json(200, registry::to_json(*s) + "\n");
        }
        if (req.method == "DELETE") {
            if (auto r = feed.publish_tombstone(id, write_timeout); !r)
                return error(503, r.err().detail);
            std::string body = "{\"forgotten\":";
            wire::append_json_string(body, id);
            return json(200, body + "}\n");
        }
        return error(405, "use GET, DELETE or POST .../unsubscribe");
    }
    if (path.rfind(casts, 0) == 0) {
        if (req.method != "GET")
            return error(405, "use GET");
        const std::string id = percent_decode(path.substr(casts.size()));
        // Ids are unique per tenant: ?tenant=T picks one; without it, the id
        // must be unambiguous.
        if (const auto tenant = query_value(req.query, "tenant")) {
            auto p = board.get(id, *tenant);
            if (!p)
                return error(404, "unknown broadcast " + id + " of tenant " + *tenant);
            return json(200, p->to_json(base::mono_now_ns()));
        }
        const auto all = board.matching(id);
        if (all.empty())
            return error(404, "unknown broadcast " + id);
        if (all.size() > 1) {
            std::string tenants;
            for (const auto& p : all) tenants += (tenants.empty() ? "" : ", ") + p.tenant;
            return error(409, "broadcast " + id + " exists for several tenants (" + tenants +
                                  "): name one with ?tenant=");
        }
        return json(200, all.front().to_json(base::mono_now_ns()));
    }
    return std::nullopt;
}

}  // namespace herald::app
