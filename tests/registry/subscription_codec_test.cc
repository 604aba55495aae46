// The registry's subscription codec: the syntax checks (E.164, webhook URL,
// recipient id), the rules of validate_subscription with the field each
// refusal names, decoding from canonical JSON and protobuf binary, to_json
// round trips, and the CSV import with its line-numbered errors.
#include "registry/subscription_codec.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace herald::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

/// A subscription that passes validation: a webhook with consent.
herald::v1::Subscription valid_webhook() {
    herald::v1::Subscription s;
    s.set_recipient_id("user-1");
    s.add_audiences("lineup.rock");
    s.set_channel(herald::v1::CHANNEL_WEBHOOK);
    s.set_address("https://hooks.example.com/herald");
    s.mutable_consent()->mutable_given_at()->set_seconds(1714557600);
    s.mutable_consent()->set_source("web-form");
    return s;
}

std::vector<std::string> audiences_of(const herald::v1::Subscription& s) {
    return {s.audiences().begin(), s.audiences().end()};
}

std::vector<std::string> tags_of(const herald::v1::Subscription& s) {
    return {s.tags().begin(), s.tags().end()};
}

bool same(const herald::v1::Subscription& a, const herald::v1::Subscription& b) {
    return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

std::vector<std::size_t> accepted_lines(const csv_import& r) {
    std::vector<std::size_t> out;
    for (const auto& [line, s] : r.accepted) out.push_back(line);
    return out;
}

std::vector<std::size_t> error_lines(const csv_import& r) {
    std::vector<std::size_t> out;
    for (const auto& e : r.errors) out.push_back(e.line);
    return out;
}

std::string describe(const csv_import& r) {
    std::string out;
    for (const auto& e : r.errors) out += "line " + std::to_string(e.line) + ": " + e.reason + "\n";
    return out;
}

const char* const kHeader = "recipient_id,audiences,channel,address,consent_source,consent_given_at";

// ---- error category -------------------------------------------------------

TEST(RegistryErrc, MessagesAreTheStableMetricLabels) {
    EXPECT_EQ(make_error_code(errc::invalid_address).message(), "invalid_address");
    EXPECT_EQ(make_error_code(errc::malformed_json).message(), "malformed_json");
    EXPECT_EQ(make_error_code(errc::malformed_protobuf).message(), "malformed_protobuf");
    EXPECT_EQ(make_error_code(errc::missing_recipient_id).message(), "missing_recipient_id");
    EXPECT_EQ(make_error_code(errc::invalid_recipient_id).message(), "invalid_recipient_id");
    EXPECT_EQ(make_error_code(errc::invalid_tenant).message(), "invalid_tenant");
    EXPECT_EQ(make_error_code(errc::missing_audiences).message(), "missing_audiences");
    EXPECT_EQ(make_error_code(errc::invalid_audience).message(), "invalid_audience");
    EXPECT_EQ(make_error_code(errc::missing_channel).message(), "missing_channel");
    EXPECT_EQ(make_error_code(errc::missing_consent).message(), "missing_consent");
    EXPECT_EQ(make_error_code(errc::invalid_field).message(), "invalid_field");
    EXPECT_EQ(make_error_code(errc::insecure_webhook).message(), "insecure_webhook");
    EXPECT_STREQ(registry_category().name(), "herald.registry");
}

TEST(RegistryErrc, IsAnErrorCodeEnumInTheRegistryCategory) {
    const std::error_code ec = errc::missing_consent;
    EXPECT_EQ(&ec.category(), &registry_category());
    EXPECT_EQ(ec, make_error_code(errc::missing_consent));
    EXPECT_NE(ec, make_error_code(errc::invalid_field));
}

// ---- is_e164 --------------------------------------------------------------

TEST(RegistryE164, AcceptsPlusAndEightToFifteenDigits) {
    EXPECT_TRUE(is_e164("+4917612345678"));
    EXPECT_TRUE(is_e164("+12345678"));         // 8 digits, the shortest
    EXPECT_TRUE(is_e164("+123456789012345"));  // 15 digits, the longest
}

TEST(RegistryE164, RefusesMissingPlusLeadingZeroWrongLengthAndNonDigits) {
    EXPECT_FALSE(is_e164("4917612345678"));
    EXPECT_FALSE(is_e164("004917612345678"));
    EXPECT_FALSE(is_e164("+04917612345678"));
    EXPECT_FALSE(is_e164("+1234567"));           // 7 digits
    EXPECT_FALSE(is_e164("+1234567890123456"));  // 16 digits
    EXPECT_FALSE(is_e164("+49176abc45678"));
    EXPECT_FALSE(is_e164("+49 176 1234567"));
    EXPECT_FALSE(is_e164("+49-176-1234567"));
    EXPECT_FALSE(is_e164("++4917612345678"));
    EXPECT_FALSE(is_e164("+"));
    EXPECT_FALSE(is_e164(""));
}

// ---- is_webhook_url -------------------------------------------------------

TEST(RegistryWebhookUrl, AcceptsHttpAndHttpsWithHostPortPathAndQuery) {
    EXPECT_TRUE(is_webhook_url("https://example.com"));
    EXPECT_TRUE(is_webhook_url("http://example.com"));
    EXPECT_TRUE(is_webhook_url("https://example.com/"));
    EXPECT_TRUE(is_webhook_url("https://hooks.example.com/a/b?x=1&y=2"));
    EXPECT_TRUE(is_webhook_url("https://example.com?x=1"));
    EXPECT_TRUE(is_webhook_url("http://10.0.0.7:8080/hook"));
    EXPECT_TRUE(is_webhook_url("https://[::1]:8443/hook"));
    EXPECT_TRUE(is_webhook_url("https://[2001:db8::1]/hook"));
}

TEST(RegistryWebhookUrl, PortMustBeOneTo65535) {
    EXPECT_TRUE(is_webhook_url("https://example.com:1/"));
    EXPECT_TRUE(is_webhook_url("https://example.com:65535/"));
    EXPECT_TRUE(is_webhook_url("https://example.com:443"));
    EXPECT_FALSE(is_webhook_url("https://example.com:0/"));
    EXPECT_FALSE(is_webhook_url("https://example.com:65536/"));
    EXPECT_FALSE(is_webhook_url("https://example.com:99999/"));
    EXPECT_FALSE(is_webhook_url("https://example.com:123456/"));
    EXPECT_FALSE(is_webhook_url("https://example.com:/"));
    EXPECT_FALSE(is_webhook_url("https://example.com:8a/"));
    EXPECT_FALSE(is_webhook_url("https://example.com:-1/"));
    EXPECT_FALSE(is_webhook_url("https://[::1]:/"));
    EXPECT_FALSE(is_webhook_url("https://[::1]:0/"));
    EXPECT_FALSE(is_webhook_url("https://[::1]:65536/"));
}

TEST(RegistryWebhookUrl, RefusesOtherSchemesAndRelativeUrls) {
    EXPECT_FALSE(is_webhook_url("ftp://example.com/"));
    EXPECT_FALSE(is_webhook_url("ws://example.com/"));
    EXPECT_FALSE(is_webhook_url("example.com/hook"));
    EXPECT_FALSE(is_webhook_url("//example.com/hook"));
    EXPECT_FALSE(is_webhook_url("https:example.com"));
    EXPECT_FALSE(is_webhook_url(""));
}

TEST(RegistryWebhookUrl, RefusesUserinfo) {
    EXPECT_FALSE(is_webhook_url("https://user:secret@example.com/hook"));
    EXPECT_FALSE(is_webhook_url("https://user@example.com/hook"));
    EXPECT_FALSE(is_webhook_url("http://@example.com"));
}

TEST(RegistryWebhookUrl, RefusesFragment) {
    EXPECT_FALSE(is_webhook_url("https://example.com/hook#part"));
    EXPECT_FALSE(is_webhook_url("https://example.com#"));
}

TEST(RegistryWebhookUrl, RefusesWhitespaceAndControlCharacters) {
    EXPECT_FALSE(is_webhook_url("https://example.com/a b"));
    EXPECT_FALSE(is_webhook_url("https://exa mple.com/"));
    EXPECT_FALSE(is_webhook_url(" https://example.com/"));
    EXPECT_FALSE(is_webhook_url("https://example.com/\t"));
    EXPECT_FALSE(is_webhook_url("https://example.com/\n"));
    EXPECT_FALSE(is_webhook_url("https://example.com/\x7f"));
}

TEST(RegistryWebhookUrl, RefusesMissingHost) {
    EXPECT_FALSE(is_webhook_url("https://"));
    EXPECT_FALSE(is_webhook_url("http://"));
    EXPECT_FALSE(is_webhook_url("https:///hook"));
    EXPECT_FALSE(is_webhook_url("https://?x=1"));
    EXPECT_FALSE(is_webhook_url("https://:8080/hook"));
    EXPECT_FALSE(is_webhook_url("https://[]:8080/hook"));
    EXPECT_FALSE(is_webhook_url("https://[::1/hook"));
}

TEST(RegistryWebhookUrl, AtMost2048Characters) {
    const std::string base = "https://example.com/";
    const std::string exactly = base + std::string(2048 - base.size(), 'a');
    ASSERT_EQ(exactly.size(), 2048u);
    EXPECT_TRUE(is_webhook_url(exactly));
    EXPECT_FALSE(is_webhook_url(exactly + "a"));
}

// ---- is_valid_recipient_id ------------------------------------------------

TEST(RegistryRecipientId, AcceptsOneTo128OfTheAllowedCharacters) {
    EXPECT_TRUE(is_valid_recipient_id("a"));
    EXPECT_TRUE(is_valid_recipient_id("user-1"));
    EXPECT_TRUE(is_valid_recipient_id("Az09._:@+-"));
    EXPECT_TRUE(is_valid_recipient_id("crm:contact@fest.example+49"));
    EXPECT_TRUE(is_valid_recipient_id(std::string(128, 'x')));
}

TEST(RegistryRecipientId, RefusesEmptyTooLongAndOtherCharacters) {
    EXPECT_FALSE(is_valid_recipient_id(""));
    EXPECT_FALSE(is_valid_recipient_id(std::string(129, 'x')));
    EXPECT_FALSE(is_valid_recipient_id("user 1"));
    EXPECT_FALSE(is_valid_recipient_id("user/1"));
    EXPECT_FALSE(is_valid_recipient_id("user;1"));
    EXPECT_FALSE(is_valid_recipient_id("user,1"));
    EXPECT_FALSE(is_valid_recipient_id("J\xc3\xbcrgen"));  // "Jürgen" in UTF-8
    EXPECT_FALSE(is_valid_recipient_id(std::string("user\0x", 6)));
}

// ---- validate_subscription ------------------------------------------------

TEST(RegistryValidate, AcceptsAValidWebhookAndDefaultsTheTenant) {
    auto s = valid_webhook();
    ASSERT_TRUE(s.tenant().empty());
    auto r = validate_subscription(s);
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(s.tenant(), "default");
}

TEST(RegistryValidate, KeepsAnExplicitTenant) {
    auto s = valid_webhook();
    s.set_tenant("fest-a.2024_x");
    ASSERT_TRUE(validate_subscription(s));
    EXPECT_EQ(s.tenant(), "fest-a.2024_x");
}

TEST(RegistryValidate, SortsAndDeduplicatesAudiences) {
    auto s = valid_webhook();
    s.clear_audiences();
    for (const char* a : {"lineup.rock", "news", "lineup.rock", "alerts:stage-2", "news", "alerts"})
        s.add_audiences(a);
    ASSERT_TRUE(validate_subscription(s));
    EXPECT_THAT(audiences_of(s), ElementsAre("alerts", "alerts:stage-2", "lineup.rock", "news"));
}

TEST(RegistryValidate, MissingRecipientId) {
    auto s = valid_webhook();
    s.clear_recipient_id();
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_recipient_id));
    EXPECT_THAT(r.err().detail, StartsWith("recipient_id"));
}

