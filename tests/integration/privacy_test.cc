// A person's address (phone number, webhook URL) stays where it belongs —
// the registry — and leaves nowhere else: not in dead letters of refused
// subscription records, not in receipts, not in any log line. The test runs
// every kind of refusal and failure with distinctive numbers and URLs, then
// searches the dead-letter topic, the receipts topic and the daemon's whole
// stderr (at debug level) for them.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "herald/v1/subscription.pb.h"
#include "support/daemon.h"
#include "support/kafka.h"
#include "support/standin.h"

namespace herald::testing {
namespace {

std::string subscription(const std::string& id, const std::string& channel, const std::string& address,
                         const std::string& audience = "priv.news") {
    return R"({"recipient_id":")" + id + R"(","audiences":[")" + audience + R"("],"channel":")" + channel +
           R"(","address":")" + address +
           R"(","consent":{"given_at":"2026-06-01T10:00:00Z","source":"web-form"}})";
}

/// Every place `needle` occurs in a record: key, value or a header.
std::string where_in(const kafka_record& r, const std::string& needle) {
    std::string out;
    if (r.key.find(needle) != std::string::npos)
        out += " key";
    if (r.value.find(needle) != std::string::npos)
        out += " value";
    for (const auto& [name, value] : r.headers) {
        if (value.find(needle) != std::string::npos)
            out += " header " + name;
    }
    return out;
}

std::string show(const kafka_record& r) {
    std::string out = "key=" + r.key + " value=" + r.value;
    for (const auto& [name, value] : r.headers) out += " " + name + "=" + value;
    return out;
}

