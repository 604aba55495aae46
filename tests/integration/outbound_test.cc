// Opted-in subscribers behind outbound gateways, end to end: subscriptions
// through the ops API, announcements through Kafka, delivery through the
// gateway stand-in (tools/gateway-standin) with its real limits and error
// bodies, receipts on herald.receipts, progress on GET /v1/broadcasts/{id}.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "support/daemon.h"
#include "support/kafka.h"
#include "support/standin.h"
#include "support/test_ca.h"

namespace herald::testing {
namespace {

const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::string subscription(const std::string& id, const std::vector<std::string>& audiences,
                         const std::string& channel, const std::string& address, bool opted_out = false) {
    std::string list;
    for (const auto& a : audiences) list += (list.empty() ? "\"" : ",\"") + a + "\"";
    return R"({"recipient_id":")" + id + R"(","audiences":[)" + list + R"(],"channel":")" + channel +
           R"(","address":")" + address +
           R"(","consent":{"given_at":"2026-06-01T10:00:00Z","source":"web-form"})" +
           (opted_out ? R"(,"opted_out_at":"2026-07-01T10:00:00Z")" : "") + "}";
}

google::protobuf::Struct parse(const std::string& json) {
    google::protobuf::Struct s;
    (void)google::protobuf::util::JsonStringToMessage(json, &s);
    return s;
}

double number(const google::protobuf::Struct& s, const std::string& key) {
    const auto it = s.fields().find(key);
    return it == s.fields().end() ? -1 : it->second.number_value();
}

std::string text(const google::protobuf::Struct& s, const std::string& key) {
    const auto it = s.fields().find(key);
    return it == s.fields().end() ? std::string() : it->second.string_value();
}

/// Polls GET /v1/broadcasts/{id} until it is done; returns the last answer.
google::protobuf::Struct wait_done(const daemon& d, const std::string& id, int timeout_s,
                                   const std::string& tenant = "") {
    google::protobuf::Struct last;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    const std::string path = "/v1/broadcasts/" + id + (tenant.empty() ? "" : "?tenant=" + tenant);
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto r = http_get(d.ops_port, path); r && r->status == 200) {
            last = parse(r->body);
            if (text(last, "state") == "done")
                return last;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return last;
}

struct received_request {
    std::string path;
    std::string announcement;
    std::string recipient;
    std::string to;
    std::string webhook_id;
    int status = 0;
    bool signature_valid = false;
    double t = 0;
    google::protobuf::Struct body;
};

std::vector<received_request> accepted(const gateway_standin& g) {
    std::vector<received_request> out;
    const auto all = g.get_json("/_standin/received?accepted=1");
    const auto it = all.fields().find("requests");
    if (it == all.fields().end())
        return out;
    for (const auto& v : it->second.list_value().values()) {
        const auto& f = v.struct_value();
        received_request r;
        r.path = text(f, "path");
        r.status = static_cast<int>(number(f, "status"));
        r.t = number(f, "t");
        r.to = text(f, "to");
        r.webhook_id = text(f, "webhook_id");
        const auto sig = f.fields().find("signature_valid");
        r.signature_valid = sig != f.fields().end() && sig->second.bool_value();
        if (const auto b = f.fields().find("body"); b != f.fields().end()) {
            r.body = b->second.struct_value();
            r.announcement = text(r.body, "id");
            r.recipient = text(r.body, "recipient_id");
        }
        out.push_back(std::move(r));
    }
    return out;
}

/// Registers `n` webhook subscribers `<prefix>0..` of `audiences`, each at its own stand-in path.
/// `n` webhook subscribers prefix0.. of `tenant` ("" = the default), each
/// on its own path (/webhook/[tenant-]id).
void subscribe_webhooks(const daemon& d, const gateway_standin& gw, const std::string& prefix, int n,
                        const std::vector<std::string>& audiences, const std::string& tenant = "") {
    std::string body;
    for (int i = 0; i < n; ++i) {
        const std::string id = prefix + std::to_string(i);
        std::string line = subscription(id, audiences, "webhook",
                                        gw.url("/webhook/" + (tenant.empty() ? "" : tenant + "-") + id));
        if (!tenant.empty())
            line.insert(1, R"("tenant":")" + tenant + "\",");
        body += line + "\n";
    }
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson", 60000);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
}

/// How often the gateway accepted each announcement/recipient pair.
std::map<std::string, int> deliveries_by_pair(const gateway_standin& gw) {
    std::map<std::string, int> out;
    for (const auto& req : accepted(gw)) out[req.announcement + "/" + req.recipient]++;
    return out;
}

/// Waits until the gateway accepted at least `n` requests.
void wait_accepted(const gateway_standin& gw, std::size_t n, int timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (accepted(gw).size() < n && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

double wall_now_s() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(Outbound, TenThousandSubscribersThroughARateLimitedGatewayEachExactlyOnce) {
    gateway_standin gw(
        {"--rate", "200", "--burst", "200", "--pair-interval-s", "0", "--webhook-secret", secret});
    ASSERT_NE(gw.port, 0) << "gateway stand-in did not start";
    daemon d({"--webhook-rate", "200", "--webhook-burst", "200", "--webhook-secrets", secret});

    // r0..r9999: even ones hear lineup.a, odd ones lineup.b, every tenth both;
    // every hundredth (r7, r107, ...) opted out before anything was sent.
    std::string body;
    std::set<std::string> want_a;
    std::set<std::string> want_b;
    std::set<std::string> opted_out;
    for (int i = 0; i < 10000; ++i) {
        const std::string id = "r" + std::to_string(i);
        std::vector<std::string> aud{i % 2 == 0 ? "lineup.a" : "lineup.b"};
        if (i % 10 == 0)
            aud.push_back("lineup.b");
        const bool out = i % 100 == 7;
        body += subscription(id, aud, "webhook", gw.url("/webhook/" + id), out) + "\n";
        if (out) {
            opted_out.insert(id);
            continue;
        }
        for (const auto& a : aud) (a == "lineup.a" ? want_a : want_b).insert(id);
    }
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson", 120000);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_NE(r->body.find("\"accepted\":10000"), std::string::npos) << r->body;

    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "lineup.a",
                                      R"({"id":"ta","audience":"lineup.a","text":"Gates open at 10"})"));
    ASSERT_TRUE(producer.produce_json("herald.announcements", "lineup.b",
                                      R"({"id":"tb","audience":"lineup.b","text":"Stage B moved"})"));

    // Mid-broadcast opt-out: once deliveries are flowing, the last 50
    // subscribers (queued last) opt out; from then on they get nothing.
    const auto flowing = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (accepted(gw).size() < 600 && std::chrono::steady_clock::now() < flowing)
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::map<std::string, double> unsubscribed_at;
    for (int i = 9950; i < 10000; ++i) {
        const std::string id = "r" + std::to_string(i);
        if (opted_out.count(id) != 0)
            continue;
        auto u = http_call(d.ops_port, "POST", "/v1/subscriptions/" + id + "/unsubscribe", "{}");
        ASSERT_TRUE(u);
        ASSERT_EQ(u->status, 200) << u->body;
        unsubscribed_at[id] = wall_now_s();
    }

    const auto a = wait_done(d, "ta", 150);
    const auto b = wait_done(d, "tb", 150);
    ASSERT_EQ(text(a, "state"), "done") << d.log();
    ASSERT_EQ(text(b, "state"), "done") << d.log();

    std::map<std::string, int> got_a;
    std::map<std::string, int> got_b;
    int bad_signatures = 0;
    for (const auto& req : accepted(gw)) {
        if (!req.signature_valid)
            ++bad_signatures;
        (req.announcement == "ta" ? got_a : got_b)[req.recipient]++;
        const auto u = unsubscribed_at.find(req.recipient);
        if (u != unsubscribed_at.end()) {
            // Accepted by the gateway before the opt-out returned, or not at all.
            // (allowing for a request already on the wire when the opt-out landed).
            EXPECT_LT(req.t, u->second + 1.0) << req.recipient << " got a message after opting out";
        }
    }
    EXPECT_EQ(bad_signatures, 0);
    std::size_t suppressed_mid = 0;
    for (const auto& [want, got, name] :
         {std::tuple{&want_a, &got_a, "ta"}, std::tuple{&want_b, &got_b, "tb"}}) {
        for (const auto& [id, n] : *got) {
            EXPECT_EQ(n, 1) << id << " got " << name << " " << n << " times";
            EXPECT_TRUE(want->count(id)) << id << " got " << name << " without being opted in to it";
        }
        for (const auto& id : *want) {
            if (got->count(id) == 0) {
                EXPECT_TRUE(unsubscribed_at.count(id)) << id << " never got " << name;
                ++suppressed_mid;
            }
        }
    }
    EXPECT_EQ(number(a, "sent") + number(b, "sent"), static_cast<double>(got_a.size() + got_b.size()));
    EXPECT_EQ(number(a, "failed") + number(b, "failed"), 0);
    EXPECT_EQ(number(a, "suppressed") + number(b, "suppressed"), static_cast<double>(suppressed_mid));
    EXPECT_EQ(number(a, "targeted"), static_cast<double>(want_a.size()));
    EXPECT_EQ(number(b, "targeted"), static_cast<double>(want_b.size()));

    // The gateway's limit held: no one-second window above rate + burst.
    const auto stats = gw.get_json("/_standin/stats");
    EXPECT_LE(number(stats, "max_accepted_per_second"), 400) << "stats: " << number(stats, "rate_limited");

    // One receipt per final outcome.
    const auto total = static_cast<std::size_t>(number(a, "sent") + number(b, "sent") + suppressed_mid);
    auto receipts = read_topic(d.brokers, "herald.receipts", total, 30000);
    std::size_t sent_receipts = 0;
    for (const auto& rec : receipts) {
        if (rec.value.find("OUTCOME_SENT") != std::string::npos)
            ++sent_receipts;
    }
    EXPECT_EQ(sent_receipts, got_a.size() + got_b.size());
}

