// Secrets end to end (issue 13, item 4): the outbound credentials come from
// files and never show in the process's command line, logs or answers; each
// webhook subscriber may have its own signing secret, which signs its
// deliveries instead of the global one and is never returned; plain http://
// webhooks are refused unless --allow-insecure-webhooks. Receivers are the
// gateway stand-in on loopback, verifying signatures and bearer tokens.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "support/daemon.h"
#include "support/kafka.h"
#include "support/standin.h"

namespace herald::testing {
namespace {

// Distinct secrets, so a signature tells which one made it.
const std::string global_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string own_secret = "whsec_c3Vic2NyaWJlci1vd24ta2V5LTAwMDAx";  // "subscriber-own-key-00001"
const std::string own_fragment = "c3Vic2NyaWJlci1vd24ta2V5";              // what must never show

/// A 0600 file in a fresh directory under /tmp, removed with the object.
class secret_file {
  public:
    explicit secret_file(const std::string& content) {
        char dir[] = "/tmp/herald-secrets-XXXXXX";
        if (::mkdtemp(dir) != nullptr)
            dir_ = dir;
        path = dir_ + "/secret";
        std::ofstream(path) << content;
        std::filesystem::permissions(
            path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    ~secret_file() {
        if (!dir_.empty())
            std::filesystem::remove_all(dir_);
    }
    secret_file(const secret_file&) = delete;
    secret_file& operator=(const secret_file&) = delete;
    std::string path;

  private:
    std::string dir_;
};

std::string webhook(const std::string& id, const std::vector<std::string>& audiences, const std::string& url,
                    const std::string& secret = "", bool opted_out = false) {
    std::string list;
    for (const auto& a : audiences) list += (list.empty() ? "\"" : ",\"") + a + "\"";
    return R"({"recipient_id":")" + id + R"(","audiences":[)" + list +
           R"(],"channel":"webhook","address":")" + url +
           R"(","consent":{"given_at":"2026-06-01T10:00:00Z","source":"web-form"})" +
           (secret.empty() ? "" : R"(,"webhook_secret":")" + secret + "\"") +
           (opted_out ? R"(,"opted_out_at":"2026-07-01T10:00:00Z")" : "") + "}";
}

std::string phone(const std::string& id, const std::string& channel, const std::string& number,
                  const std::string& audience = "club") {
    return R"({"recipient_id":")" + id + R"(","audiences":[")" + audience + R"("],"channel":")" + channel +
           R"(","address":")" + number +
           R"(","consent":{"given_at":"2026-06-01T10:00:00Z","source":"web-form"}})";
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

google::protobuf::Struct wait_done(const daemon& d, const std::string& id, int timeout_s) {
    google::protobuf::Struct last;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto r = http_get(d.ops_port, "/v1/broadcasts/" + id); r && r->status == 200) {
            last = parse(r->body);
            if (text(last, "state") == "done")
                return last;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return last;
}

/// What a stand-in received on one path: (HTTP status it answered, whether the signature verified).
struct arrival {
    int status = 0;
    bool signature_valid = false;
};
std::vector<arrival> arrivals(const gateway_standin& gw, const std::string& path) {
    std::vector<arrival> out;
    const auto all = gw.get_json("/_standin/received");
    const auto it = all.fields().find("requests");
    if (it == all.fields().end())
        return out;
    for (const auto& v : it->second.list_value().values()) {
        const auto& f = v.struct_value();
        if (text(f, "path") != path)
            continue;
        const auto sig = f.fields().find("signature_valid");
        out.push_back(
            {static_cast<int>(number(f, "status")), sig != f.fields().end() && sig->second.bool_value()});
    }
    return out;
}

std::string cmdline_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string out = ss.str();
    for (auto& c : out) c = c == '\0' ? ' ' : c;
    return out;
}

void produce_announcement(const daemon& d, const std::string& audience, const std::string& id) {
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json(
        "herald.announcements", audience,
        R"({"id":")" + id + R"(","audience":")" + audience + R"(","text":"Gates open at 10"})"));
}