TEST(RegistryValidate, InvalidRecipientId) {
    auto s = valid_webhook();
    s.set_recipient_id("user 1");
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::invalid_recipient_id));
    EXPECT_THAT(r.err().detail, StartsWith("recipient_id"));
    EXPECT_THAT(r.err().detail, HasSubstr("user 1"));
}

TEST(RegistryValidate, InvalidTenant) {
    for (const std::string& tenant :
         {std::string("Fest-A"), std::string("fest a"), std::string("fest/a"), std::string(65, 't')}) {
        auto s = valid_webhook();
        s.set_tenant(tenant);
        auto r = validate_subscription(s);
        ASSERT_FALSE(r) << tenant;
        EXPECT_EQ(r.err().code, make_error_code(errc::invalid_tenant)) << tenant;
        EXPECT_THAT(r.err().detail, StartsWith("tenant")) << tenant;
    }
    auto s = valid_webhook();
    s.set_tenant(std::string(64, 't'));
    EXPECT_TRUE(validate_subscription(s)) << "a 64-character tenant is allowed";
}

TEST(RegistryValidate, MissingAudiences) {
    auto s = valid_webhook();
    s.clear_audiences();
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_audiences));
    EXPECT_THAT(r.err().detail, StartsWith("audiences"));
}

TEST(RegistryValidate, AtMost256Audiences) {
    auto s = valid_webhook();
    s.clear_audiences();
    for (int i = 0; i < 256; ++i) s.add_audiences("a" + std::to_string(i));
    ASSERT_TRUE(validate_subscription(s));
    EXPECT_EQ(s.audiences_size(), 256);

    s.add_audiences("a256");
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_audiences));
    EXPECT_THAT(r.err().detail, StartsWith("audiences"));
    EXPECT_THAT(r.err().detail, HasSubstr("257"));
}