TEST(Outbound, GatewayErrorsAreRetriedThrottledOrFailedWithTheirReason) {
    gateway_standin gw(
        {"--rate", "1000", "--pair-interval-s", "0", "--token", "t0k", "--webhook-secret", secret});
    ASSERT_NE(gw.port, 0);
    daemon d({"--webhook-secrets", secret, "--whatsapp-base-url", gw.url(""), "--whatsapp-phone-number-id",
              "1555000", "--whatsapp-token", "t0k", "--whatsapp-template", "club_news", "--retry-base-ms",
              "50", "--sender-pause-s", "1"});
    std::string body;
    for (int i = 0; i < 10; ++i) {
        body += subscription("w" + std::to_string(i), {"club.news"}, "webhook",
                             gw.url("/webhook/w" + std::to_string(i))) +
                "\n";
        body += subscription("p" + std::to_string(i), {"club.news"}, "whatsapp",
                             "+4915100000" + std::to_string(10 + i)) +
                "\n";
    }
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;

    ASSERT_TRUE(gw.inject(R"({"count":3,"status":429,"retry_after":1,"path_prefix":"/webhook"})"));
    ASSERT_TRUE(gw.inject(R"({"count":3,"status":503,"path_prefix":"/webhook"})"));
    ASSERT_TRUE(gw.inject(R"({"count":2,"code":130429,"path_prefix":"/v21.0"})"));
    ASSERT_TRUE(gw.inject(R"({"count":2,"status":500,"code":131000,"path_prefix":"/v21.0"})"));
    ASSERT_TRUE(gw.inject(R"({"count":1,"code":131056,"path_prefix":"/v21.0"})"));
    ASSERT_TRUE(gw.inject(R"({"count":1,"code":131048,"path_prefix":"/v21.0"})"));
    ASSERT_TRUE(gw.inject(R"({"count":1,"code":131026,"path_prefix":"/v21.0"})"));

    kafka_producer producer(d.brokers);
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "club.news",
                              R"({"id":"n1","audience":"club.news","text":"Training moved to 19:00"})"));
    const auto s = wait_done(d, "n1", 60);
    ASSERT_EQ(text(s, "state"), "done") << d.log();
    EXPECT_EQ(number(s, "targeted"), 20);
    EXPECT_EQ(number(s, "sent"), 19) << d.log();
    EXPECT_EQ(number(s, "failed"), 1);

    std::set<std::string> webhook_ok;
    std::set<std::string> whatsapp_ok;
    for (const auto& req : accepted(gw)) {
        if (req.path.rfind("/webhook/", 0) == 0) {
            EXPECT_TRUE(req.signature_valid);
            webhook_ok.insert(req.recipient);
        } else {
            EXPECT_EQ(req.path, "/v21.0/1555000/messages");
            whatsapp_ok.insert(req.to);
            EXPECT_EQ(text(req.body, "type"), "template");
            const auto& tmpl = req.body.fields().at("template").struct_value();
            EXPECT_EQ(text(tmpl, "name"), "club_news");
        }
    }
    EXPECT_EQ(webhook_ok.size(), 10u);
    EXPECT_EQ(whatsapp_ok.size(), 9u);

    auto receipts = read_topic(d.brokers, "herald.receipts", 20, 30000);
    int failed = 0;
    for (const auto& rec : receipts) {
        if (rec.value.find("OUTCOME_FAILED") != std::string::npos) {
            ++failed;
            EXPECT_NE(rec.value.find("gateway_131026"), std::string::npos) << rec.value;
        }
    }
    EXPECT_EQ(failed, 1);
    EXPECT_GE(metric_value(d.metrics(), "herald_outbound_attempts_total", "result=\"throttled\""), 5);
    EXPECT_GE(metric_value(d.metrics(), "herald_outbound_attempts_total", "result=\"retry\""), 5);
    EXPECT_EQ(metric_value(d.metrics(), "herald_outbound_attempts_total", "result=\"pair_limited\""), 1);
    EXPECT_EQ(metric_value(d.metrics(), "herald_outbound_sender_paused_total"), 1);
}

TEST(Outbound, ForgetErasesThePersonFromTheRegistryAndItsFiles) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    char tmpl[] = "/tmp/herald-forget-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    {
        daemon d({"--data-dir", dir});
        const std::string marker = "/webhook/forget-me-7f3a";
        auto r =
            http_call(d.ops_port, "POST", "/v1/subscriptions",
                      subscription("fm", {"news"}, "webhook", gw.url(marker)) + "\n", "application/x-ndjson");
        ASSERT_TRUE(r && r->status == 200);
        auto g = http_get(d.ops_port, "/v1/subscriptions/fm");
        ASSERT_TRUE(g && g->status == 200);
        EXPECT_NE(g->body.find("forget-me-7f3a"), std::string::npos);

        auto del = http_call(d.ops_port, "DELETE", "/v1/subscriptions/fm");
        ASSERT_TRUE(del && del->status == 200) << (del ? del->body : "");
        g = http_get(d.ops_port, "/v1/subscriptions/fm");
        ASSERT_TRUE(g);
        EXPECT_EQ(g->status, 404);

        kafka_producer producer(d.brokers);
        ASSERT_TRUE(producer.produce_json("herald.announcements", "news",
                                          R"({"id":"f1","audience":"news","text":"x"})"));
        const auto s = wait_done(d, "f1", 20);
        EXPECT_EQ(number(s, "targeted"), 0);
        EXPECT_TRUE(accepted(gw).empty());
        EXPECT_EQ(d.terminate(), 0);
    }
    // Nothing of the person is left in the data directory's files.
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(f.path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        EXPECT_EQ(ss.str().find("forget-me-7f3a"), std::string::npos) << f.path();
    }
    std::filesystem::remove_all(dir);
}