TEST(Secrets, EachWebhookIsSignedWithItsOwnSecretElseTheGlobalOneAndTheOwnIsNeverShown) {
    // One receiver trusts only the subscriber's own key, the other only the global one.
    gateway_standin own_rx({"--rate", "1000", "--pair-interval-s", "0", "--webhook-secret", own_secret});
    gateway_standin global_rx(
        {"--rate", "1000", "--pair-interval-s", "0", "--webhook-secret", global_secret});
    ASSERT_NE(own_rx.port, 0);
    ASSERT_NE(global_rx.port, 0);
    secret_file globals(global_secret + "\n");
    daemon d({"--webhook-secrets-file", globals.path, "--retry-max-attempts", "1",
              "--recipient-min-interval-ms", "0"});

    // own: its secret, at the receiver holding it. plain: no secret of its
    // own, at the receiver holding the global one. mixed: its own secret at
    // the receiver holding the global one — signed with its own only, so refused there.
    const std::string body = webhook("own", {"club", "club.news"}, own_rx.url("/webhook/own"), own_secret) +
                             "\n" + webhook("plain", {"club"}, global_rx.url("/webhook/plain")) + "\n" +
                             webhook("mixed", {"club"}, global_rx.url("/webhook/mixed"), own_secret) + "\n";
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->body.find(own_fragment), std::string::npos) << r->body;

    produce_announcement(d, "club", "s1");
    const auto s = wait_done(d, "s1", 30);
    EXPECT_EQ(number(s, "targeted"), 3) << d.log();
    EXPECT_EQ(number(s, "sent"), 2) << d.log();
    EXPECT_EQ(number(s, "failed"), 1) << d.log();
    const auto own = arrivals(own_rx, "/webhook/own");
    ASSERT_EQ(own.size(), 1u);
    EXPECT_EQ(own[0].status, 200);
    EXPECT_TRUE(own[0].signature_valid);
    const auto plain = arrivals(global_rx, "/webhook/plain");
    ASSERT_EQ(plain.size(), 1u);
    EXPECT_EQ(plain[0].status, 200);
    EXPECT_TRUE(plain[0].signature_valid);
    const auto mixed = arrivals(global_rx, "/webhook/mixed");
    ASSERT_EQ(mixed.size(), 1u);
    EXPECT_EQ(mixed[0].status, 401);
    EXPECT_FALSE(mixed[0].signature_valid);

    // GET shows the subscription, never its secret; neither does the CLI.
    r = http_get(d.ops_port, "/v1/subscriptions/own");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_NE(r->body.find("\"recipient_id\":\"own\""), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find("webhook_secret"), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find(own_fragment), std::string::npos) << r->body;
    const std::string herald = d.cli_env() + bin_dir() + "/herald ";
    auto cli = run_command(herald + "subscription own");
    EXPECT_EQ(cli.exit_code, 0) << cli.output;
    EXPECT_NE(cli.output.find("\"recipient_id\":\"own\""), std::string::npos) << cli.output;
    EXPECT_EQ(cli.output.find(own_fragment), std::string::npos) << cli.output;

    // A partial unsubscribe answers with the subscription (no secret) and
    // keeps the stored secret: the next delivery is still signed with it.
    r = http_call(d.ops_port, "POST", "/v1/subscriptions/own/unsubscribe", R"({"audiences":["club.news"]})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->body.find(own_fragment), std::string::npos) << r->body;
    produce_announcement(d, "club", "s2");
    EXPECT_EQ(number(wait_done(d, "s2", 30), "sent"), 2) << d.log();
    const auto again = arrivals(own_rx, "/webhook/own");
    ASSERT_EQ(again.size(), 2u);
    EXPECT_TRUE(again[1].signature_valid);

    // The CLI subscribes with a secret from a file (never argv) and prints nothing of it.
    secret_file cli_secret("# the receiver's key\n" + own_secret + "\n");
    cli = run_command(herald + "subscribe --recipient cli1 --audience club --channel webhook --address " +
                      own_rx.url("/webhook/cli1") + " --webhook-secret-file " + cli_secret.path);
    EXPECT_EQ(cli.exit_code, 0) << cli.output;
    EXPECT_EQ(cli.output.find(own_fragment), std::string::npos) << cli.output;
    produce_announcement(d, "club", "s3");
    EXPECT_EQ(number(wait_done(d, "s3", 30), "sent"), 3) << d.log();
    const auto via_cli = arrivals(own_rx, "/webhook/cli1");
    ASSERT_EQ(via_cli.size(), 1u);
    EXPECT_TRUE(via_cli[0].signature_valid);

    // A malformed own secret: 422 naming the field, never echoing it.
    r = http_call(
        d.ops_port, "POST", "/v1/subscriptions",
        webhook("bad", {"club"}, own_rx.url("/webhook/bad"), "whsec_c3Vic2NyaWJlci1vd24ta2V5x") + "\n",
        "application/x-ndjson");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 422) << r->body;
    EXPECT_NE(r->body.find("webhook_secret: "), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find(own_fragment), std::string::npos) << r->body;

    // No secret in the log, the metrics or /v1/info.
    const std::string log = d.log();
    EXPECT_EQ(log.find(own_fragment), std::string::npos);
    EXPECT_EQ(log.find(global_secret.substr(6)), std::string::npos);
    r = http_get(d.ops_port, "/v1/info");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body.find(global_secret.substr(6)), std::string::npos) << r->body;
}