TEST(RegistryValidate, InvalidAudienceNamesTheAudience) {
    for (const std::string& bad :
         {std::string("Rock"), std::string("-rock"), std::string(".rock"), std::string("rock am ring"),
          std::string("rock/ring"), std::string(129, 'a')}) {
        auto s = valid_webhook();
        s.add_audiences(bad);
        auto r = validate_subscription(s);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.err().code, make_error_code(errc::invalid_audience)) << bad;
        EXPECT_THAT(r.err().detail, StartsWith("audiences")) << bad;
        if (bad.size() < 100) {
            EXPECT_THAT(r.err().detail, HasSubstr("\"" + bad + "\""));
        }
    }
}

TEST(RegistryValidate, MissingChannel) {
    auto s = valid_webhook();
    s.set_channel(herald::v1::CHANNEL_UNSPECIFIED);
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_channel));
    EXPECT_THAT(r.err().detail, StartsWith("channel"));

    s.set_channel(static_cast<herald::v1::Channel>(42));  // an unknown value off the wire
    r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_channel));
}

TEST(RegistryValidate, WebhookAddressMustBeAUrl) {
    auto s = valid_webhook();
    s.set_address("+4917612345678");
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::invalid_address));
    EXPECT_THAT(r.err().detail, StartsWith("address"));
    EXPECT_THAT(r.err().detail, HasSubstr("URL"));
    EXPECT_THAT(r.err().detail, HasSubstr("+4917612345678"));

    s.clear_address();
    r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::invalid_address));
}

TEST(RegistryValidate, WhatsAppAndSmsAddressesMustBeE164) {
    for (const auto channel : {herald::v1::CHANNEL_WHATSAPP, herald::v1::CHANNEL_SMS}) {
        auto s = valid_webhook();
        s.set_channel(channel);
        auto r = validate_subscription(s);  // still the https:// URL
        ASSERT_FALSE(r) << channel;
        EXPECT_EQ(r.err().code, make_error_code(errc::invalid_address)) << channel;
        EXPECT_THAT(r.err().detail, StartsWith("address")) << channel;
        EXPECT_THAT(r.err().detail, HasSubstr("E.164")) << channel;

        s.set_address("0171-123");
        r = validate_subscription(s);
        ASSERT_FALSE(r) << channel;
        EXPECT_EQ(r.err().detail, "address: not an E.164 phone number: 0171-123");

        s.set_address("+4917612345678");
        r = validate_subscription(s);
        EXPECT_TRUE(r) << channel << ": " << r.err().describe();
    }
}

TEST(RegistryValidate, ConsentIsRequired) {
    auto s = valid_webhook();
    s.clear_consent();
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_consent));
    EXPECT_THAT(r.err().detail, StartsWith("consent.given_at"));
}

TEST(RegistryValidate, ConsentNeedsGivenAt) {
    auto s = valid_webhook();
    s.mutable_consent()->clear_given_at();
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_consent));
    EXPECT_THAT(r.err().detail, StartsWith("consent.given_at"));
}

TEST(RegistryValidate, ConsentSourceIsOneTo128Characters) {
    auto s = valid_webhook();
    s.mutable_consent()->clear_source();
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_consent));
    EXPECT_THAT(r.err().detail, StartsWith("consent.source"));

    s.mutable_consent()->set_source(std::string(129, 's'));
    r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::missing_consent));
    EXPECT_THAT(r.err().detail, StartsWith("consent.source"));

    s.mutable_consent()->set_source(std::string(128, 's'));
    EXPECT_TRUE(validate_subscription(s));
}

TEST(RegistryValidate, NoConsentNeededOnceOptedOut) {
    auto s = valid_webhook();
    s.clear_consent();
    s.mutable_opted_out_at()->set_seconds(1714560000);
    auto r = validate_subscription(s);
    EXPECT_TRUE(r) << r.err().describe();

    s.mutable_consent()->set_source("");  // a consent without given_at or source
    r = validate_subscription(s);
    EXPECT_TRUE(r) << r.err().describe();
}

TEST(RegistryValidate, AtMost32Tags) {
    auto s = valid_webhook();
    for (int i = 0; i < 32; ++i) s.add_tags("t" + std::to_string(i));
    ASSERT_TRUE(validate_subscription(s));

    s.add_tags("t32");
    auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::invalid_field));
    EXPECT_THAT(r.err().detail, StartsWith("tags"));
    EXPECT_THAT(r.err().detail, HasSubstr("33"));
}

// ---- decode_subscription / to_json ----------------------------------------

const char* const kCanonicalJson =
    R"({"recipient_id":"user-7","tenant":"fest-a","audiences":["news","lineup.rock","news"],)"
    R"("channel":"CHANNEL_WHATSAPP","address":"+4917612345678",)"
    R"("consent":{"given_at":"2024-05-01T10:00:00Z","source":"qr-code"},"tags":["vip"]})";

TEST(RegistryDecode, FromCanonicalJson) {
    auto r = decode_subscription(kCanonicalJson, /*is_json=*/true);
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->recipient_id(), "user-7");
    EXPECT_EQ(r->tenant(), "fest-a");
    EXPECT_THAT(audiences_of(*r), ElementsAre("lineup.rock", "news"));
    EXPECT_EQ(r->channel(), herald::v1::CHANNEL_WHATSAPP);
    EXPECT_EQ(r->address(), "+4917612345678");
    EXPECT_EQ(r->consent().given_at().seconds(), 1714557600);
    EXPECT_EQ(r->consent().source(), "qr-code");
    EXPECT_THAT(tags_of(*r), ElementsAre("vip"));
    EXPECT_FALSE(r->has_opted_out_at());
}

