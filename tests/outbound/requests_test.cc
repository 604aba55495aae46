// The request each kind of gateway receives: target, headers and body, the
// bodies parsed back as JSON so escaping is checked, not assumed.
#include "outbound/requests.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "herald/v1/announcement.pb.h"
#include "model/build.h"
#include "outbound/webhook_signature.h"

namespace herald::outbound {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr std::int64_t s = 1'000'000'000;
// 2023-11-14T22:13:20.123456789Z: the webhook timestamp is whole seconds.
const base::wall_time now = base::wall_from_ns(1'700'000'000 * s + 123'456'789);

herald::v1::Announcement announcement(const std::string& text = "Headliner moved to 21:00") {
    herald::v1::Announcement a;
    a.set_id("a1");
    a.set_tenant("fest");
    a.set_audience("lineup.rock-am-ring");
    a.set_text(text);
    return a;
}

std::shared_ptr<model::broadcast> build(const herald::v1::Announcement& a) {
    return model::build_broadcast(a, model::seq_no{42}, model::kafka_position{});
}

recipient webhook_recipient(const std::string& id = "r-1") {
    recipient r;
    r.id = id;
    r.address = "https://hooks.example.com/herald/in";
    r.target = "/herald/in";
    r.channel = herald::v1::CHANNEL_WEBHOOK;
    r.audiences = {"lineup.rock-am-ring"};
    r.alive = true;
    return r;
}

recipient phone_recipient(herald::v1::Channel channel, const std::string& target) {
    recipient r;
    r.id = "r-2";
    r.address = "+4917612345678";
    r.target = target;
    r.channel = channel;
    r.audiences = {"lineup.rock-am-ring"};
    r.alive = true;
    return r;
}

webhook_secret secret_of(char fill) {
    const std::string key(24, fill);
    auto parsed = parse_webhook_secret("whsec_" + base64_encode(key));
    EXPECT_TRUE(parsed) << parsed.err().detail;
    return *parsed;
}

std::optional<std::string> header(const gateway_request& req, const std::string& name) {
    std::optional<std::string> found;
    for (const auto& [k, v] : req.headers) {
        if (k == name) {
            EXPECT_FALSE(found) << "header " << name << " appears twice";
            found = v;
        }
    }
    return found;
}

Struct parse(const std::string& body) {
    Struct st;
    const auto status = google::protobuf::util::JsonStringToMessage(body, &st);
    EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << body;
    return st;
}

const Value& field(const Struct& st, const std::string& name) {
    static const Value missing;
    const auto it = st.fields().find(name);
    if (it == st.fields().end()) {
        ADD_FAILURE() << "no field " << name;
        return missing;
    }
    return it->second;
}

// ---- webhook -----------------------------------------------------------------

TEST(Requests, WebhookTargetsTheRecipientAndAddsItsIdToTheLiveJson) {
    const auto b = build(announcement());
    const auto r = webhook_recipient();
    const auto req = build_request(lane_kind::webhook, *b, r, gateway_options{}, now);

    EXPECT_EQ(req.target, "/herald/in");
    ASSERT_FALSE(b->payload_json.empty());
    ASSERT_EQ(b->payload_json.back(), '}');
    EXPECT_EQ(req.body, b->payload_json.substr(0, b->payload_json.size() - 1) + R"(,"recipient_id":"r-1"})");

    const Struct st = parse(req.body);
    EXPECT_EQ(field(st, "recipient_id").string_value(), "r-1");
    EXPECT_EQ(field(st, "id").string_value(), "a1");
    EXPECT_EQ(field(st, "tenant").string_value(), "fest");
    EXPECT_EQ(field(st, "audience").string_value(), "lineup.rock-am-ring");
    EXPECT_EQ(field(st, "text").string_value(), "Headliner moved to 21:00");
    EXPECT_EQ(field(st, "seq").number_value(), 42);
    EXPECT_EQ(st.fields().count("to"), 0u);
}

TEST(Requests, WebhookWithAJsonPayloadStaysValidJson) {
    auto a = announcement();
    Struct payload;
    (*payload.mutable_fields())["gate"].set_string_value("B");
    (*payload.mutable_fields())["open"].set_bool_value(true);
    *a.mutable_json() = payload;
    (*a.mutable_labels())["stage"] = "main";
    const auto b = build(a);
    const auto req = build_request(lane_kind::webhook, *b, webhook_recipient(), gateway_options{}, now);
    const Struct st = parse(req.body);
    EXPECT_EQ(field(st, "recipient_id").string_value(), "r-1");
    EXPECT_EQ(field(field(st, "json").struct_value(), "gate").string_value(), "B");
    EXPECT_TRUE(field(field(st, "json").struct_value(), "open").bool_value());
    EXPECT_EQ(field(field(st, "labels").struct_value(), "stage").string_value(), "main");
}

TEST(Requests, WebhookIdIsTheStableDeliveryId) {
    const auto b = build(announcement());
    const auto req = build_request(lane_kind::webhook, *b, webhook_recipient(), gateway_options{}, now);
    const std::string id = delivery_id("fest", "a1", "r-1");
    EXPECT_EQ(header(req, "idempotency-key"), id);
    EXPECT_EQ(header(req, "webhook-id"), id);

    // The same delivery retried later or rebuilt after a restart: the same id.
    const auto again = build_request(lane_kind::webhook, *build(announcement()), webhook_recipient(),
                                     gateway_options{}, now + std::chrono::minutes(5));
    EXPECT_EQ(header(again, "webhook-id"), id);
    EXPECT_EQ(header(again, "idempotency-key"), id);

    // Another recipient of the same announcement: another id.
    const auto other =
        build_request(lane_kind::webhook, *b, webhook_recipient("r-other"), gateway_options{}, now);
    ASSERT_TRUE(header(other, "webhook-id"));
    EXPECT_NE(*header(other, "webhook-id"), id);
    EXPECT_EQ(header(other, "webhook-id"), delivery_id("fest", "a1", "r-other"));
}

TEST(Requests, WebhookTimestampIsNowInWholeSeconds) {
    const auto b = build(announcement());
    const auto req = build_request(lane_kind::webhook, *b, webhook_recipient(), gateway_options{}, now);
    EXPECT_EQ(header(req, "webhook-timestamp"), "1700000000");
}

TEST(Requests, WebhookIsUnsignedWithoutSecrets) {
    const auto b = build(announcement());
    const auto req = build_request(lane_kind::webhook, *b, webhook_recipient(), gateway_options{}, now);
    EXPECT_FALSE(header(req, "webhook-signature"));
    EXPECT_FALSE(header(req, "authorization"));
}

TEST(Requests, WebhookIsSignedOverIdTimestampAndBody) {
    const auto b = build(announcement());
    gateway_options options;
    options.webhook_secrets = {secret_of('k')};
    const auto req = build_request(lane_kind::webhook, *b, webhook_recipient(), options, now);
    const auto sig = header(req, "webhook-signature");
    ASSERT_TRUE(sig);
    EXPECT_EQ(*sig, webhook_signature(options.webhook_secrets, delivery_id("fest", "a1", "r-1"),
                                      1'700'000'000, req.body));
    EXPECT_EQ(sig->rfind("v1,", 0), 0u);
    // Not a signature over something else: another timestamp or body signs differently.
    EXPECT_NE(*sig, webhook_signature(options.webhook_secrets, delivery_id("fest", "a1", "r-1"),
                                      1'700'000'001, req.body));
    EXPECT_NE(*sig, webhook_signature(options.webhook_secrets, delivery_id("fest", "a1", "r-1"),
                                      1'700'000'000, b->payload_json));
}

TEST(Requests, WebhookIsSignedWithEverySecretDuringRotation) {
    const auto b = build(announcement());
    gateway_options options;
    options.webhook_secrets = {secret_of('n'), secret_of('o')};
    const auto req = build_request(lane_kind::webhook, *b, webhook_recipient(), options, now);
    const auto sig = header(req, "webhook-signature");
    ASSERT_TRUE(sig);
    EXPECT_EQ(*sig, webhook_signature(options.webhook_secrets, delivery_id("fest", "a1", "r-1"),
                                      1'700'000'000, req.body));
    EXPECT_NE(sig->find(' '), std::string::npos);
}

TEST(Requests, TheSubscribersOwnSecretReplacesTheGlobalOnes) {
    const auto b = build(announcement());
    gateway_options options;
    options.webhook_secrets = {secret_of('g')};
    auto own = webhook_recipient();
    own.webhook_secrets = {secret_of('p')};
    const auto req = build_request(lane_kind::webhook, *b, own, options, now);
    const auto sig = header(req, "webhook-signature");
    ASSERT_TRUE(sig);
    const std::string id = delivery_id("fest", "a1", "r-1");
    EXPECT_EQ(*sig, webhook_signature(own.webhook_secrets, id, 1'700'000'000, req.body));
    // Only its own: a receiver holding the global key cannot verify it, so
    // one subscriber's deliveries are not forgeable with what others hold.
    EXPECT_EQ(sig->find(webhook_signature(options.webhook_secrets, id, 1'700'000'000, req.body)),
              std::string::npos);
    EXPECT_EQ(sig->find(' '), std::string::npos);
}

TEST(Requests, WithoutAnOwnSecretTheGlobalOnesSign) {
    const auto b = build(announcement());
    gateway_options options;
    options.webhook_secrets = {secret_of('g')};
    const auto req = build_request(lane_kind::webhook, *b, webhook_recipient(), options, now);
    EXPECT_EQ(header(req, "webhook-signature"),
              webhook_signature(options.webhook_secrets, delivery_id("fest", "a1", "r-1"), 1'700'000'000,
                                req.body));
}

TEST(Requests, AnOwnSecretSignsEvenWithoutGlobalOnesAndRotatesToo) {
    const auto b = build(announcement());
    auto own = webhook_recipient();
    own.webhook_secrets = {secret_of('n'), secret_of('o')};
    const auto req = build_request(lane_kind::webhook, *b, own, gateway_options{}, now);
    EXPECT_EQ(
        header(req, "webhook-signature"),
        webhook_signature(own.webhook_secrets, delivery_id("fest", "a1", "r-1"), 1'700'000'000, req.body));
}

TEST(Requests, WebhookEscapesRecipientIdsAndText) {
    const std::string text = "Say \"hi\"\n\tto the \\ crowd: Grüße 🎸 \x01 end";
    const auto b = build(announcement(text));
    const auto req =
        build_request(lane_kind::webhook, *b, webhook_recipient("odd\"id\\x"), gateway_options{}, now);
    const Struct st = parse(req.body);
    EXPECT_EQ(field(st, "text").string_value(), text);
    EXPECT_EQ(field(st, "recipient_id").string_value(), "odd\"id\\x");
}

// ---- sms -----------------------------------------------------------------------

TEST(Requests, SmsIsTheSignedWebhookBodyWithTheNumberToText) {
    const auto b = build(announcement());
    const auto r = phone_recipient(herald::v1::CHANNEL_SMS, "/v1/sms");
    gateway_options options;
    options.webhook_secrets = {secret_of('s')};
    const auto req = build_request(lane_kind::sms, *b, r, options, now);

    EXPECT_EQ(req.target, "/v1/sms");
    const Struct st = parse(req.body);
    EXPECT_EQ(field(st, "to").string_value(), "+4917612345678");
    EXPECT_EQ(field(st, "recipient_id").string_value(), "r-2");
    EXPECT_EQ(field(st, "text").string_value(), "Headliner moved to 21:00");
    EXPECT_EQ(field(st, "id").string_value(), "a1");

    const std::string id = delivery_id("fest", "a1", "r-2");
    EXPECT_EQ(header(req, "idempotency-key"), id);
    EXPECT_EQ(header(req, "webhook-id"), id);
    EXPECT_EQ(header(req, "webhook-timestamp"), "1700000000");
    EXPECT_EQ(header(req, "webhook-signature"),
              webhook_signature(options.webhook_secrets, id, 1'700'000'000, req.body));
    EXPECT_FALSE(header(req, "authorization"));  // no gateway token configured
}

TEST(Requests, SmsCarriesTheGatewaysBearerToken) {
    const auto b = build(announcement());
    gateway_options options;
    options.sms_gateway_token = "sms-gw-token";
    const auto req =
        build_request(lane_kind::sms, *b, phone_recipient(herald::v1::CHANNEL_SMS, "/v1/sms"), options, now);
    EXPECT_EQ(header(req, "authorization"), "Bearer sms-gw-token");
    // A webhook never gets the SMS gateway's credential.
    const auto hook = build_request(lane_kind::webhook, *b, webhook_recipient(), options, now);
    EXPECT_FALSE(header(hook, "authorization"));
}

// ---- whatsapp ------------------------------------------------------------------

gateway_options whatsapp_options() {
    gateway_options options;
    options.whatsapp_token = "EAAG-token";
    options.whatsapp_template = "herald_announcement";
    options.whatsapp_language = "en";
    return options;
}

TEST(Requests, WhatsAppSendsTheDefaultTemplateWithTheTextAsBodyParameter) {
    const auto b = build(announcement());
    const auto r = phone_recipient(herald::v1::CHANNEL_WHATSAPP, "/v21.0/123456/messages");
    const auto req = build_request(lane_kind::whatsapp, *b, r, whatsapp_options(), now);

    EXPECT_EQ(req.target, "/v21.0/123456/messages");
    EXPECT_EQ(header(req, "authorization"), "Bearer EAAG-token");
    EXPECT_EQ(header(req, "idempotency-key"), delivery_id("fest", "a1", "r-2"));

    const Struct st = parse(req.body);
    EXPECT_EQ(field(st, "messaging_product").string_value(), "whatsapp");
    EXPECT_EQ(field(st, "to").string_value(), "+4917612345678");
    EXPECT_EQ(field(st, "type").string_value(), "template");
    EXPECT_EQ(st.fields().count("text"), 0u);
    const Struct& tpl = field(st, "template").struct_value();
    EXPECT_EQ(field(tpl, "name").string_value(), "herald_announcement");
    EXPECT_EQ(field(field(tpl, "language").struct_value(), "code").string_value(), "en");
    const auto& components = field(tpl, "components").list_value();
    ASSERT_EQ(components.values_size(), 1);
    const Struct& component = components.values(0).struct_value();
    EXPECT_EQ(field(component, "type").string_value(), "body");
    const auto& parameters = field(component, "parameters").list_value();
    ASSERT_EQ(parameters.values_size(), 1);
    EXPECT_EQ(field(parameters.values(0).struct_value(), "type").string_value(), "text");
    EXPECT_EQ(field(parameters.values(0).struct_value(), "text").string_value(), "Headliner moved to 21:00");
}

TEST(Requests, WhatsAppTemplateAndLanguageComeFromTheConfiguration) {
    auto options = whatsapp_options();
    options.whatsapp_template = "festival_update";
    options.whatsapp_language = "de_DE";
    const auto b = build(announcement());
    const auto req = build_request(lane_kind::whatsapp, *b,
                                   phone_recipient(herald::v1::CHANNEL_WHATSAPP, "/m"), options, now);
    const Struct st = parse(req.body);
    const Struct& tpl = field(st, "template").struct_value();
    EXPECT_EQ(field(tpl, "name").string_value(), "festival_update");
    EXPECT_EQ(field(field(tpl, "language").struct_value(), "code").string_value(), "de_DE");
}

TEST(Requests, WhatsAppLabelsOverrideTheConfiguredTemplate) {
    auto a = announcement();
    (*a.mutable_labels())["whatsapp.template"] = "gate_change";
    (*a.mutable_labels())["whatsapp.language"] = "de";
    const auto b = build(a);
    const auto req =
        build_request(lane_kind::whatsapp, *b, phone_recipient(herald::v1::CHANNEL_WHATSAPP, "/m"),
                      whatsapp_options(), now);
    const Struct st = parse(req.body);
    const Struct& tpl = field(st, "template").struct_value();
    EXPECT_EQ(field(tpl, "name").string_value(), "gate_change");
    EXPECT_EQ(field(field(tpl, "language").struct_value(), "code").string_value(), "de");
}

TEST(Requests, WhatsAppTemplateLabelAloneKeepsTheConfiguredLanguage) {
    auto a = announcement();
    (*a.mutable_labels())["whatsapp.template"] = "gate_change";
    const auto b = build(a);
    const auto req =
        build_request(lane_kind::whatsapp, *b, phone_recipient(herald::v1::CHANNEL_WHATSAPP, "/m"),
                      whatsapp_options(), now);
    const Struct st = parse(req.body);
    const Struct& tpl = field(st, "template").struct_value();
    EXPECT_EQ(field(tpl, "name").string_value(), "gate_change");
    EXPECT_EQ(field(field(tpl, "language").struct_value(), "code").string_value(), "en");
}

TEST(Requests, WhatsAppTextTypeSendsFreeText) {
    auto a = announcement();
    (*a.mutable_labels())["whatsapp.type"] = "text";
    (*a.mutable_labels())["whatsapp.template"] = "ignored_for_free_text";
    const auto b = build(a);
    const auto req =
        build_request(lane_kind::whatsapp, *b, phone_recipient(herald::v1::CHANNEL_WHATSAPP, "/m"),
                      whatsapp_options(), now);
    EXPECT_EQ(header(req, "authorization"), "Bearer EAAG-token");
    const Struct st = parse(req.body);
    EXPECT_EQ(field(st, "messaging_product").string_value(), "whatsapp");
    EXPECT_EQ(field(st, "to").string_value(), "+4917612345678");
    EXPECT_EQ(field(st, "type").string_value(), "text");
    EXPECT_EQ(st.fields().count("template"), 0u);
    EXPECT_EQ(field(field(st, "text").struct_value(), "body").string_value(), "Headliner moved to 21:00");
}

TEST(Requests, WhatsAppEscapesTheTextInTemplatesAndFreeText) {
    const std::string text = "Gate \"B\" closed.\nUse gate C \\ D — Tür 🚪\ttab \x1f!";
    {
        const auto b = build(announcement(text));
        const auto req =
            build_request(lane_kind::whatsapp, *b, phone_recipient(herald::v1::CHANNEL_WHATSAPP, "/m"),
                          whatsapp_options(), now);
        const Struct st = parse(req.body);
        const Struct& tpl = field(st, "template").struct_value();
        const auto& components = field(tpl, "components").list_value();
        ASSERT_EQ(components.values_size(), 1);
        const auto& parameters = field(components.values(0).struct_value(), "parameters").list_value();
        ASSERT_EQ(parameters.values_size(), 1);
        EXPECT_EQ(field(parameters.values(0).struct_value(), "text").string_value(), text);
    }
    {
        auto a = announcement(text);
        (*a.mutable_labels())["whatsapp.type"] = "text";
        const auto b = build(a);
        const auto req =
            build_request(lane_kind::whatsapp, *b, phone_recipient(herald::v1::CHANNEL_WHATSAPP, "/m"),
                          whatsapp_options(), now);
        const Struct st = parse(req.body);
        EXPECT_EQ(field(field(st, "text").struct_value(), "body").string_value(), text);
    }
}

}  // namespace
}  // namespace herald::outbound