TEST(Secrets, PlainHttpWebhooksAreRefusedWithoutTheSwitchByTheApiAndTheFeed) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    char dir[] = "/tmp/herald-insecure-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    {
        // With the switch on (what every other test runs with): accepted.
        daemon d({"--allow-insecure-webhooks", "on", "--data-dir", dir});
        auto r =
            http_call(d.ops_port, "POST", "/v1/subscriptions",
                      webhook("early", {"club"}, gw.url("/webhook/early")) + "\n", "application/x-ndjson");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(d.terminate(), 0);
    }
    // Off (the default): the API answers 422 naming the field and the switch.
    daemon d({"--allow-insecure-webhooks", "off", "--data-dir", dir});
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions",
                       webhook("h1", {"club"}, gw.url("/webhook/h1")) + "\n", "application/x-ndjson");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 422) << r->body;
    EXPECT_NE(r->body.find("insecure_webhook: address: plain http:// webhooks are refused"),
              std::string::npos)
        << r->body;
    EXPECT_NE(r->body.find("--allow-insecure-webhooks"), std::string::npos) << r->body;
    r = http_get(d.ops_port, "/v1/subscriptions/h1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << r->body;
    // https:// and phones pass; so does an opt-out at an http:// URL (it
    // must always apply). (Another audience: nothing is sent off loopback.)
    r = http_call(d.ops_port, "POST", "/v1/subscriptions",
                  webhook("s1", {"elsewhere"}, "https://hooks.example.com/in") + "\n" +
                      phone("p1", "whatsapp", "+4917612345678", "elsewhere") + "\n" +
                      webhook("gone", {"club"}, gw.url("/webhook/gone"), "", true) + "\n",
                  "application/x-ndjson");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;

    // A herald.subscriptions record written around the API: dead-lettered
    // with the reason, its own secret masked in the dead letter.
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.subscriptions", "default/k1",
                                      webhook("k1", {"club"}, gw.url("/webhook/k1"), own_secret)));
    const auto dead = read_topic(d.brokers, "herald.dlq", 1, 15000);
    ASSERT_EQ(dead.size(), 1u) << d.log();
    EXPECT_EQ(dead[0].headers.at("herald-dlq-reason"), "insecure_webhook");
    EXPECT_NE(dead[0].headers.at("herald-dlq-detail").find("address: plain http://"), std::string::npos);
    EXPECT_EQ(dead[0].value.find(own_fragment), std::string::npos) << dead[0].value;
    EXPECT_EQ(metric_value(d.metrics(), "herald_subscriptions_rejected_total", "reason=\"insecure_webhook\""),
              1);
    r = http_get(d.ops_port, "/v1/subscriptions/k1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << r->body;

    // The one stored while the switch was on stays the person's record, but
    // nothing goes to it in plaintext: its delivery fails visibly.
    EXPECT_NE(d.log().find("1 stored subscriber(s) have a plain http:// webhook"), std::string::npos)
        << d.log();
    r = http_call(d.ops_port, "POST", "/v1/subscriptions/early/unsubscribe", R"({"audiences":["none"]})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 422) << r->body;  // still active at http://: a change the feed would refuse
    produce_announcement(d, "club", "plain");
    const auto s = wait_done(d, "plain", 30);
    EXPECT_EQ(number(s, "failed"), 1) << d.log();
    const auto receipts = read_topic(d.brokers, "herald.receipts", 1, 15000);
    bool refused = false;
    for (const auto& rec : receipts)
        refused |= rec.value.find("\"early\"") != std::string::npos &&
                   rec.value.find("insecure_webhook") != std::string::npos;
    EXPECT_TRUE(refused) << d.log();
    EXPECT_TRUE(arrivals(gw, "/webhook/early").empty());
    // Opting out of everything still works.
    r = http_call(d.ops_port, "POST", "/v1/subscriptions/early/unsubscribe", "{}");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_NE(r->body.find("opted_out_at"), std::string::npos) << r->body;
    d.kill_hard();
    std::filesystem::remove_all(dir);
}

TEST(Secrets, CredentialsFromFilesWorkAndNeverReachTheCommandLine) {
    const std::string wa_token = "EAAG-wa-token-from-file-7c1d";
    const std::string sms_token = "sms-gw-token-from-file-93af";
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0", "--token", wa_token, "--webhook-token",
                        sms_token, "--webhook-secret", global_secret});
    ASSERT_NE(gw.port, 0);
    secret_file wa(wa_token + "\n");
    secret_file sms(sms_token + "\n");
    secret_file hooks(global_secret + "\n");
    daemon d({"--whatsapp-base-url", gw.url(""), "--whatsapp-phone-number-id", "1555",
              "--whatsapp-token-file", wa.path, "--sms-gateway-url", gw.url("/webhook/sms-gateway"),
              "--sms-gateway-token-file", sms.path, "--webhook-secrets-file", hooks.path,
              "--retry-max-attempts", "1"});

    // `ps` shows the file names, not what is in them.
    const std::string cmdline = cmdline_of(d.pid());
    EXPECT_NE(cmdline.find(wa.path), std::string::npos) << cmdline;  // it is the right process
    EXPECT_EQ(cmdline.find(wa_token), std::string::npos) << cmdline;
    EXPECT_EQ(cmdline.find(sms_token), std::string::npos) << cmdline;
    EXPECT_EQ(cmdline.find(global_secret.substr(6)), std::string::npos) << cmdline;
    auto ps = run_command("ps -ww -o args= -p " + std::to_string(d.pid()));
    if (ps.exit_code == 0) {
        EXPECT_NE(ps.output.find("--whatsapp-token-file"), std::string::npos) << ps.output;
        EXPECT_EQ(ps.output.find(wa_token), std::string::npos) << ps.output;
        EXPECT_EQ(ps.output.find(sms_token), std::string::npos) << ps.output;
    }

    auto r = http_call(
        d.ops_port, "POST", "/v1/subscriptions",
        phone("sms1", "sms", "+4917612345678") + "\n" + phone("wa1", "whatsapp", "+4917612345679") + "\n",
        "application/x-ndjson");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    produce_announcement(d, "club", "f1");
    const auto s = wait_done(d, "f1", 30);
    // Both gateways checked their credential: a wrong or missing one is a 401 and a failure.
    EXPECT_EQ(number(s, "sent"), 2) << d.log();
    const auto sms_arrivals = arrivals(gw, "/webhook/sms-gateway");
    ASSERT_EQ(sms_arrivals.size(), 1u);
    EXPECT_EQ(sms_arrivals[0].status, 200);
    EXPECT_TRUE(sms_arrivals[0].signature_valid);  // signed with the secret from the file

    const std::string log = d.log();
    for (const std::string& secret : {wa_token, sms_token, global_secret.substr(6)})
        EXPECT_EQ(log.find(secret), std::string::npos) << secret;
}