TEST(RegistryDecode, JsonIsValidatedAndTheTenantDefaulted) {
    auto r = decode_subscription(
        R"({"recipient_id":"u1","audiences":["news"],"channel":"CHANNEL_WEBHOOK","address":"https://x.example/h",)"
        R"("consent":{"given_at":"2024-05-01T10:00:00Z","source":"web"}})",
        true);
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->tenant(), "default");

    auto bad = decode_subscription(
        R"({"recipient_id":"u1","audiences":["news"],"channel":"CHANNEL_SMS","address":"0171-123",)"
        R"("consent":{"given_at":"2024-05-01T10:00:00Z","source":"web"}})",
        true);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.err().code, make_error_code(errc::invalid_address));
    EXPECT_THAT(bad.err().detail, StartsWith("address"));
}

TEST(RegistryDecode, AcceptsShortChannelNamesInJson) {
    auto r = decode_subscription(
        R"({"recipient_id":"u1","audiences":["news"],"channel":"Sms","address":"+4917612345678",)"
        R"("consent":{"given_at":"2024-05-01T10:00:00Z","source":"web"}})",
        true);
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->channel(), herald::v1::CHANNEL_SMS);
    EXPECT_EQ(r->consent().given_at().seconds(), 1714557600);
}

TEST(RegistryDecode, UnknownJsonFieldIsMalformedJson) {
    auto r = decode_subscription(
        R"({"recipient_id":"u1","audiences":["news"],"channel":"CHANNEL_WEBHOOK","address":"https://x.example/h",)"
        R"("consent":{"given_at":"2024-05-01T10:00:00Z","source":"web"},"adress":"typo"})",
        true);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::malformed_json));
    EXPECT_FALSE(r.err().detail.empty());

    // Also when the short channel name sends it down the second parse.
    r = decode_subscription(
        R"({"recipient_id":"u1","audiences":["news"],"channel":"webhook","address":"https://x.example/h",)"
        R"("consent":{"given_at":"2024-05-01T10:00:00Z","source":"web"},"adress":"typo"})",
        true);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::malformed_json));
}

TEST(RegistryDecode, NotJsonIsMalformedJson) {
    for (const char* text : {"", "not json", "{\"recipient_id\":", "[1,2]", R"({"channel":"CHANNEL_FAX"})",
                             R"({"consent":"yes"})"}) {
        auto r = decode_subscription(text, true);
        ASSERT_FALSE(r) << text;
        EXPECT_EQ(r.err().code, make_error_code(errc::malformed_json)) << text;
    }
}

TEST(RegistryDecode, FromProtobufBinary) {
    auto s = valid_webhook();
    s.set_tenant("fest-b");
    s.add_audiences("alerts");  // out of order on the wire
    s.add_tags("early");
    const std::string wire = s.SerializeAsString();

    auto r = decode_subscription(wire, /*is_json=*/false);
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->recipient_id(), "user-1");
    EXPECT_EQ(r->tenant(), "fest-b");
    EXPECT_THAT(audiences_of(*r), ElementsAre("alerts", "lineup.rock"));
    EXPECT_EQ(r->address(), "https://hooks.example.com/herald");
    EXPECT_EQ(r->consent().given_at().seconds(), 1714557600);
    EXPECT_THAT(tags_of(*r), ElementsAre("early"));
}

TEST(RegistryDecode, BinaryIsValidatedToo) {
    auto s = valid_webhook();
    s.set_address("ftp://example.com/");
    auto r = decode_subscription(s.SerializeAsString(), false);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::invalid_address));
}

TEST(RegistryDecode, GarbageBinaryIsMalformedProtobuf) {
    const std::string truncated = valid_webhook().SerializeAsString().substr(0, 10);
    for (const std::string& garbage : {std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),
                                       std::string("\x0a\x7f"
                                                   "abc",
                                                   5),
                                       std::string("\x0f\x01", 2), truncated}) {
        auto r = decode_subscription(garbage, false);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.err().code, make_error_code(errc::malformed_protobuf));
    }
}

TEST(RegistryDecode, JsonGivenAsBinaryIsRefused) {
    auto r = decode_subscription(kCanonicalJson, false);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::malformed_protobuf));
}

TEST(RegistryToJson, OneLineWithProtoFieldNames) {
    auto s = valid_webhook();
    ASSERT_TRUE(validate_subscription(s));
    const std::string json = to_json(s);
    EXPECT_EQ(json.find('\n'), std::string::npos);
    EXPECT_THAT(json, HasSubstr("\"recipient_id\":\"user-1\""));
    EXPECT_THAT(json, HasSubstr("\"CHANNEL_WEBHOOK\""));
    EXPECT_THAT(json, HasSubstr("\"given_at\":\"2024-05-01T10:00:00Z\""));
    EXPECT_EQ(json.find("recipientId"), std::string::npos);
}

TEST(RegistryToJson, RoundTripsThroughDecode) {
    herald::v1::Subscription s;
    s.set_recipient_id("crm:42@fest.example");
    s.set_tenant("fest-a");
    s.add_audiences("alerts");
    s.add_audiences("lineup.rock");
    s.set_channel(herald::v1::CHANNEL_WHATSAPP);
    s.set_address("+4917612345678");
    s.mutable_consent()->mutable_given_at()->set_seconds(1714557600);
    s.mutable_consent()->mutable_given_at()->set_nanos(250000000);
    s.mutable_consent()->set_source("keyword:JOIN");
    s.mutable_opted_out_at()->set_seconds(1714600000);
    s.mutable_last_inbound_at()->set_seconds(1714590000);
    s.add_tags("vip");
    s.add_tags("early \"bird\"");
    ASSERT_TRUE(validate_subscription(s));

    auto back = decode_subscription(to_json(s), true);
    ASSERT_TRUE(back) << back.err().describe() << "\n" << to_json(s);
    EXPECT_TRUE(same(*back, s)) << back->DebugString() << "\nvs\n" << s.DebugString();

    auto minimal = valid_webhook();
    ASSERT_TRUE(validate_subscription(minimal));
    auto back2 = decode_subscription(to_json(minimal), true);
    ASSERT_TRUE(back2) << back2.err().describe();
    EXPECT_TRUE(same(*back2, minimal));
}

