#include "outbound/requests.h"

#include "wire/frame_codec.h"

namespace herald::outbound {
namespace {

std::string json_escape(std::string_view s) {
    std::string out;
    wire::append_json_string(out, s);
    return out;
}

std::string whatsapp_body(const model::broadcast& b, const recipient& r, const gateway_options& options) {
    std::string body =
        R"({"messaging_product":"whatsapp","recipient_type":"individual","to":)" + json_escape(r.address);
    if (b.whatsapp_free_text) {
        body += R"(,"type":"text","text":{"body":)" + json_escape(b.text) + "}}";
        return body;
    }
    body += R"(,"type":"template","template":{"name":)" +
            json_escape(b.whatsapp_template.empty() ? options.whatsapp_template : b.whatsapp_template) +
            R"(,"language":{"code":)" +
            json_escape(b.whatsapp_language.empty() ? options.whatsapp_language : b.whatsapp_language) +
            R"(},"components":[{"type":"body","parameters":[{"type":"text","text":)" + json_escape(b.text) +
            "}]}]}}";
    return body;
}

}  // namespace

gateway_request build_request(lane_kind kind, const model::broadcast& b, const recipient& r,
                              const gateway_options& options, base::wall_time now) {
    gateway_request req;
    req.target = r.target;
    const std::string id = delivery_id(b.tenant, b.id, r.id);
    req.headers.emplace_back("idempotency-key", id);
    if (kind == lane_kind::whatsapp) {
        req.headers.emplace_back("authorization", "Bearer " + options.whatsapp_token);
        req.body = whatsapp_body(b, r, options);
        return req;
    }
    // The live frame's JSON with the recipient added: one shape for every
    // webhook; an SMS gateway also gets the number to text.
    req.body = b.payload_json;
    req.body.pop_back();
    req.body += ",\"recipient_id\":" + json_escape(r.id);
    if (kind == lane_kind::sms)
        req.body += ",\"to\":" + json_escape(r.address);
    req.body += "}";
    const std::int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    req.headers.emplace_back("webhook-id", id);
    req.headers.emplace_back("webhook-timestamp", std::to_string(ts));
    // The subscriber's own secret replaces the global ones (a receiver
    // trusts only its own key); signed whenever there is a secret at all.
    const auto& secrets = kind == lane_kind::webhook && !r.webhook_secrets.empty() ? r.webhook_secrets
                                                                                   : options.webhook_secrets;
    if (!secrets.empty())
        req.headers.emplace_back("webhook-signature", webhook_signature(secrets, id, ts, req.body));
    if (kind == lane_kind::sms && !options.sms_gateway_token.empty())
        req.headers.emplace_back("authorization", "Bearer " + options.sms_gateway_token);
    return req;
}

}  // namespace herald::outbound