TEST(Secrets, TheSmsGatewayRefusesAWrongTokenSoTheTokenIsWhatItChecks) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0", "--webhook-token", "the-right-token"});
    ASSERT_NE(gw.port, 0);
    secret_file sms("a-wrong-token\n");
    daemon d({"--sms-gateway-url", gw.url("/webhook/sms-gateway"), "--sms-gateway-token-file", sms.path,
              "--retry-max-attempts", "1"});
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", phone("sms1", "sms", "+4917612345678") + "\n",
                       "application/x-ndjson");
    ASSERT_TRUE(r && r->status == 200);
    produce_announcement(d, "club", "w1");
    EXPECT_EQ(number(wait_done(d, "w1", 30), "failed"), 1) << d.log();
    const auto got = arrivals(gw, "/webhook/sms-gateway");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].status, 401);
}

TEST(Secrets, BadSecretSettingsStopStartUpWithExit2NamingTheSettingNeverTheSecret) {
    const std::string heraldd =
        bin_dir() + "/heraldd --client-port 0 --ops-port 0 --data-dir /tmp/herald-never ";
    auto r = run_command(heraldd + "--whatsapp-token-file /nonexistent/wa.token");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("config error: whatsapp_token_file: cannot read \"/nonexistent/wa.token\""),
              std::string::npos)
        << r.output;

    secret_file empty("\n");
    r = run_command(heraldd + "--sms-gateway-token-file " + empty.path);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("sms_gateway_token_file: \"" + empty.path + "\" is empty"), std::string::npos)
        << r.output;

    secret_file bad(global_secret + "\nwhsec_hidden-not-a-secret\n");
    r = run_command(heraldd + "--webhook-secrets-file " + bad.path);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("webhook_secrets_file: line 2 of \"" + bad.path + "\""), std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("hidden-not-a-secret"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(global_secret.substr(6)), std::string::npos) << r.output;

    r = run_command(heraldd + "--sms-gateway-token argv-sms-token-hidden");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("sms_gateway_token: not accepted on the command line"), std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("argv-sms-token-hidden"), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists("/tmp/herald-never"));  // stopped before anything started
}

TEST(Secrets, AValueFlagStillWorksButWarnsWithoutLoggingTheValue) {
    daemon d({"--whatsapp-token", "argv-visible-token-5e2b"});
    const std::string log = d.log();
    EXPECT_NE(log.find("whatsapp_token: given on the command line, where every local user can read it"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("argv-visible-token-5e2b"), std::string::npos) << log;
}

}  // namespace
}  // namespace herald::testing