// ---- the subscription's own webhook secret --------------------------------

const std::string own_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string rotated_secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

TEST(RegistryWebhookSecret, AcceptsOneOrARotatingListOnAWebhook) {
    auto s = valid_webhook();
    s.set_webhook_secret(own_secret);
    EXPECT_TRUE(validate_subscription(s));
    s.set_webhook_secret(rotated_secret + "," + own_secret);
    EXPECT_TRUE(validate_subscription(s));
    s.set_webhook_secret(rotated_secret + ", " + own_secret);  // spaces around items, as in heraldd's setting
    EXPECT_TRUE(validate_subscription(s));
}

TEST(RegistryWebhookSecret, RefusesMalformedSecretsWithoutQuotingThem) {
    for (const std::string bad :
         {std::string("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),        // no whsec_
          std::string("whsec_QUJD"),                              // 3 bytes: too short to be a key
          std::string("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"),   // not a multiple of 4
          std::string("whsec_MfKQ9r8G=YqrTwjUPD8ILPZIo2LaLaSw"),  // padding in the middle
          std::string("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La-aSw"),  // not the base64 alphabet
          own_secret + ",", "," + own_secret}) {
        auto s = valid_webhook();
        s.set_webhook_secret(bad);
        const auto r = validate_subscription(s);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.err().code, make_error_code(errc::invalid_field));
        EXPECT_THAT(r.err().detail, StartsWith("webhook_secret: "));
        EXPECT_EQ(r.err().detail.find("MfKQ9r8G"), std::string::npos) << r.err().detail;
        EXPECT_EQ(r.err().detail.find("QUJD"), std::string::npos) << r.err().detail;
    }
}

TEST(RegistryWebhookSecret, OnlyAWebhookHasItsOwnSecret) {
    auto s = valid_webhook();
    s.set_channel(herald::v1::CHANNEL_SMS);
    s.set_address("+4917612345678");
    s.set_webhook_secret(own_secret);
    const auto r = validate_subscription(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::invalid_field));
    EXPECT_THAT(r.err().detail, StartsWith("webhook_secret: only a webhook"));
}

TEST(RegistryWebhookSecret, RoundTripsOnTheFeedButNeverInTheApiForm) {
    auto s = valid_webhook();
    s.set_webhook_secret(own_secret);
    ASSERT_TRUE(validate_subscription(s));
    // herald.subscriptions carries it: every instance signs with it.
    const std::string record = to_json(s);
    EXPECT_THAT(record, HasSubstr("\"webhook_secret\":\"" + own_secret + "\""));
    auto back = decode_subscription(record, true);
    ASSERT_TRUE(back) << back.err().describe();
    EXPECT_TRUE(same(*back, s));
    auto binary = decode_subscription(s.SerializeAsString(), false);
    ASSERT_TRUE(binary) << binary.err().describe();
    EXPECT_EQ(binary->webhook_secret(), own_secret);
    // What the API shows: everything else, and neither the field nor the value.
    const std::string shown = to_api_json(s);
    EXPECT_EQ(shown.find("webhook_secret"), std::string::npos) << shown;
    EXPECT_EQ(shown.find("MfKQ9r8G"), std::string::npos) << shown;
    auto without = s;
    without.clear_webhook_secret();
    EXPECT_EQ(shown, to_json(without));
    // Without a secret both forms are the same.
    EXPECT_EQ(to_api_json(without), to_json(without));
}

TEST(RegistryWebhookSecret, RedactionMasksEverySecretAndKeepsProtobufFraming) {
    auto s = valid_webhook();
    s.set_webhook_secret(rotated_secret + "," + own_secret);
    ASSERT_TRUE(validate_subscription(s));
    const std::string json = redact_secrets(to_json(s));
    EXPECT_EQ(json.find("MfKQ9r8G"), std::string::npos) << json;
    EXPECT_EQ(json.find("AAAAAAAA"), std::string::npos) << json;
    EXPECT_THAT(json, HasSubstr("\"webhook_secret\":\"whsec_****"));
    EXPECT_THAT(json, HasSubstr("\"address\":\"https://hooks.example.com/herald\""));  // the rest untouched
    const std::string binary = s.SerializeAsString();
    const std::string masked = redact_secrets(binary);
    ASSERT_EQ(masked.size(), binary.size());
    EXPECT_EQ(masked.find("MfKQ9r8G"), std::string::npos);
    herald::v1::Subscription parsed;
    ASSERT_TRUE(parsed.ParseFromString(masked));  // still a record, with the secret masked
    EXPECT_EQ(parsed.recipient_id(), "user-1");
    EXPECT_EQ(parsed.webhook_secret().rfind("whsec_*", 0), 0u);
    EXPECT_EQ(redact_secrets("no secret here"), "no secret here");
}

// ---- plain http:// webhooks -----------------------------------------------

TEST(RegistryTransport, PlainHttpWebhooksAreRefusedUnlessAllowed) {
    auto s = valid_webhook();
    s.set_address("http://hooks.example.com/herald");
    ASSERT_TRUE(validate_subscription(s));  // a URL all the same
    EXPECT_TRUE(is_insecure_webhook(s));
    const auto r = check_webhook_transport(s, false);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, make_error_code(errc::insecure_webhook));
    EXPECT_THAT(r.err().detail, StartsWith("address: plain http:// webhooks are refused"));
    EXPECT_THAT(r.err().detail, HasSubstr("--allow-insecure-webhooks"));
    EXPECT_TRUE(check_webhook_transport(s, true));
}

TEST(RegistryTransport, HttpsPhonesAndOptOutsPass) {
    auto s = valid_webhook();
    EXPECT_FALSE(is_insecure_webhook(s));
    EXPECT_TRUE(check_webhook_transport(s, false));
    auto phone = valid_webhook();
    phone.set_channel(herald::v1::CHANNEL_WHATSAPP);
    phone.set_address("+4917612345678");
    EXPECT_TRUE(check_webhook_transport(phone, false));
    // An opt-out must always apply, whatever the URL: nothing is sent to it.
    auto out = valid_webhook();
    out.set_address("http://hooks.example.com/herald");
    out.mutable_opted_out_at()->set_seconds(1714600000);
    EXPECT_FALSE(is_insecure_webhook(out));
    EXPECT_TRUE(check_webhook_transport(out, false));
}

// ---- parse_subscriptions_csv ----------------------------------------------