TEST(Outbound, SubscriptionsSurviveARestartAndBadRecordsAreDeadLettered) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    char tmpl[] = "/tmp/herald-restart-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    {
        daemon d({"--data-dir", dir});
        auto r = http_call(d.ops_port, "POST", "/v1/subscriptions",
                           subscription("k1", {"news"}, "webhook", gw.url("/webhook/k1")) + "\n" +
                               subscription("k2", {"news"}, "whatsapp", "0171-123") + "\n",
                           "application/x-ndjson");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 422) << r->body;
        EXPECT_NE(r->body.find("\"index\":1"), std::string::npos) << r->body;
        EXPECT_NE(r->body.find("address"), std::string::npos) << r->body;

        // A producer writing a bad record straight to the topic: dead-lettered, counted.
        kafka_producer producer(d.brokers);
        ASSERT_TRUE(
            producer.produce_json("herald.subscriptions", "k3", R"({"recipient_id":"k3","audiences":[]})"));
        auto dead = read_topic(d.brokers, "herald.dlq", 1, 15000);
        ASSERT_EQ(dead.size(), 1u);
        EXPECT_EQ(dead[0].headers.at("herald-dlq-reason"), "missing_audiences");
        EXPECT_EQ(metric_value(d.metrics(), "herald_subscriptions_rejected_total"), 1);
        EXPECT_EQ(d.terminate(), 0);
    }
    daemon again({"--data-dir", dir});
    EXPECT_NE(again.log().find("1 subscriber(s) loaded"), std::string::npos) << again.log();
    kafka_producer producer(again.brokers);
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "news", R"({"id":"k","audience":"news","text":"x"})"));
    const auto s = wait_done(again, "k", 20);
    EXPECT_EQ(number(s, "sent"), 1) << again.log();
    const auto got = accepted(gw);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].recipient, "k1");
    std::filesystem::remove_all(dir);
}

TEST(Outbound, CliManagesSubscribersReportsBadCsvRowsAndFollowsABroadcast) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    daemon d;
    const std::string herald = d.cli_env() + bin_dir() + "/herald ";

    auto r =
        run_command(herald + "subscribe --recipient c1 --audience club.news --channel webhook --address " +
                    gw.url("/webhook/c1"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("subscribed c1 to club.news via webhook"), std::string::npos) << r.output;
    r = run_command(herald +
                    "subscribe --recipient c9 --audience club.news --channel whatsapp --address 0171-123");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("address"), std::string::npos) << r.output;

    char path[] = "/tmp/herald-import-XXXXXX.csv";
    const int fd = ::mkstemps(path, 4);
    ASSERT_GE(fd, 0);
    const std::string csv =
        "recipient_id,audiences,channel,address,consent_source,consent_given_at\n"
        "c2,club.news;club.youth,webhook," +
        gw.url("/webhook/c2") +
        ",web-form,2026-06-01T10:00:00Z\n"
        "c3,club.news,whatsapp,+4917,web-form,2026-06-01T10:00:00Z\n"  // too short for E.164
        "c4,club.news,webhook,\"" +
        gw.url("/webhook/c4") +
        "\",\"qr, gate 3\",2026-06-01T10:00:00Z\n"
        "c5,club.news,pigeon,x,web-form,2026-06-01T10:00:00Z\n"
        "c2,club.news,webhook," +
        gw.url("/webhook/c2b") + ",web-form,2026-06-01T10:00:00Z\n";
    ASSERT_EQ(::write(fd, csv.data(), csv.size()), static_cast<ssize_t>(csv.size()));
    ::close(fd);
    r = run_command(herald + "import " + path);
    ::unlink(path);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(std::string(path) + ":3: address"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(std::string(path) + ":5: channel"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(std::string(path) + ":6: recipient_id: duplicate of line 2"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("imported 2 subscribers; 3 lines refused"), std::string::npos) << r.output;

    r = run_command(herald + "unsubscribe --recipient c2 --audience club.news");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("still subscribed to club.youth"), std::string::npos) << r.output;
    r = run_command(herald + "subscription c4");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("qr, gate 3"), std::string::npos) << r.output;

    r = run_command(herald + "announce --audience club.news --id cli1 --text 'Training at 19:00'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto s = wait_done(d, "cli1", 30);
    EXPECT_EQ(number(s, "sent"), 2);  // c1 and c4; c2 left club.news
    r = run_command(herald + "status cli1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("sent        2"), std::string::npos) << r.output;
    r = run_command(herald + "receipts --broadcast cli1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\"recipient_id\":\"c1\""), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("\"recipient_id\":\"c4\""), std::string::npos) << r.output;
    r = run_command(herald + "status no-such-broadcast");
    EXPECT_EQ(r.exit_code, 1) << r.output;

    // The same id from another tenant is another broadcast; --tenant tells
    // them apart. Tenants are isolated: club-b's announcement reaches
    // club-b's c1 only, not the default tenant's c1 and c4 of the same names.
    r = run_command(herald +
                    "subscribe --tenant club-b --recipient c1 --audience club.news --channel webhook "
                    "--address " +
                    gw.url("/webhook/b-c1"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = run_command(herald +
                    "announce --audience club.news --id cli1 --tenant club-b --text 'Training moved'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(number(wait_done(d, "cli1", 30, "club-b"), "sent"), 1);
    r = run_command(herald + "status cli1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("several tenants (club-b, default)"), std::string::npos) << r.output;
    r = run_command(herald + "status cli1 --tenant club-b");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("sent        1"), std::string::npos) << r.output;
    r = run_command(herald + "receipts --broadcast cli1 --tenant club-b");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\"tenant\":\"club-b\""), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("\"tenant\":\"default\""), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("\"recipient_id\":\"c4\""), std::string::npos) << r.output;
    const auto got = accepted(gw);
    const auto to = [&](const std::string& path) {
        return std::count_if(got.begin(), got.end(),
                             [&](const received_request& q) { return q.path == path; });
    };
    EXPECT_EQ(to("/webhook/b-c1"), 1);  // club-b's c1: club-b's broadcast
    EXPECT_EQ(to("/webhook/c1"), 1);    // the default tenant's c1: its own broadcast only
    EXPECT_EQ(to("/webhook/c4"), 1);

    r = run_command(herald + "forget c1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = run_command(herald + "subscription c1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
}

TEST(Outbound, TwoInstancesOnOneKafkaSendEachSubscriberOneMessageAndBothServeLiveClients) {
    // Scale-out is Kafka's: the instances share the outbound consumer group,
    // so each announcement's partition belongs to one of them, which sends
    // to every subscriber; each still serves its own live connections.
    external_kafka kafka;
    gateway_standin gw({"--rate", "5000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    const auto dir = [](const char* name) {
        const auto p = std::filesystem::temp_directory_path() /
                       ("herald-two-" + std::string(name) + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(p);
        return p.string();
    };
    const std::string dir_a = dir("a");
    const std::string dir_b = dir("b");
    const auto args = [&](const std::string& id, const std::string& data) {
        return std::vector<std::string>{"--brokers",
                                        kafka.brokers,
                                        "--instance-id",
                                        id,
                                        "--data-dir",
                                        data,
                                        "--offset-reset",
                                        "earliest",
                                        "--webhook-rate",
                                        "5000",
                                        "--webhook-burst",
                                        "5000",
                                        "--recipient-min-interval-ms",
                                        "0"};
    };
    daemon a(args("two-a", dir_a));
    daemon b(args("two-b", dir_b));
    // b joining moved one partition over; wait until both hold theirs again.
    ASSERT_TRUE(a.wait_until_ready(30000)) << a.log();
    ASSERT_TRUE(b.wait_until_ready(30000)) << b.log();

    const std::vector<std::string> audiences{"two.a", "two.b", "two.c", "two.d", "two.e", "two.f"};
    subscribe_webhooks(a, gw, "p", 100, audiences);
    // Every instance applies every change from herald.subscriptions.
    const auto applied = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < applied) {
        if (auto got = http_get(b.ops_port, "/v1/subscriptions/p99"); got && got->status == 200)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    peer live_a(connect_tcp("127.0.0.1", a.client_port));
    peer live_b(connect_tcp("127.0.0.1", b.client_port));
    ASSERT_TRUE(live_a.websocket_handshake("/v1/ws?audience=two.a"));
    ASSERT_TRUE(live_b.websocket_handshake("/v1/ws?audience=two.a"));

    kafka_producer producer(kafka.brokers);
    for (const auto& aud : audiences) {
        ASSERT_TRUE(producer.produce_json(
            "herald.announcements", aud,
            R"({"id":"x-)" + aud + R"(","audience":")" + aud + R"(","text":"Line-up change"})"));
    }
    const std::size_t want = audiences.size() * 100;
    wait_accepted(gw, want, 60);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // room for a duplicate to show up

    const auto per_delivery = deliveries_by_pair(gw);
    EXPECT_EQ(per_delivery.size(), want) << a.log() << b.log();
    int twice = 0;
    for (const auto& [k, n] : per_delivery) twice += n > 1 ? 1 : 0;
    EXPECT_EQ(twice, 0) << "subscribers messaged more than once";
    const double sent_a = metric_value(a.metrics(), "herald_outbound_deliveries_total", "outcome=\"sent\"");
    const double sent_b = metric_value(b.metrics(), "herald_outbound_deliveries_total", "outcome=\"sent\"");
    EXPECT_EQ(sent_a + sent_b, static_cast<double>(want));
    EXPECT_GT(sent_a, 0) << "instance a owned no partition";
    EXPECT_GT(sent_b, 0) << "instance b owned no partition";

    // Both instances deliver live.
    const auto frame_a = live_a.read_data_frame(10000);
    const auto frame_b = live_b.read_data_frame(10000);
    ASSERT_TRUE(frame_a);
    ASSERT_TRUE(frame_b);
    EXPECT_EQ(frame_a->payload, frame_b->payload);
    EXPECT_NE(frame_a->payload.find("\"id\":\"x-two.a\""), std::string::npos) << frame_a->payload;
    std::filesystem::remove_all(dir_a);
    std::filesystem::remove_all(dir_b);
}

TEST(Outbound, SmsGoesThroughTheSmsGatewayAndFailsVisiblyWithoutOne) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0", "--webhook-secret", secret});
    ASSERT_NE(gw.port, 0);
    {
        // No SMS gateway configured: the subscriber is not silently skipped.
        daemon d;
        auto r =
            http_call(d.ops_port, "POST", "/v1/subscriptions",
                      subscription("sms1", {"club"}, "sms", "+4917612345678") + "\n", "application/x-ndjson");
        ASSERT_TRUE(r && r->status == 200);
        kafka_producer producer(d.brokers);
        ASSERT_TRUE(producer.produce_json("herald.announcements", "club",
                                          R"({"id":"nogw","audience":"club","text":"Training at 19:00"})"));
        const auto s = wait_done(d, "nogw", 20);
        EXPECT_EQ(number(s, "targeted"), 1) << d.log();
        EXPECT_EQ(number(s, "failed"), 1);
        const auto receipts = read_topic(d.brokers, "herald.receipts", 1, 15000);
        ASSERT_EQ(receipts.size(), 1u);
        EXPECT_NE(receipts[0].value.find("no_gateway:sms"), std::string::npos) << receipts[0].value;
    }
    daemon d({"--sms-gateway-url", gw.url("/webhook/sms-gateway"), "--webhook-secrets", secret});
    auto r =
        http_call(d.ops_port, "POST", "/v1/subscriptions",
                  subscription("sms1", {"club"}, "sms", "+4917612345678") + "\n", "application/x-ndjson");
    ASSERT_TRUE(r && r->status == 200);
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "club",
                                      R"({"id":"sms-a","audience":"club","text":"Training at 19:00"})"));
    const auto s = wait_done(d, "sms-a", 20);
    EXPECT_EQ(number(s, "sent"), 1) << d.log();
    const auto got = accepted(gw);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].path, "/webhook/sms-gateway");
    EXPECT_TRUE(got[0].signature_valid);
    EXPECT_EQ(text(got[0].body, "to"), "+4917612345678");
    EXPECT_EQ(text(got[0].body, "text"), "Training at 19:00");
    EXPECT_EQ(got[0].recipient, "sms1");
}