TEST(Privacy, NoAddressReachesDeadLettersReceiptsOrTheLog) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0", "--token", "t0k"});
    ASSERT_NE(gw.port, 0);
    const std::string port = std::to_string(gw.port);
    // Loopback is allowed for the stand-in only: 127.0.0.2 is refused (SSRF
    // guard) before any connection is made.
    daemon d({"--whatsapp-base-url", gw.url(""), "--whatsapp-phone-number-id", "1555000", "--whatsapp-token",
              "t0k", "--retry-max-attempts", "2", "--retry-base-ms", "20", "--outbound-allowed-networks",
              "127.0.0.1/32", "--log-level", "debug"});

    // What must never leave the registry. Recipient ids do not contain them.
    const std::string wa_number = "+4915550001111";
    const std::string sms_number = "+4915550002222";
    const std::string broken_json_number = "+4915550003333";
    const std::string mismatch_number = "+4915550004444";
    const std::string proto_number = "+49 1555 0005555";
    const std::string bad_number = "0171-5550199";
    const std::string failing_url = gw.url("/webhook/u7c1x-failing");
    const std::string blocked_url = "http://127.0.0.2:" + port + "/webhook/u9d2x-blocked";
    const std::string api_blocked_url = "http://127.0.0.3:" + port + "/webhook/u5e8x-api";
    const std::string bad_url = "ftp://u3f4x-bad.example/hook";
    const std::vector<std::string> forbidden{wa_number,
                                             wa_number.substr(1),
                                             sms_number,
                                             sms_number.substr(1),
                                             broken_json_number,
                                             broken_json_number.substr(1),
                                             mismatch_number,
                                             mismatch_number.substr(1),
                                             proto_number,
                                             "1555 0005555",
                                             bad_number,
                                             "5550199",
                                             failing_url,
                                             "u7c1x",
                                             blocked_url,
                                             "u9d2x",
                                             api_blocked_url,
                                             "u5e8x",
                                             bad_url,
                                             "u3f4x"};

    // Through the ops API: three subscribers whose deliveries will fail, and
    // one refused at once for its blocked address.
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions",
                       subscription("priv-fail", "webhook", failing_url) + "\n" +
                           subscription("priv-wa", "whatsapp", wa_number) + "\n" +
                           subscription("priv-sms", "sms", sms_number) + "\n",
                       "application/x-ndjson");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    r = http_call(d.ops_port, "POST", "/v1/subscriptions",
                  subscription("priv-api", "webhook", api_blocked_url), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 422) << r->body;

    // Straight onto herald.subscriptions: one valid (its delivery is
    // blocked), the rest refused and dead-lettered.
    kafka_producer producer(d.brokers);
    const std::map<std::string, std::string> json{{"content-type", "application/json"}};
    ASSERT_TRUE(producer.produce("herald.subscriptions", "default/priv-blocked",
                                 subscription("priv-blocked", "webhook", blocked_url), json));
    ASSERT_TRUE(producer.produce("herald.subscriptions", "default/priv-badphone",
                                 subscription("priv-badphone", "whatsapp", bad_number), json));
    ASSERT_TRUE(producer.produce("herald.subscriptions", "default/priv-badurl",
                                 subscription("priv-badurl", "webhook", bad_url), json));
    ASSERT_TRUE(producer.produce("herald.subscriptions", "priv broken",  // neither key nor value is usable
                                 R"({"recipient_id":"priv-broken","address":")" + broken_json_number + "\",",
                                 json));
    ASSERT_TRUE(producer.produce("herald.subscriptions", "default/priv-other",  // key of someone else
                                 subscription("priv-mismatch", "sms", mismatch_number), json));
    herald::v1::Subscription binary;
    binary.set_recipient_id("priv-proto");
    binary.add_audiences("priv.news");
    binary.set_channel(herald::v1::CHANNEL_SMS);
    binary.set_address(proto_number);
    binary.mutable_consent()->mutable_given_at()->set_seconds(1780000000);
    binary.mutable_consent()->set_source("web-form");
    ASSERT_TRUE(producer.produce("herald.subscriptions", "", binary.SerializeAsString()));  // no key at all
    const int refused_records = 5;

    // A broadcast every delivery of which fails differently: webhook 500
    // until retries run out (also dead-lettered), WhatsApp refusing the
    // number, no SMS gateway, the blocked address.
    ASSERT_TRUE(gw.inject(R"({"count":10,"status":500,"path_prefix":"/webhook/u7c1x"})"));
    ASSERT_TRUE(gw.inject(R"({"count":1,"code":131026,"path_prefix":"/v21.0"})"));
    // The feed applies in order: once priv-blocked is visible, it is in the index.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
        auto g = http_get(d.ops_port, "/v1/subscriptions/priv-blocked");
        if (g && g->status == 200)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "priv.news",
                              R"({"id":"priv-1","audience":"priv.news","text":"Gates open at 18:00"})"));
    google::protobuf::Struct progress;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto s = http_get(d.ops_port, "/v1/broadcasts/priv-1"); s && s->status == 200) {
            (void)google::protobuf::util::JsonStringToMessage(s->body, &progress);
            if (progress.fields().at("state").string_value() == "done")
                break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_EQ(progress.fields().at("state").string_value(), "done") << d.log();
    EXPECT_EQ(progress.fields().at("targeted").number_value(), 4);
    EXPECT_EQ(progress.fields().at("failed").number_value(), 4) << d.log();

    // The addresses were real: the registry holds them and WhatsApp was asked.
    auto stored = http_get(d.ops_port, "/v1/subscriptions/priv-wa");
    ASSERT_TRUE(stored && stored->status == 200);
    EXPECT_NE(stored->body.find(wa_number), std::string::npos) << stored->body;
    auto asked = http_get(gw.port, "/_standin/received");
    ASSERT_TRUE(asked);
    EXPECT_NE(asked->body.find(wa_number.substr(1)), std::string::npos) << asked->body;

    const auto receipts = read_topic(d.brokers, "herald.receipts", 4, 20000);
    const auto dead = read_topic(d.brokers, "herald.dlq", refused_records + 1, 20000);
    ASSERT_EQ(receipts.size(), 4u);
    ASSERT_EQ(dead.size(), static_cast<std::size_t>(refused_records + 1));
    EXPECT_EQ(d.terminate(), 0);
    const std::string log = d.log();

    // They say who and why.
    std::set<std::string> receipt_recipients;
    for (const auto& rec : receipts) {
        google::protobuf::Struct s;
        ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(rec.value, &s).ok()) << rec.value;
        receipt_recipients.insert(s.fields().at("recipient_id").string_value());
        EXPECT_EQ(s.fields().at("outcome").string_value(), "OUTCOME_FAILED") << rec.value;
        EXPECT_FALSE(s.fields().at("reason").string_value().empty()) << rec.value;
    }
    EXPECT_EQ(receipt_recipients,
              (std::set<std::string>{"priv-fail", "priv-wa", "priv-sms", "priv-blocked"}));
    std::map<std::string, std::string> dead_reasons;  // recipient ("" unknown) -> reason
    for (const auto& rec : dead) {
        if (rec.headers.at("herald-dlq-source").rfind("herald.subscriptions/", 0) != 0) {
            EXPECT_EQ(rec.headers.at("herald-dlq-reason"), "delivery_failed") << show(rec);
            continue;
        }
        google::protobuf::Struct s;
        ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(rec.value, &s).ok()) << show(rec);
        const auto id = s.fields().find("recipient_id");
        dead_reasons[id == s.fields().end() ? "" : id->second.string_value()] =
            rec.headers.at("herald-dlq-reason");
    }
    const std::map<std::string, std::string> expected_reasons{{"priv-badphone", "invalid_address"},
                                                              {"priv-badurl", "invalid_address"},
                                                              {"", "malformed_json"},
                                                              {"priv-other", "invalid_field"},
                                                              {"priv-proto", "invalid_address"}};
    EXPECT_EQ(dead_reasons, expected_reasons);
    EXPECT_NE(log.find("dead-lettered herald.subscriptions/"), std::string::npos) << log;

    // ...and nothing of the addresses.
    for (const auto& needle : forbidden) {
        for (const auto& rec : receipts)
            EXPECT_EQ(where_in(rec, needle), "") << needle << " in a receipt: " << show(rec);
        for (const auto& rec : dead)
            EXPECT_EQ(where_in(rec, needle), "") << needle << " in a dead letter: " << show(rec);
        const auto at = log.find(needle);
        EXPECT_EQ(at, std::string::npos)
            << needle
            << " in the log: " << (at == std::string::npos ? "" : log.substr(log.rfind('\n', at) + 1, 300));
    }
}

}  // namespace
}  // namespace herald::testing