TEST(RegistryCsv, AcceptsAValidFile) {
    const std::string text = std::string(kHeader) +
                             "\n"
                             "u1,news,webhook,https://x.example/h,web-form,2024-05-01T10:00:00Z\n"
                             "u2,news;alerts,sms,+4917612345678,keyword:JOIN,2024-05-02T00:00:00+02:00\n";
    const auto r = parse_subscriptions_csv(text);
    EXPECT_TRUE(r.errors.empty()) << describe(r);
    ASSERT_EQ(r.accepted.size(), 2u);
    EXPECT_THAT(accepted_lines(r), ElementsAre(2u, 3u));
    const auto& u1 = r.accepted[0].second;
    EXPECT_EQ(u1.recipient_id(), "u1");
    EXPECT_EQ(u1.tenant(), "default");
    EXPECT_THAT(audiences_of(u1), ElementsAre("news"));
    EXPECT_EQ(u1.channel(), herald::v1::CHANNEL_WEBHOOK);
    EXPECT_EQ(u1.address(), "https://x.example/h");
    EXPECT_EQ(u1.consent().source(), "web-form");
    EXPECT_EQ(u1.consent().given_at().seconds(), 1714557600);
    const auto& u2 = r.accepted[1].second;
    EXPECT_EQ(u2.channel(), herald::v1::CHANNEL_SMS);
    EXPECT_THAT(audiences_of(u2), ElementsAre("alerts", "news"));
    EXPECT_EQ(u2.consent().given_at().seconds(), 1714600800);  // 2024-05-01T22:00:00Z
}

TEST(RegistryCsv, HeaderColumnsInAnyOrder) {
    const auto r = parse_subscriptions_csv(
        "consent_given_at,address,audiences,consent_source,channel,recipient_id\n"
        "2024-05-01T10:00:00Z,+4917612345678,lineup.rock,qr-code,WhatsApp,u9\n");
    ASSERT_TRUE(r.errors.empty()) << describe(r);
    ASSERT_EQ(r.accepted.size(), 1u);
    const auto& s = r.accepted[0].second;
    EXPECT_EQ(s.recipient_id(), "u9");
    EXPECT_EQ(s.channel(), herald::v1::CHANNEL_WHATSAPP);
    EXPECT_EQ(s.address(), "+4917612345678");
    EXPECT_THAT(audiences_of(s), ElementsAre("lineup.rock"));
    EXPECT_EQ(s.consent().source(), "qr-code");
    EXPECT_EQ(s.consent().given_at().seconds(), 1714557600);
}

TEST(RegistryCsv, HeaderNamesAreTrimmedAndCaseInsensitive) {
    const auto r = parse_subscriptions_csv(
        " Recipient_ID ,AUDIENCES,channel, address,consent_source,consent_given_at\n"
        "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n");
    ASSERT_TRUE(r.errors.empty()) << describe(r);
    ASSERT_EQ(r.accepted.size(), 1u);
    EXPECT_EQ(r.accepted[0].second.recipient_id(), "u1");
}

TEST(RegistryCsv, QuotedFieldsWithEscapedQuotesAndCommas) {
    const std::string text = std::string(kHeader) +
                             "\n"
                             R"("u1","news;alerts",webhook,"https://x.example/h?a=1,2","web ""form"", v2",)"
                             "2024-05-01T10:00:00Z\n";
    const auto r = parse_subscriptions_csv(text);
    ASSERT_TRUE(r.errors.empty()) << describe(r);
    ASSERT_EQ(r.accepted.size(), 1u);
    const auto& s = r.accepted[0].second;
    EXPECT_EQ(s.recipient_id(), "u1");
    EXPECT_THAT(audiences_of(s), ElementsAre("alerts", "news"));
    EXPECT_EQ(s.address(), "https://x.example/h?a=1,2");
    EXPECT_EQ(s.consent().source(), "web \"form\", v2");
}

TEST(RegistryCsv, QuotedFieldSpanningLinesKeepsLineNumbersRight) {
    const std::string text = std::string(kHeader) +
                             "\n"
                             "u1,news,webhook,https://x.example/h,\"paper form\nsigned at gate 3\","
                             "2024-05-01T10:00:00Z\n"                                  // lines 2-3
                             "u2,news,sms,0171-123,web,2024-05-01T10:00:00Z\n"         // line 4
                             "u3,news,sms,+4917612345678,web,2024-05-01T10:00:00Z\n";  // line 5
    const auto r = parse_subscriptions_csv(text);
    EXPECT_THAT(accepted_lines(r), ElementsAre(2u, 5u));
    ASSERT_EQ(r.accepted.size(), 2u);
    EXPECT_EQ(r.accepted[0].second.consent().source(), "paper form\nsigned at gate 3");
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 4u);
    EXPECT_THAT(r.errors[0].reason, StartsWith("address"));
}

TEST(RegistryCsv, CrlfLineEndings) {
    const std::string text = std::string(kHeader) +
                             "\r\n"
                             "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\r\n"
                             "u2,news,sms,+4917612345678,web,2024-05-01T10:00:00Z\r\n";
    const auto r = parse_subscriptions_csv(text);
    ASSERT_TRUE(r.errors.empty()) << describe(r);
    EXPECT_THAT(accepted_lines(r), ElementsAre(2u, 3u));
    ASSERT_EQ(r.accepted.size(), 2u);
    EXPECT_EQ(r.accepted[0].second.consent().given_at().seconds(), 1714557600);
    EXPECT_EQ(r.accepted[1].second.consent().given_at().seconds(), 1714557600);
}

TEST(RegistryCsv, FinalLineWithoutNewline) {
    for (const char* eol : {"\n", "\r\n"}) {
        const std::string text = std::string(kHeader) + eol +
                                 "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z" + eol +
                                 "u2,news,webhook,https://x.example/h2,web,2024-05-01T10:00:00Z";
        const auto r = parse_subscriptions_csv(text);
        EXPECT_TRUE(r.errors.empty()) << describe(r);
        EXPECT_THAT(accepted_lines(r), ElementsAre(2u, 3u));
        ASSERT_EQ(r.accepted.size(), 2u);
        EXPECT_EQ(r.accepted[1].second.recipient_id(), "u2");
        EXPECT_EQ(r.accepted[1].second.consent().given_at().seconds(), 1714557600);
    }
}