TEST(Outbound, AnInstanceJoiningMidBroadcastRebalancesWithoutLossOrDuplicates) {
    // A rebalance of the shared outbound group while a broadcast is running:
    // the instance that took it finishes it (it is written down there and
    // committed), the newcomer does not start it again, and what comes after
    // is split between them — every subscriber exactly once, receipts complete.
    external_kafka kafka;
    gateway_standin gw({"--rate", "10000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    const auto args = [&](const std::string& id) {
        return std::vector<std::string>{"--brokers",
                                        kafka.brokers,
                                        "--instance-id",
                                        id,
                                        "--offset-reset",
                                        "earliest",
                                        "--webhook-rate",
                                        "8",
                                        "--webhook-burst",
                                        "1",
                                        "--outbound-shards",
                                        "1",
                                        "--recipient-min-interval-ms",
                                        "0"};
    };
    // 300 at 8/s: ~37 s, so the second instance's start and the rebalance
    // (up to ~20 s on a loaded 2-core CI machine) happen while it runs.
    daemon a(args("reb-a"));
    subscribe_webhooks(a, gw, "big", 300, {"big"});
    subscribe_webhooks(a, gw, "aft", 40, {"after.1", "after.2", "after.3", "after.4"});
    kafka_producer producer(kafka.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "big",
                                      R"({"id":"big1","audience":"big","text":"Gates open"})"));
    wait_accepted(gw, 45, 30);  // running, and its offset committed (every second)
    ASSERT_GE(accepted(gw).size(), 45u);

    daemon b(args("reb-b"));
    ASSERT_TRUE(a.wait_until_ready(30000)) << a.log();
    ASSERT_TRUE(b.wait_until_ready(30000)) << b.log();
    EXPECT_LT(accepted(gw).size(), 300u) << "the broadcast ended before the rebalance: nothing was tested";
    for (int i = 1; i <= 4; ++i) {
        const std::string aud = "after." + std::to_string(i);
        ASSERT_TRUE(producer.produce_json(
            "herald.announcements", aud,
            R"({"id":"x)" + std::to_string(i) + R"(","audience":")" + aud + R"(","text":"Stage change"})"));
    }
    wait_accepted(gw, 300 + 160, 120);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // room for a duplicate to show up
    const auto per_delivery = deliveries_by_pair(gw);
    EXPECT_EQ(per_delivery.size(), 460u) << a.log() << b.log();
    for (const auto& [k, n] : per_delivery) EXPECT_EQ(n, 1) << k << " sent more than once";
    const auto receipts = read_topic(kafka.brokers, "herald.receipts", 460, 20000);
    std::set<std::string> big_receipts;
    for (const auto& r : receipts) {
        const auto receipt = parse(r.value);
        if (text(receipt, "announcement_id") == "big1")
            big_receipts.insert(text(receipt, "recipient_id"));
    }
    EXPECT_EQ(big_receipts.size(), 300u) << "receipts incomplete after the rebalance";
}

TEST(Outbound, TenantsAreIsolatedThoughTheyShareAudienceNamesRecipientIdsAndAnnouncementIds) {
    // Two festivals (and the default tenant) with the same audience name and
    // the same recipient ids: each announcement reaches its own tenant's
    // subscribers only, and the same announcement id is two broadcasts.
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    daemon d({"--recipient-min-interval-ms", "0"});
    subscribe_webhooks(d, gw, "tt", 3, {"club"}, "festival-a");
    subscribe_webhooks(d, gw, "tt", 3, {"club"}, "festival-b");
    subscribe_webhooks(d, gw, "tt", 3, {"club"});  // the default tenant's
    kafka_producer producer(d.brokers);
    for (const char* tenant : {"festival-a", "festival-b"}) {
        ASSERT_TRUE(producer.produce_json("herald.announcements", "club",
                                          R"({"id":"alert-1","tenant":")" + std::string(tenant) +
                                              R"(","audience":"club","text":"Gates open"})"));
    }
    wait_accepted(gw, 6, 20);
    for (const char* tenant : {"festival-a", "festival-b"}) {
        const auto p = wait_done(d, "alert-1", 30, tenant);
        EXPECT_EQ(text(p, "tenant"), tenant);
        EXPECT_EQ(number(p, "targeted"), 3) << tenant;
        EXPECT_EQ(number(p, "sent"), 3) << tenant;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // anything misrouted would arrive by now
    const auto got = accepted(gw);
    EXPECT_EQ(got.size(), 6u) << d.log();
    for (const auto& req : got) {
        // The path names the subscriber's tenant; the body the announcement's.
        const std::string tenant = text(req.body, "tenant");
        EXPECT_EQ(req.path.rfind("/webhook/" + tenant + "-", 0), 0u) << req.path << " got " << tenant;
    }
    // Progress is per tenant too: the bare id is ambiguous, ?tenant= picks one.
    const auto ambiguous = http_get(d.ops_port, "/v1/broadcasts/alert-1");
    ASSERT_TRUE(ambiguous);
    EXPECT_EQ(ambiguous->status, 409) << ambiguous->body;
    EXPECT_NE(ambiguous->body.find("festival-a, festival-b"), std::string::npos) << ambiguous->body;
    const auto other = http_get(d.ops_port, "/v1/broadcasts/alert-1?tenant=festival-c");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404);
}

TEST(Outbound, WhatsAppFreeTextOnlyInsideTheCustomerServiceWindow) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    daemon d({"--whatsapp-base-url", gw.url(""), "--whatsapp-phone-number-id", "1555000"});
    // "open" wrote to the business two hours ago; "closed" never did.
    const std::time_t two_hours_ago = std::time(nullptr) - 7200;
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&two_hours_ago));
    std::string open = subscription("open", {"desk"}, "whatsapp", "+4915100000001");
    open.pop_back();
    open += std::string(R"(,"last_inbound_at":")") + when + "\"}";
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions",
                       open + "\n" + subscription("closed", {"desk"}, "whatsapp", "+4915100000002") + "\n",
                       "application/x-ndjson");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json(
        "herald.announcements", "desk",
        R"({"id":"ft","audience":"desk","text":"Your ticket is ready","labels":{"whatsapp.type":"text"}})"));
    const auto s = wait_done(d, "ft", 20);
    EXPECT_EQ(number(s, "sent"), 1) << d.log();
    EXPECT_EQ(number(s, "failed"), 1);
    const auto got = accepted(gw);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].to, "+4915100000001");
    EXPECT_EQ(text(got[0].body, "type"), "text");
    auto receipts = read_topic(d.brokers, "herald.receipts", 2, 15000);
    bool refused = false;
    for (const auto& rec : receipts)
        refused |= rec.value.find("outside_customer_service_window") != std::string::npos;
    EXPECT_TRUE(refused);
}

TEST(Outbound, WebhooksOverHttpsVerifyTheCertificate) {
    char dir[] = "/tmp/herald-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    const std::string cert = std::string(dir) + "/cert.pem";
    const std::string key = std::string(dir) + "/key.pem";
    auto made = run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " +
                            key + " -out " + cert + " 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    // Its control API is HTTPS too, so read what it received from its record file.
    const std::string record = std::string(dir) + "/received.jsonl";
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0", "--tls-cert", cert, "--tls-key", key,
                        "--record", record});
    const auto arrivals = [&] {
        std::ifstream in(record);
        std::string line;
        int ok = 0;
        while (std::getline(in, line)) ok += line.find("\"status\": 200") != std::string::npos;
        return ok;
    };
    ASSERT_NE(gw.port, 0);
    const std::string address = "https://127.0.0.1:" + std::to_string(gw.port) + "/webhook/s1";
    const std::string body = subscription("s1", {"secure"}, "webhook", address) + "\n";
    {
        // A self-signed certificate is refused by default: the delivery fails, nothing arrives.
        daemon d({"--retry-max-attempts", "2", "--retry-base-ms", "10"});
        auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson");
        ASSERT_TRUE(r && r->status == 200);
        kafka_producer producer(d.brokers);
        ASSERT_TRUE(producer.produce_json("herald.announcements", "secure",
                                          R"({"id":"s","audience":"secure","text":"x"})"));
        const auto s = wait_done(d, "s", 20);
        EXPECT_EQ(number(s, "failed"), 1) << d.log();
        auto receipts = read_topic(d.brokers, "herald.receipts", 1, 15000);
        ASSERT_EQ(receipts.size(), 1u);
        // Unknown CA: the receipt says the certificate was refused, nothing more.
        EXPECT_NE(receipts[0].value.find("attempts_exhausted:transport_error:tls_certificate"),
                  std::string::npos)
            << receipts[0].value;
        EXPECT_EQ(arrivals(), 0);
    }
    // With verification off (a test gateway), it goes through over TLS.
    daemon d({"--outbound-tls-verify", "off"});
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson");
    ASSERT_TRUE(r && r->status == 200);
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "secure",
                                      R"({"id":"t","audience":"secure","text":"x"})"));
    const auto s = wait_done(d, "t", 20);
    EXPECT_EQ(number(s, "sent"), 1) << d.log();
    EXPECT_EQ(arrivals(), 1);
    std::filesystem::remove_all(dir);
}

/// Lines of a stand-in's --record file with an accepted (200) request.
int accepted_in(const std::string& record) {
    std::ifstream in(record);
    std::string line;
    int ok = 0;
    while (std::getline(in, line)) ok += line.find("\"status\": 200") != std::string::npos;
    return ok;
}

TEST(Outbound, GatewayCertificatesExpiredOrForAnotherHostAreRefusedAndTheCaFileIsTrusted) {
    // A private CA (outbound_ca_file) signs three gateways' certificates:
    // one valid for 127.0.0.1, one expired, one for another host.
    test_ca ca;
    ASSERT_TRUE(ca.ok()) << ca.error;
    const auto valid = ca.issue("valid", "IP:127.0.0.1,DNS:localhost");
    const auto expired = ca.issue("expired", "IP:127.0.0.1,DNS:localhost", -1);
    const auto wrong_host = ca.issue("wrong-host", "DNS:wrong.example.invalid");
    ASSERT_FALSE(valid.cert.empty() || expired.cert.empty() || wrong_host.cert.empty()) << ca.error;
    const auto standin_args = [&](const test_ca::issued& c, const std::string& record) {
        return std::vector<std::string>{
            "--rate", "1000",     "--pair-interval-s",  "0", "--tls-cert", c.cert, "--tls-key",
            c.key,    "--record", ca.dir + "/" + record};
    };
    gateway_standin gw_valid(standin_args(valid, "valid.jsonl"));
    gateway_standin gw_expired(standin_args(expired, "expired.jsonl"));
    gateway_standin gw_wrong(standin_args(wrong_host, "wrong-host.jsonl"));
    ASSERT_TRUE(gw_valid.port != 0 && gw_expired.port != 0 && gw_wrong.port != 0);

    daemon d({"--outbound-ca-file", ca.ca_file, "--retry-max-attempts", "2", "--retry-base-ms", "10"});
    const auto https = [](const gateway_standin& g, const std::string& who) {
        return "https://127.0.0.1:" + std::to_string(g.port) + "/webhook/" + who;
    };
    const std::string body =
        subscription("tls-valid", {"certs"}, "webhook", https(gw_valid, "tls-valid")) + "\n" +
        subscription("tls-expired", {"certs"}, "webhook", https(gw_expired, "tls-expired")) + "\n" +
        subscription("tls-wrong-host", {"certs"}, "webhook", https(gw_wrong, "tls-wrong-host")) + "\n";
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "certs",
                                      R"({"id":"c","audience":"certs","text":"x"})"));
    const auto s = wait_done(d, "c", 30);
    EXPECT_EQ(number(s, "sent"), 1) << d.log();
    EXPECT_EQ(number(s, "failed"), 2) << d.log();

    std::map<std::string, std::string> receipt_of;
    for (const auto& rec : read_topic(d.brokers, "herald.receipts", 3, 15000)) {
        for (const char* who : {"tls-valid", "tls-expired", "tls-wrong-host"}) {
            if (rec.value.find(who) != std::string::npos)
                receipt_of[who] = rec.value;
        }
    }
    ASSERT_EQ(receipt_of.size(), 3u);
    EXPECT_EQ(receipt_of["tls-valid"].find("transport_error"), std::string::npos) << receipt_of["tls-valid"];
    for (const char* refused : {"tls-expired", "tls-wrong-host"}) {
        EXPECT_NE(receipt_of[refused].find("attempts_exhausted:transport_error:tls_certificate"),
                  std::string::npos)
            << refused << ": " << receipt_of[refused];
    }
    EXPECT_EQ(accepted_in(ca.dir + "/valid.jsonl"), 1);
    EXPECT_EQ(accepted_in(ca.dir + "/expired.jsonl"), 0);  // the handshake failed: no request reached them
    EXPECT_EQ(accepted_in(ca.dir + "/wrong-host.jsonl"), 0);
}