TEST(RegistryCsv, BlankLinesAreSkippedButCounted) {
    const std::string text = std::string(kHeader) +
                             "\n"
                             "\n"
                             "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n"  // line 3
                             "   \n"
                             "\r\n"
                             "u2,news,sms,+49,web,2024-05-01T10:00:00Z\n"  // line 6
                             "\n";
    const auto r = parse_subscriptions_csv(text);
    EXPECT_THAT(accepted_lines(r), ElementsAre(3u));
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 6u);
    EXPECT_THAT(r.errors[0].reason, StartsWith("address"));
}

TEST(RegistryCsv, MissingRequiredColumnIsOneErrorOnLineOneAndNothingAccepted) {
    const auto r = parse_subscriptions_csv(
        "recipient_id,audiences,channel,address,consent_given_at\n"
        "u1,news,webhook,https://x.example/h,2024-05-01T10:00:00Z\n"
        "u2,news,webhook,https://x.example/h,2024-05-01T10:00:00Z\n");
    EXPECT_TRUE(r.accepted.empty());
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 1u);
    EXPECT_THAT(r.errors[0].reason, HasSubstr("consent_source"));
}

TEST(RegistryCsv, EveryRequiredColumnIsRequired) {
    const std::vector<std::string> columns = {"recipient_id", "audiences",      "channel",
                                              "address",      "consent_source", "consent_given_at"};
    for (std::size_t drop = 0; drop < columns.size(); ++drop) {
        std::string header;
        for (std::size_t c = 0; c < columns.size(); ++c) {
            if (c == drop)
                continue;
            header += (header.empty() ? "" : ",") + columns[c];
        }
        const auto r = parse_subscriptions_csv(header + "\n");
        EXPECT_TRUE(r.accepted.empty());
        ASSERT_EQ(r.errors.size(), 1u) << columns[drop];
        EXPECT_EQ(r.errors[0].line, 1u);
        EXPECT_THAT(r.errors[0].reason, HasSubstr("\"" + columns[drop] + "\""));
    }
}

TEST(RegistryCsv, UnknownOrDuplicateHeaderColumnIsRefused) {
    auto r = parse_subscriptions_csv(std::string(kHeader) +
                                     ",email\n"
                                     "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z,a@b\n");
    EXPECT_TRUE(r.accepted.empty());
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 1u);
    EXPECT_THAT(r.errors[0].reason, HasSubstr("email"));

    r = parse_subscriptions_csv(std::string(kHeader) +
                                ",channel\n"
                                "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z,sms\n");
    EXPECT_TRUE(r.accepted.empty());
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 1u);
    EXPECT_THAT(r.errors[0].reason, HasSubstr("channel"));
}

TEST(RegistryCsv, EmptyFileIsOneErrorOnLineOne) {
    for (const char* text : {"", "\n\n", "  \r\n"}) {
        const auto r = parse_subscriptions_csv(text);
        EXPECT_TRUE(r.accepted.empty());
        ASSERT_EQ(r.errors.size(), 1u);
        EXPECT_EQ(r.errors[0].line, 1u);
    }
}

TEST(RegistryCsv, BadRowsAreReportedWithLineAndFieldGoodRowsAroundThemAccepted) {
    const std::string text =
        std::string(kHeader) +
        "\n"
        "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n"        // 2 good
        "u2,news,sms,0171-123,web,2024-05-01T10:00:00Z\n"                       // 3 address
        "u3,news,whatsapp,+4917612345678,web,2024-05-01T10:00:00Z\n"            // 4 good
        "u4,news,fax,+4917612345678,web,2024-05-01T10:00:00Z\n"                 // 5 channel
        "u5,news,sms,+4917612345678,web,yesterday\n"                            // 6 consent_given_at
        "u6,news,sms,+4917612345678,web\n"                                      // 7 field count
        "u7,News,sms,+4917612345678,web,2024-05-01T10:00:00Z\n"                 // 8 audience
        "u8,,sms,+4917612345678,web,2024-05-01T10:00:00Z\n"                     // 9 audiences
        "u 9,news,sms,+4917612345678,web,2024-05-01T10:00:00Z\n"                // 10 recipient_id
        ",news,sms,+4917612345678,web,2024-05-01T10:00:00Z\n"                   // 11 recipient_id
        "u10,news,sms,+4917612345678,,2024-05-01T10:00:00Z\n"                   // 12 consent.source
        "u11,news,sms,+4917612345678,web,\n"                                    // 13 consent.given_at
        "u12,news,webhook,https://user@x.example/h,web,2024-05-01T10:00:00Z\n"  // 14 address
        "u13,news,sms,+4917612345678,web,2024-05-01T10:00:00Z\n";               // 15 good
    const auto r = parse_subscriptions_csv(text);
    EXPECT_THAT(accepted_lines(r), ElementsAre(2u, 4u, 15u));
    ASSERT_EQ(r.accepted.size(), 3u);
    EXPECT_EQ(r.accepted[0].second.recipient_id(), "u1");
    EXPECT_EQ(r.accepted[1].second.recipient_id(), "u3");
    EXPECT_EQ(r.accepted[2].second.recipient_id(), "u13");

    ASSERT_THAT(error_lines(r), ElementsAre(3u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u)) << describe(r);
    EXPECT_EQ(r.errors[0].reason, "address: not an E.164 phone number: 0171-123");
    EXPECT_THAT(r.errors[1].reason, StartsWith("channel"));
    EXPECT_THAT(r.errors[1].reason, HasSubstr("fax"));
    EXPECT_THAT(r.errors[2].reason, StartsWith("consent_given_at"));
    EXPECT_THAT(r.errors[2].reason, HasSubstr("yesterday"));
    EXPECT_THAT(r.errors[3].reason, HasSubstr("expected 6 fields, got 5"));
    EXPECT_THAT(r.errors[4].reason, StartsWith("audiences"));
    EXPECT_THAT(r.errors[4].reason, HasSubstr("News"));
    EXPECT_THAT(r.errors[5].reason, StartsWith("audiences"));
    EXPECT_THAT(r.errors[6].reason, StartsWith("recipient_id"));
    EXPECT_THAT(r.errors[7].reason, StartsWith("recipient_id"));
    EXPECT_THAT(r.errors[8].reason, StartsWith("consent.source"));
    EXPECT_THAT(r.errors[9].reason, StartsWith("consent.given_at"));
    EXPECT_THAT(r.errors[10].reason, StartsWith("address"));
}