TEST(Outbound, AnUnreadableOrCertificateFreeCaFileStopsStartup) {
    test_ca ca;
    ASSERT_TRUE(ca.ok()) << ca.error;
    const auto issued = ca.issue("server", "IP:127.0.0.1");
    ASSERT_FALSE(issued.key.empty()) << ca.error;
    // Ports 0 and a private data dir: were the file accepted, nothing fixed would be taken.
    const std::string heraldd = "timeout 30 " + bin_dir() +
                                "/heraldd --client-port 0 --ops-port 0 --client-host 127.0.0.1 " +
                                "--ops-host 127.0.0.1 --data-dir " + ca.dir + "/data --outbound-ca-file ";
    auto r = run_command(heraldd + ca.dir + "/no-such-ca.pem");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("outbound_ca_file: cannot read"), std::string::npos) << r.output;
    r = run_command(heraldd + issued.key);  // a key, not a certificate
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("outbound_ca_file: no PEM certificate"), std::string::npos) << r.output;
}

TEST(Outbound, TenantLimitHoldsAcrossEndpointsAndPriorityOvertakes) {
    gateway_standin gw({"--rate", "10000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    // 50/s for the tenant, spread over two endpoints (localhost and 127.0.0.1)
    // whose own limits (1000/s) would allow far more.
    // One outbound shard: the order of sends is then one queue's order.
    daemon d({"--tenant-rate", "50", "--webhook-rate", "1000", "--recipient-min-interval-ms", "0",
              "--outbound-shards", "1"});
    std::string body;
    for (int i = 0; i < 200; ++i) {
        const std::string host = i % 2 == 0 ? "127.0.0.1" : "localhost";
        body += subscription(
                    "t" + std::to_string(i), {"promo"}, "webhook",
                    "http://" + host + ":" + std::to_string(gw.port) + "/webhook/t" + std::to_string(i)) +
                "\n";
    }
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson");
    ASSERT_TRUE(r && r->status == 200);
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json(
        "herald.announcements", "promo",
        R"({"id":"low","audience":"promo","text":"Merch -20%","priority":"PRIORITY_LOW"})"));
    // While the marketing message crawls at 50/s, a crisis message to the same people overtakes it.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ASSERT_TRUE(producer.produce_json(
        "herald.announcements", "promo",
        R"({"id":"crisis","audience":"promo","text":"Storm: leave the field","priority":"PRIORITY_CRITICAL"})"));
    const auto crisis = wait_done(d, "crisis", 30);
    const auto low = wait_done(d, "low", 30);
    // In arrival order at the gateway: once the crisis message starts, no
    // marketing message goes out (but for the few already on the wire) while
    // each endpoint still has crisis messages queued — checked over the first
    // 60 % of them; at the very end one endpoint may run out of crisis work
    // before the other and go back to marketing.
    const auto got = accepted(gw);
    std::vector<std::size_t> crisis_at;
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i].announcement == "crisis")
            crisis_at.push_back(i);
    }
    ASSERT_EQ(crisis_at.size(), 200u);
    std::size_t low_early = 0;
    for (std::size_t i = crisis_at.front(); i < crisis_at[119]; ++i)
        low_early += got[i].announcement == "low";
    EXPECT_LE(low_early, 4u) << "marketing went out while the crisis message was being sent";
    std::size_t low_after = 0;
    for (std::size_t i = crisis_at.back(); i < got.size(); ++i) low_after += got[i].announcement == "low";
    EXPECT_GT(low_after, 0u) << "marketing was not queued behind the crisis message at all";
    EXPECT_EQ(number(crisis, "sent"), 200);
    EXPECT_EQ(number(low, "sent"), 200);
    const auto stats = gw.get_json("/_standin/stats");
    EXPECT_LE(number(stats, "max_accepted_per_second"), 100) << "tenant limit 50/s + burst 50";
    EXPECT_GE(number(stats, "max_accepted_per_second"), 40);
}

TEST(Outbound, BacklogIsBoundedAndACrisisWaitingForRoomGoesFirst) {
    gateway_standin gw({"--rate", "10000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    // At most 20 deliveries held in memory: one 30-recipient broadcast is
    // listed, later ones wait unlisted until deliveries finish.
    daemon d({"--webhook-rate", "40", "--webhook-burst", "1", "--recipient-min-interval-ms", "0",
              "--outbound-shards", "1", "--outbound-max-pending", "20"});
    subscribe_webhooks(d, gw, "q", 30, {"club"});
    kafka_producer producer(d.brokers);
    for (const char* id : {"m1", "m2", "m3"}) {
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", "club",
                                  R"({"id":")" + std::string(id) +
                                      R"(","audience":"club","text":"Merch","priority":"PRIORITY_LOW"})"));
    }
    ASSERT_TRUE(producer.produce_json(
        "herald.announcements", "club",
        R"({"id":"storm","audience":"club","text":"Storm: leave the field","priority":"PRIORITY_CRITICAL"})"));
    double most_waiting = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    while (accepted(gw).size() < 120 && std::chrono::steady_clock::now() < deadline) {
        most_waiting =
            std::max(most_waiting, metric_value(d.metrics(), "herald_outbound_waiting_broadcasts"));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_GE(most_waiting, 1) << "nothing ever waited: the backlog bound did not apply";
    const auto got = accepted(gw);
    std::map<std::string, int> per_delivery;
    std::size_t last_storm = 0;
    std::size_t first_later = got.size();
    for (std::size_t i = 0; i < got.size(); ++i) {
        per_delivery[got[i].announcement + "/" + got[i].recipient]++;
        if (got[i].announcement == "storm")
            last_storm = i;
        if ((got[i].announcement == "m2" || got[i].announcement == "m3") && first_later == got.size())
            first_later = i;
    }
    EXPECT_EQ(per_delivery.size(), 120u);
    for (const auto& [k, n] : per_delivery) EXPECT_EQ(n, 1) << k;
    // The crisis message waited behind the bound like m2 and m3, but was
    // listed first when room came, so all of it went out before either.
    EXPECT_LT(last_storm, first_later) << "a marketing broadcast that waited went out before the crisis";
    EXPECT_EQ(metric_value(d.metrics(), "herald_outbound_waiting_broadcasts"), 0);
}

TEST(Outbound, AFullOutboundBacklogPausesOnlyTheOutboundConsumerNotLiveFanOut) {
    gateway_standin gw({"--rate", "10000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    daemon d({"--webhook-rate", "20", "--webhook-burst", "1", "--recipient-min-interval-ms", "0",
              "--outbound-shards", "1", "--outbound-max-pending", "5", "--outbound-max-waiting", "2"});
    subscribe_webhooks(d, gw, "w", 10, {"promo"});
    kafka_producer producer(d.brokers);
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(producer.produce_json(
            "herald.announcements", "promo",
            R"({"id":"promo)" + std::to_string(i) + R"(","audience":"promo","text":"Merch"})"));
    }
    const auto paused_by = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (metric_value(d.metrics(), "herald_ingest_paused", "consumer=\"outbound\"") != 1 &&
           std::chrono::steady_clock::now() < paused_by)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(metric_value(d.metrics(), "herald_ingest_paused", "consumer=\"outbound\""), 1) << d.log();

    // The outbound side is paused; live fan-out is not.
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=news"));
    ASSERT_TRUE(producer.produce_json("herald.announcements", "news",
                                      R"({"id":"n1","audience":"news","text":"Live"})"));
    const auto frame = ws.read_data_frame(5000);
    ASSERT_TRUE(frame) << "live fan-out waited for the outbound backlog";
    EXPECT_NE(frame->payload.find("\"id\":\"n1\""), std::string::npos);
    EXPECT_EQ(metric_value(d.metrics(), "herald_ingest_paused", "consumer=\"live\""), 0);

    // Nothing is lost: the outbound consumer resumes and every broadcast arrives once.
    wait_accepted(gw, 80, 40);
    const auto per_delivery = deliveries_by_pair(gw);
    EXPECT_EQ(per_delivery.size(), 80u);
    for (const auto& [k, n] : per_delivery) EXPECT_EQ(n, 1) << k;
    EXPECT_GE(metric_value(d.metrics(), "herald_ingest_pauses_total", "consumer=\"outbound\""), 1);
}

TEST(Outbound, ANewerTickerWithTheSameCollapseKeySupersedesTheQueuedOlderOne) {
    gateway_standin gw({"--rate", "10000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    daemon d({"--webhook-rate", "20", "--webhook-burst", "1", "--recipient-min-interval-ms", "0",
              "--outbound-shards", "1"});
    subscribe_webhooks(d, gw, "k", 60, {"ticker"});
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json(
        "herald.announcements", "ticker",
        R"({"id":"score1","audience":"ticker","text":"1:0","collapse_key":"match-7"})"));
    wait_accepted(gw, 10, 20);
    ASSERT_TRUE(producer.produce_json(
        "herald.announcements", "ticker",
        R"({"id":"score2","audience":"ticker","text":"2:0","collapse_key":"match-7"})"));
    const auto second = wait_done(d, "score2", 30);
    const auto first = wait_done(d, "score1", 30);
    EXPECT_EQ(number(second, "sent"), 60) << d.log();
    const double first_sent = number(first, "sent");
    EXPECT_LT(first_sent, 60) << "1:0 went to everyone although 2:0 replaced it";
    EXPECT_GE(first_sent, 10);
    const auto reasons = first.fields().at("suppressed_reasons").struct_value();
    ASSERT_TRUE(reasons.fields().count("superseded")) << d.log();
    EXPECT_EQ(first_sent + reasons.fields().at("superseded").number_value(), 60);
    std::map<std::string, int> score2_per_recipient;
    for (const auto& req : accepted(gw)) {
        if (req.announcement == "score2")
            score2_per_recipient[req.recipient]++;
    }
    EXPECT_EQ(score2_per_recipient.size(), 60u);
}

TEST(Outbound, KafkaFailingProducesAndGoingAwayMidBroadcastStillCompletesTheReceipts) {
    // Kafka misbehaves while a broadcast is running: produce requests fail for
    // a while (the receipts' retried produces), then the broker is away for two
    // seconds. Deliveries go on; every subscriber is sent exactly once and
    // gets exactly one receipt once the broker is back.
    external_kafka kafka;
    gateway_standin gw({"--rate", "100000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    daemon d({"--brokers", kafka.brokers, "--offset-reset", "earliest", "--webhook-rate", "40",
              "--webhook-burst", "5", "--recipient-min-interval-ms", "0"});
    constexpr int n = 300;
    subscribe_webhooks(d, gw, "pf", n, {"pf"});
    kafka_producer producer(kafka.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "pf",
                                      R"({"id":"pf1","audience":"pf","text":"Line-up change"})"));
    wait_accepted(gw, 40, 30);
    rd_kafka_mock_push_request_errors(
        kafka.mock(), 0 /* Produce */, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    wait_accepted(gw, 100, 30);
    rd_kafka_mock_broker_set_down(kafka.mock(), 1);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    rd_kafka_mock_broker_set_up(kafka.mock(), 1);
    EXPECT_LT(accepted(gw).size(), static_cast<std::size_t>(n)) << "the broadcast ended during the outage";

    const auto s = wait_done(d, "pf1", 60);
    ASSERT_EQ(text(s, "state"), "done") << d.log();
    EXPECT_EQ(number(s, "sent"), n);
    const auto per_delivery = deliveries_by_pair(gw);
    EXPECT_EQ(per_delivery.size(), static_cast<std::size_t>(n));
    for (const auto& [k, times] : per_delivery) EXPECT_EQ(times, 1) << k << " sent more than once";
    std::map<std::string, int> receipts_per_recipient;
    for (const auto& r : read_topic(kafka.brokers, "herald.receipts", n, 60000)) {
        const auto receipt = parse(r.value);
        if (text(receipt, "announcement_id") == "pf1")
            receipts_per_recipient[text(receipt, "recipient_id")]++;
    }
    EXPECT_EQ(receipts_per_recipient.size(), static_cast<std::size_t>(n))
        << "receipts lost; " << metric_value(d.metrics(), "herald_receipt_records_total", "written")
        << " acknowledged\n"
        << d.log();
    for (const auto& [who, times] : receipts_per_recipient)
        EXPECT_EQ(times, 1) << who << ": receipt written twice";
    const auto metrics = d.metrics();
    EXPECT_EQ(metric_value(metrics, "herald_receipt_records_total", "written"), n) << metrics;
    EXPECT_EQ(metric_value(metrics, "herald_receipt_records_total", "failed"), 0) << metrics;
}