TEST(RegistryCsv, MalformedQuotingIsReported) {
    const std::string text = std::string(kHeader) +
                             "\n"
                             "u1,news,webhook,https://x.example/h,we\"b,2024-05-01T10:00:00Z\n"  // 2
                             "u2,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n";   // 3
    const auto r = parse_subscriptions_csv(text);
    EXPECT_THAT(accepted_lines(r), ElementsAre(3u));
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 2u);
    EXPECT_THAT(r.errors[0].reason, HasSubstr("quot"));
}

TEST(RegistryCsv, UnterminatedQuoteIsReportedOnItsFirstLine) {
    const std::string text = std::string(kHeader) +
                             "\n"
                             "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n"    // 2
                             "u2,news,webhook,https://x.example/h,\"web,2024-05-01T10:00:00Z\n"  // 3
                             "u3,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n";
    const auto r = parse_subscriptions_csv(text);
    EXPECT_THAT(accepted_lines(r), ElementsAre(2u));
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 3u);
}

TEST(RegistryCsv, DuplicateRecipientIsReportedWithTheFirstLine) {
    const std::string text = std::string(kHeader) +
                             "\n"
                             "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n"
                             "u2,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n"
                             "u1,alerts,webhook,https://x.example/other,web,2024-05-01T10:00:00Z\n";
    const auto r = parse_subscriptions_csv(text);
    EXPECT_THAT(accepted_lines(r), ElementsAre(2u, 3u));
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 4u);
    EXPECT_THAT(r.errors[0].reason, StartsWith("recipient_id"));
    EXPECT_THAT(r.errors[0].reason, HasSubstr("line 2"));
    EXPECT_EQ(r.accepted[0].second.address(), "https://x.example/h");
}

TEST(RegistryCsv, OptionalTenantAndTagsColumns) {
    const auto r = parse_subscriptions_csv(
        "tags,recipient_id,tenant,audiences,channel,address,consent_source,consent_given_at\n"
        "vip; early;;,u1,fest-a,b ; a;b,webhook,https://x.example/h,web,2024-05-01T10:00:00Z\n"
        ",u2,,news,sms,+4917612345678,web,2024-05-01T10:00:00Z\n"
        "x,u3,Fest-A,news,sms,+4917612345678,web,2024-05-01T10:00:00Z\n");
    EXPECT_THAT(accepted_lines(r), ElementsAre(2u, 3u));
    ASSERT_EQ(r.accepted.size(), 2u);
    const auto& u1 = r.accepted[0].second;
    EXPECT_EQ(u1.tenant(), "fest-a");
    EXPECT_THAT(tags_of(u1), ElementsAre("vip", "early"));
    EXPECT_THAT(audiences_of(u1), ElementsAre("a", "b"));
    const auto& u2 = r.accepted[1].second;
    EXPECT_EQ(u2.tenant(), "default");
    EXPECT_TRUE(u2.tags().empty());
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 4u);
    EXPECT_THAT(r.errors[0].reason, StartsWith("tenant"));
}

TEST(RegistryCsv, MoreThan32TagsIsRefused) {
    std::string tags;
    for (int i = 0; i < 33; ++i) tags += "t" + std::to_string(i) + ";";
    const auto r = parse_subscriptions_csv(
        "recipient_id,audiences,channel,address,consent_source,consent_given_at,tags\n"
        "u1,news,webhook,https://x.example/h,web,2024-05-01T10:00:00Z," +
        tags + "\n");
    EXPECT_TRUE(r.accepted.empty());
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].line, 2u);
    EXPECT_THAT(r.errors[0].reason, StartsWith("tags"));
}

// --- what a dead letter may say ---------------------------------------------

std::string detail_of(std::string_view value, bool json) {
    auto r = decode_subscription(value, json);
    return r ? std::string("(accepted)") : public_detail(r.err());
}

TEST(RegistryPublicDetail, NamesTheRuleNeverTheAddressOrTheRecord) {
    auto s = valid_webhook();
    s.set_channel(herald::v1::CHANNEL_WHATSAPP);
    s.set_address("0171-5550199");
    EXPECT_EQ(detail_of(s.SerializeAsString(), false), "address: not an E.164 phone number");
    s.set_channel(herald::v1::CHANNEL_WEBHOOK);
    s.set_address("ftp://fan.example/hook-7b1");
    EXPECT_EQ(detail_of(s.SerializeAsString(), false), "address: not an http(s) URL");
    // A JSON parser's message may quote the record; none of it is kept.
    const std::string broken = R"({"recipient_id":"f1","address":"+4917655501999",)";
    const auto detail = detail_of(broken, true);
    EXPECT_EQ(detail, "not protobuf JSON of herald.v1.Subscription");
    EXPECT_EQ(detail_of("\x0a\x03", false), "not a herald.v1.Subscription");
    s = valid_webhook();
    s.set_recipient_id("+49 176 5550199");  // not a recipient id: not quoted either
    EXPECT_EQ(detail_of(s.SerializeAsString(), false),
              "recipient_id: 1..128 characters of [A-Za-z0-9._:@+-]");
    s = valid_webhook();
    s.clear_audiences();
    EXPECT_EQ(detail_of(s.SerializeAsString(), false), "audiences: at least one is required");
    s = valid_webhook();
    s.add_audiences("+4917655501999");
    EXPECT_EQ(detail_of(s.SerializeAsString(), false), "audiences: each 1..128 characters of [a-z0-9._:-]");
    EXPECT_EQ(public_detail(base::error{std::make_error_code(std::errc::io_error), "x: +4917655501999"}), "");
}

TEST(RegistryIdentify, TheSubscriberOfARefusedRecordWhenItNamesAValidOne) {
    auto who = identify(R"({"recipient_id":"fan-9","tenant":"fest","address":"0171","audiences":[]})", true);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->tenant, "fest");
    EXPECT_EQ(who->recipient_id, "fan-9");
    who = identify(R"({"recipientId":"fan-8","channel":"CHANNEL_NOPE"})", true);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->tenant, "default");
    EXPECT_EQ(who->recipient_id, "fan-8");
    auto s = valid_webhook();
    s.set_address("not a url");
    who = identify(s.SerializeAsString(), false);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->recipient_id, "user-1");
    EXPECT_FALSE(identify(R"({"recipient_id":"has space"})", true));
    EXPECT_FALSE(identify(R"({"recipient_id":"ok","tenant":"Bad Tenant"})", true));
    EXPECT_FALSE(identify(R"({"recipient_id":)", true));
    EXPECT_FALSE(identify(R"({"address":"+4917655501999"})", true));
}

}  // namespace
}  // namespace herald::registry