TEST(Outbound, SubscriptionWritesSurviveFailingProduceRequests) {
    // The change feed is what every instance loads: a subscription the ops
    // API accepted must be on herald.subscriptions, even when produce
    // requests failed on the way.
    external_kafka kafka;
    daemon d({"--brokers", kafka.brokers, "--offset-reset", "earliest"});
    rd_kafka_mock_push_request_errors(
        kafka.mock(), 0 /* Produce */, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    gateway_standin gw({"--rate", "1000"});
    ASSERT_NE(gw.port, 0);
    constexpr int n = 300;
    for (int batch = 0; batch < 3; ++batch)
        subscribe_webhooks(d, gw, "sw" + std::to_string(batch) + "-", n / 3, {"sw"});
    std::set<std::string> keys;
    for (const auto& r : read_topic(kafka.brokers, "herald.subscriptions", n, 30000)) keys.insert(r.key);
    EXPECT_EQ(keys.size(), static_cast<std::size_t>(n))
        << "accepted subscriptions missing from the change feed";
    // Applied on the outbound shards asynchronously: wait for the gauge.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (metric_value(d.metrics(), "herald_outbound_subscribers") < n &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(metric_value(d.metrics(), "herald_outbound_subscribers"), n);
}

TEST(Outbound, KillNineMidBroadcastResumesEveryoneAndResendsOnlyWithTheSameKey) {
    gateway_standin gw({"--rate", "100000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    char tmpl[] = "/tmp/herald-kill-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    const std::vector<std::string> flags{"--data-dir",
                                         dir,
                                         "--webhook-rate",
                                         "200",
                                         "--webhook-burst",
                                         "20",
                                         "--recipient-min-interval-ms",
                                         "0",
                                         "--checkpoint-interval-ms",
                                         "200"};
    constexpr int n = 1500;
    {
        daemon d(flags);
        std::string body;
        for (int i = 0; i < n; ++i)
            body += subscription("k" + std::to_string(i), {"fest"}, "webhook",
                                 gw.url("/webhook/k" + std::to_string(i))) +
                    "\n";
        auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson");
        ASSERT_TRUE(r && r->status == 200);
        kafka_producer producer(d.brokers);
        ASSERT_TRUE(producer.produce_json("herald.announcements", "fest",
                                          R"({"id":"k9","audience":"fest","text":"Stage B closed"})"));
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (accepted(gw).size() < 400 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        d.kill_hard();  // kill -9 in the middle of the broadcast
    }
    const std::size_t before = accepted(gw).size();
    ASSERT_GE(before, 400u);
    ASSERT_LT(before, static_cast<std::size_t>(n)) << "the broadcast finished before the kill";

    daemon again(flags);
    EXPECT_NE(again.log().find("resuming 1 interrupted outbound broadcast"), std::string::npos)
        << again.log();
    const auto s = wait_done(again, "k9", 60);
    ASSERT_EQ(text(s, "state"), "done") << again.log();

    std::map<std::string, std::vector<std::string>> ids_by_recipient;
    for (const auto& req : accepted(gw)) ids_by_recipient[req.recipient].push_back(req.webhook_id);
    std::size_t twice = 0;
    for (int i = 0; i < n; ++i) {
        const auto it = ids_by_recipient.find("k" + std::to_string(i));
        ASSERT_NE(it, ids_by_recipient.end()) << "k" << i << " was skipped";
        if (it->second.size() > 1) {
            ++twice;
            for (const auto& id : it->second)
                EXPECT_EQ(id, it->second.front()) << "a resend with another key";
        }
    }
    // Only what finished within the last checkpoint interval (200 ms at 200/s:
    // ~40) plus what was in flight may be sent again; without checkpoints it
    // would be everyone sent before the kill (400+).
    EXPECT_LE(twice, 150u);
    EXPECT_TRUE(std::filesystem::exists(dir + "/outbound.sqlite3"));
    std::filesystem::remove_all(dir);
}

/// What a kill -9 in the middle of a WhatsApp broadcast leaves, and what the
/// restart did: messages per recipient (the gateway's record, both runs) and
/// the receipts of the second run.
struct whatsapp_crash {
    int recipients = 0;
    std::size_t accepted_before_kill = 0;
    std::map<std::string, int> messages;         // recipient id -> messages the gateway accepted
    std::map<std::string, std::string> unknown;  // recipient id -> reason of its `unknown` receipt
    std::size_t receipts = 0;
    google::protobuf::Struct status;  // GET /v1/broadcasts/wa9 after the restart
    std::string log;
};

/// 400 WhatsApp subscribers behind a slow Cloud API stand-in (400 ms per
/// answer, 32 requests in flight: ~80/s); heraldd is killed with SIGKILL once
/// the gateway has taken 120 and restarted on the same data directory.
whatsapp_crash kill_nine_during_a_whatsapp_broadcast(const std::vector<std::string>& extra_flags) {
    whatsapp_crash out;
    gateway_standin gw({"--rate", "100000", "--pair-interval-s", "0", "--latency-ms", "400"});
    EXPECT_NE(gw.port, 0);
    char tmpl[] = "/tmp/herald-once-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    std::vector<std::string> flags{"--data-dir",
                                   dir,
                                   "--whatsapp-base-url",
                                   gw.url(""),
                                   "--whatsapp-phone-number-id",
                                   "1555000",
                                   "--whatsapp-rate",
                                   "100000",
                                   "--whatsapp-burst",
                                   "1000",
                                   "--outbound-connections",
                                   "16",
                                   "--recipient-min-interval-ms",
                                   "0",
                                   "--checkpoint-interval-ms",
                                   "200"};
    flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
    out.recipients = 400;
    std::map<std::string, std::string> id_by_number;
    {
        daemon d(flags);
        std::string body;
        for (int i = 0; i < out.recipients; ++i) {
            const std::string number = "+49151" + std::to_string(10000000 + i);
            id_by_number[number.substr(1)] = "wa" + std::to_string(i);
            id_by_number[number] = "wa" + std::to_string(i);
            body += subscription("wa" + std::to_string(i), {"fans"}, "whatsapp", number) + "\n";
        }
        auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson");
        EXPECT_TRUE(r && r->status == 200);
        kafka_producer producer(d.brokers);
        EXPECT_TRUE(producer.produce_json("herald.announcements", "fans",
                                          R"({"id":"wa9","audience":"fans","text":"Doors open at 18:00"})"));
        wait_accepted(gw, 120, 60);
        d.kill_hard();  // kill -9 with ~32 requests sent and unanswered
    }
    out.accepted_before_kill = accepted(gw).size();

    daemon again(flags);
    out.status = wait_done(again, "wa9", 60);
    out.log = again.log();
    for (const auto& req : accepted(gw)) {
        const auto it = id_by_number.find(req.to);
        out.messages[it != id_by_number.end() ? it->second : "?" + req.to]++;
    }
    // The receipts of the second run (the embedded Kafka starts empty): one
    // per recipient it settled, `unknown` among them.
    const auto targeted = static_cast<std::size_t>(std::max(0.0, number(out.status, "targeted")));
    for (const auto& rec : read_topic(again.brokers, "herald.receipts", targeted, 20000)) {
        ++out.receipts;
        const auto receipt = parse(rec.value);
        if (text(receipt, "outcome") == "OUTCOME_UNKNOWN")
            out.unknown[text(receipt, "recipient_id")] = text(receipt, "reason");
    }
    std::filesystem::remove_all(dir);
    return out;
}

TEST(Outbound, KillNineDuringAWhatsAppBroadcastSendsNobodyTwiceAndTheInterruptedAreUnknown) {
    const whatsapp_crash c = kill_nine_during_a_whatsapp_broadcast({});
    ASSERT_GE(c.accepted_before_kill, 120u);
    ASSERT_LT(c.accepted_before_kill, static_cast<std::size_t>(c.recipients))
        << "the broadcast finished before the kill";
    ASSERT_EQ(text(c.status, "state"), "done") << c.log;
    EXPECT_NE(c.log.find("resuming 1 interrupted outbound broadcast"), std::string::npos) << c.log;

    // The requests in flight at the kill (sent, unanswered): their recipients
    // got the message, heraldd cannot know it, and the Cloud API would not
    // discard a copy. They are `unknown`, never sent again.
    EXPECT_GE(c.unknown.size(), 1u) << "nothing was in flight at the kill: nothing was tested";
    EXPECT_LE(c.unknown.size(), 120u) << "far more than was in flight";
    for (const auto& [id, reason] : c.unknown) EXPECT_EQ(reason, "interrupted") << id;
    EXPECT_EQ(number(c.status, "unknown"), static_cast<double>(c.unknown.size())) << c.log;
    EXPECT_EQ(c.receipts, static_cast<std::size_t>(number(c.status, "targeted")));
    for (int i = 0; i < c.recipients; ++i) {
        const std::string id = "wa" + std::to_string(i);
        const auto it = c.messages.find(id);
        const int got = it == c.messages.end() ? 0 : it->second;
        if (c.unknown.count(id) != 0) {
            EXPECT_LE(got, 1) << id << " (unknown) got the message twice";
        } else {
            EXPECT_EQ(got, 1) << id << " got " << got << " messages";
        }
    }
    EXPECT_EQ(c.messages.count("?"), 0u);
}

TEST(Outbound, KillNineDuringAWhatsAppBroadcastResendsTheInterruptedWhenTheChannelIsChosen) {
    const whatsapp_crash c = kill_nine_during_a_whatsapp_broadcast({"--resend-unknown-channels", "whatsapp"});
    ASSERT_GE(c.accepted_before_kill, 120u);
    ASSERT_LT(c.accepted_before_kill, static_cast<std::size_t>(c.recipients))
        << "the broadcast finished before the kill";
    ASSERT_EQ(text(c.status, "state"), "done") << c.log;
    EXPECT_TRUE(c.unknown.empty()) << c.unknown.size() << " unknown although whatsapp is re-sent";
    std::size_t twice = 0;
    for (int i = 0; i < c.recipients; ++i) {
        const auto it = c.messages.find("wa" + std::to_string(i));
        ASSERT_NE(it, c.messages.end()) << "wa" << i << " was skipped";
        twice += it->second > 1 ? 1 : 0;
    }
    // What was in flight (and what finished within the last checkpoint
    // interval) goes again: the duplicates the default setting prevents.
    EXPECT_GE(twice, 1u) << "nothing was re-sent: the in-flight requests were not resumed";
}

}  // namespace
}  // namespace herald::testing
