#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace herald::config {
namespace {

base::result<loaded> load_args(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), "heraldd");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    return load(static_cast<int>(argv.size()), argv.data(), env);
}

std::string temp_file(const std::string& content) {
    char path[] = "/tmp/herald-config-XXXXXX";
    const int fd = mkstemp(path);
    ::close(fd);
    std::ofstream(path) << content;
    return path;
}

TEST(Config, Defaults) {
    auto r = load_args({});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.client_port, 8080);
    EXPECT_EQ(r->cfg.ops_port, 8081);
    EXPECT_EQ(r->cfg.topic_announcements, "herald.announcements");
    EXPECT_GE(r->cfg.shards, 1u);  // resolved from the core count
    EXPECT_FALSE(r->cfg.instance_id.empty());
    EXPECT_EQ(r->cfg.group_id, "herald-live-" + r->cfg.instance_id);
}

TEST(Config, FlagForms) {
    auto r = load_args({"--client-port", "9000", "--ops-port=9001", "--brokers", "k1:9092,k2:9092"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.client_port, 9000);
    EXPECT_EQ(r->cfg.ops_port, 9001);
    EXPECT_EQ(r->cfg.brokers, "k1:9092,k2:9092");
}

TEST(Config, PrecedenceFlagOverEnvOverFileOverDefault) {
    const auto path =
        temp_file("# comment\nclient_port = 7000\nops_port = \"7001\"\nshards = 3\nlog_level = warn\n");
    auto r =
        load_args({"--config", path, "--client-port", "7100"}, {"HERALD_OPS_PORT=7201", "HERALD_SHARDS=5"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.client_port, 7100);                 // flag
    EXPECT_EQ(r->cfg.ops_port, 7201);                    // env over file
    EXPECT_EQ(r->cfg.shards, 5u);                        // env over file
    EXPECT_EQ(r->cfg.log_level, base::log_level::warn);  // file over default
    EXPECT_EQ(r->cfg.config_file, path);
    std::remove(path.c_str());
}

void expect_error(base::result<loaded> r, const std::string& must_contain) {
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().detail.find(must_contain), std::string::npos) << r.err().detail;
}

TEST(Config, ErrorsNameTheFieldAndOrigin) {
    expect_error(load_args({"--client-port", "70000"}),
                 "client_port: must be an integer in 0..65535, got \"70000\" (from --client-port)");
    expect_error(load_args({"--shards", "many"}), "shards:");
    expect_error(load_args({}, {"HERALD_SLOW_CONSUMER_POLICY=explode"}),
                 "slow_consumer_policy: must be one of close|drop");
    expect_error(load_args({}, {"HERALD_SLOW_CONSUMER_POLICY=explode"}),
                 "(from HERALD_SLOW_CONSUMER_POLICY)");
    expect_error(load_args({"--clinet-port", "1"}), "unknown flag --clinet-port");
    expect_error(load_args({"--client-port"}), "client_port: --client-port needs a value");
    expect_error(load_args({"--brokers", "nohost"}), "brokers:");
    expect_error(load_args({"--topic-dlq", "bad topic"}), "topic_dlq:");
    expect_error(load_args({"--client-port", "9000", "--ops-port", "9000"}), "ops_port");
    expect_error(load_args({"--config", "/nonexistent/herald.conf"}), "/nonexistent/herald.conf");
    const auto path = temp_file("client_port = 1\nclinet_port = 2\n");
    expect_error(load_args({"--config", path}), ":2: unknown key \"clinet_port\"");
    std::remove(path.c_str());
}

TEST(Config, DurationsAndChoicesAreTyped) {
    auto r = load_args({"--ping-interval-ms", "5000", "--history-max-age-s", "60", "--slow-consumer-policy",
                        "drop", "--offset-reset", "earliest", "--outbound-tls-verify", "off", "--log-level",
                        "debug"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.ping_interval, std::chrono::seconds(5));
    EXPECT_EQ(r->cfg.history_max_age, std::chrono::minutes(1));
    EXPECT_EQ(r->cfg.slow_consumer_policy, slow_consumer::drop);
    EXPECT_EQ(r->cfg.offset_reset, kafka_start::earliest);
    EXPECT_FALSE(r->cfg.outbound_tls_verify);
    EXPECT_EQ(r->cfg.log_level, base::log_level::debug);
    // The effective configuration shows durations in the unit of their name.
    const std::string shown = describe(r->cfg);
    EXPECT_NE(shown.find("ping_interval_ms = 5000\n"), std::string::npos) << shown;
    EXPECT_NE(shown.find("slow_consumer_policy = drop\n"), std::string::npos) << shown;
    EXPECT_NE(shown.find("outbound_tls_verify = off\n"), std::string::npos) << shown;
    // Bounds of a duration are checked like any other integer's.
    expect_error(load_args({"--ping-interval-ms", "99"}),
                 "ping_interval_ms: must be an integer in 100..3600000");
    expect_error(load_args({"--outbound-tls-verify", "maybe"}), "outbound_tls_verify: must be one of on|off");
}

TEST(Config, OutboundCaFileComesFromFlagEnvironmentOrFile) {
    auto r = load_args({"--outbound-ca-file", "/etc/herald/gateways-ca.pem"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.outbound_ca_file, "/etc/herald/gateways-ca.pem");
    r = load_args({}, {"HERALD_OUTBOUND_CA_FILE=/ca.pem"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.outbound_ca_file, "/ca.pem");
    EXPECT_TRUE(r->warnings.empty());
    // Default: the system's CAs only.
    r = load_args({});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cfg.outbound_ca_file, "");
}

TEST(Config, UnknownEnvironmentIsAWarning) {
    auto r = load_args(
        {}, {"HERALD_NO_SUCH_THING=1", "HERALD_OPS_URL=http://x", "HERALD_CA_FILE=/ca.pem", "PATH=/bin"});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->warnings.size(), 1u);
    EXPECT_NE(r->warnings[0].find("HERALD_NO_SUCH_THING"), std::string::npos);
}

TEST(Config, HelpAndVersion) {
    auto r = load_args({"--help"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, std::errc::operation_canceled);
    EXPECT_EQ(r.err().detail, "help");
    const auto text = usage("heraldd");
    for (const auto& p : properties()) {
        EXPECT_NE(text.find(p.flag), std::string::npos) << p.flag;
        EXPECT_NE(text.find(p.env), std::string::npos) << p.env;
    }
}

// --- secrets never need argv -------------------------------------------------

const std::string secret_a = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string secret_b = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// No output of load() — its error or its warnings — and no describe() line
/// may hold `value`.
void expect_never_shown(const base::result<loaded>& r, const std::string& value) {
    if (!r) {
        EXPECT_EQ(r.err().detail.find(value), std::string::npos) << r.err().detail;
        return;
    }
    for (const auto& w : r->warnings) EXPECT_EQ(w.find(value), std::string::npos) << w;
    const std::string shown = describe(r->cfg);
    EXPECT_EQ(shown.find(value), std::string::npos) << shown;
}

TEST(ConfigSecrets, FilesAreReadAtLoadWithTheTrailingNewlineTrimmed) {
    const auto token = temp_file("EAAG-wa-token-123\n");
    const auto sms = temp_file("sms-bearer-456\r\n");
    const auto secrets = temp_file("# rotation: new first\n" + secret_a + "\n\n  " + secret_b + "  \n");
    auto r = load_args(
        {"--whatsapp-token-file", token, "--sms-gateway-token-file", sms, "--webhook-secrets-file", secrets});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.whatsapp_token, "EAAG-wa-token-123");
    EXPECT_EQ(r->cfg.sms_gateway_token, "sms-bearer-456");
    EXPECT_EQ(r->cfg.webhook_secrets, secret_a + "," + secret_b);
    EXPECT_TRUE(r->warnings.empty());  // files: nothing to warn about
    // The paths are shown (they help an operator), the values never.
    const std::string shown = describe(r->cfg);
    EXPECT_NE(shown.find("whatsapp_token_file = " + token + "\n"), std::string::npos) << shown;
    EXPECT_NE(shown.find("whatsapp_token = (set)\n"), std::string::npos) << shown;
    EXPECT_NE(shown.find("sms_gateway_token = (set)\n"), std::string::npos) << shown;
    EXPECT_NE(shown.find("webhook_secrets = (set)\n"), std::string::npos) << shown;
    expect_never_shown(r, "EAAG-wa-token-123");
    expect_never_shown(r, "sms-bearer-456");
    expect_never_shown(r, secret_a);
    // The same settings from the environment (HERALD_*_FILE) and the config file.
    const auto conf = temp_file("sms_gateway_token_file = " + sms + "\n");
    auto e = load_args({"--config", conf},
                       {"HERALD_WHATSAPP_TOKEN_FILE=" + token, "HERALD_WEBHOOK_SECRETS_FILE=" + secrets});
    ASSERT_TRUE(e) << e.err().describe();
    EXPECT_EQ(e->cfg.whatsapp_token, "EAAG-wa-token-123");
    EXPECT_EQ(e->cfg.sms_gateway_token, "sms-bearer-456");
    EXPECT_EQ(e->cfg.webhook_secrets, secret_a + "," + secret_b);
    for (const auto& f : {token, sms, secrets, conf}) std::remove(f.c_str());
}

TEST(ConfigSecrets, ValuesFromTheEnvironmentNeedNoFileAndNoWarning) {
    auto r = load_args({}, {"HERALD_WHATSAPP_TOKEN=env-wa-token", "HERALD_SMS_GATEWAY_TOKEN=env-sms-token",
                            "HERALD_WEBHOOK_SECRETS=" + secret_a});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.whatsapp_token, "env-wa-token");
    EXPECT_EQ(r->cfg.sms_gateway_token, "env-sms-token");
    EXPECT_EQ(r->cfg.webhook_secrets, secret_a);
    EXPECT_TRUE(r->warnings.empty());
    expect_never_shown(r, "env-wa-token");
    expect_never_shown(r, "env-sms-token");
    expect_never_shown(r, secret_a);
}

TEST(ConfigSecrets, ValueFlagsStillWorkButWarnWithoutTheValue) {
    auto r = load_args({"--whatsapp-token", "argv-wa-token", "--webhook-secrets=" + secret_a});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.whatsapp_token, "argv-wa-token");
    EXPECT_EQ(r->cfg.webhook_secrets, secret_a);
    ASSERT_EQ(r->warnings.size(), 2u);
    EXPECT_NE(r->warnings[0].find("whatsapp_token: given on the command line"), std::string::npos)
        << r->warnings[0];
    EXPECT_NE(r->warnings[0].find("--whatsapp-token-file"), std::string::npos) << r->warnings[0];
    EXPECT_NE(r->warnings[1].find("webhook_secrets: given on the command line"), std::string::npos)
        << r->warnings[1];
    expect_never_shown(r, "argv-wa-token");
    expect_never_shown(r, secret_a);
}

TEST(ConfigSecrets, TheSmsTokenIsRefusedOnTheCommandLine) {
    auto r = load_args({"--sms-gateway-token", "argv-sms-token"});
    expect_error(r, "sms_gateway_token: not accepted on the command line");
    expect_error(load_args({"--sms-gateway-token=argv-sms-token"}), "--sms-gateway-token-file FILE");
    expect_never_shown(r, "argv-sms-token");
    expect_never_shown(load_args({"--sms-gateway-token=argv-sms-token"}), "argv-sms-token");
}

TEST(ConfigSecrets, BadFilesStopStartUpNamingTheSettingAndFileNeverTheContents) {
    expect_error(load_args({"--whatsapp-token-file", "/nonexistent/wa.token"}),
                 "whatsapp_token_file: cannot read \"/nonexistent/wa.token\"");
    expect_error(load_args({}, {"HERALD_SMS_GATEWAY_TOKEN_FILE=/nonexistent/sms.token"}),
                 "sms_gateway_token_file: cannot read \"/nonexistent/sms.token\"");
    const auto empty = temp_file("\n");
    expect_error(load_args({"--whatsapp-token-file", empty}),
                 "whatsapp_token_file: \"" + empty + "\" is empty");
    expect_error(load_args({"--webhook-secrets-file", empty}),
                 "webhook_secrets_file: \"" + empty + "\" holds no secret");
    // Two lines in a token file: a paste slip, refused (it would end up in a header).
    const auto two_lines = temp_file("first-half-of-token\nsecond-half-hidden\n");
    auto r = load_args({"--sms-gateway-token-file", two_lines});
    expect_error(r, "sms_gateway_token_file: \"" + two_lines + "\" must hold the token alone on one line");
    expect_never_shown(r, "first-half-of-token");
    expect_never_shown(r, "second-half-hidden");
    // A bad secret line: named by its number, never echoed.
    const auto bad = temp_file(secret_a + "\nwhsec_not-base64-at-all-hidden!\n");
    r = load_args({"--webhook-secrets-file", bad});
    expect_error(r, "webhook_secrets_file: line 2 of \"" + bad +
                        "\": each secret must be whsec_ followed by base64 of at least 16 bytes");
    expect_never_shown(r, "not-base64-at-all-hidden");
    expect_never_shown(r, secret_a);
    // A directory is not a file.
    expect_error(load_args({"--whatsapp-token-file", "/tmp"}), "whatsapp_token_file: cannot read \"/tmp\"");
    for (const auto& f : {empty, two_lines, bad}) std::remove(f.c_str());
}

TEST(ConfigSecrets, AValueAndItsFileTogetherAreRefused) {
    const auto token = temp_file("file-token\n");
    auto r = load_args({"--whatsapp-token-file", token}, {"HERALD_WHATSAPP_TOKEN=env-token"});
    expect_error(r, "whatsapp_token_file: whatsapp_token is set too");
    expect_never_shown(r, "file-token");
    expect_never_shown(r, "env-token");
    std::remove(token.c_str());
}

TEST(ConfigSecrets, BadValuesAreRefusedWithoutEchoingThem) {
    auto r = load_args({}, {"HERALD_WEBHOOK_SECRETS=whsec_tooshort-hidden"});
    expect_error(r, "webhook_secrets: each secret must be whsec_ followed by base64 of at least 16 bytes");
    expect_never_shown(r, "tooshort-hidden");
    // Padding in the middle, a trailing comma: not a secret list either.
    expect_error(load_args({}, {"HERALD_WEBHOOK_SECRETS=whsec_AAAA=AAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
                 "webhook_secrets:");
    expect_error(load_args({}, {"HERALD_WEBHOOK_SECRETS=" + secret_a + ","}), "webhook_secrets:");
    r = load_args({}, {"HERALD_SMS_GATEWAY_TOKEN=two words-hidden"});
    expect_error(r, "sms_gateway_token: must be one token without spaces or control characters");
    expect_never_shown(r, "words-hidden");
}

TEST(ConfigSecrets, HelpListsTheFileFormsAndMarksTheRefusedFlag) {
    const auto text = usage("heraldd");
    for (const char* flag : {"--whatsapp-token-file", "--webhook-secrets-file", "--sms-gateway-token-file",
                             "--allow-insecure-webhooks", "HERALD_SMS_GATEWAY_TOKEN"})
        EXPECT_NE(text.find(flag), std::string::npos) << flag;
    EXPECT_NE(text.find("--sms-gateway-token (refused: environment or config file only)"), std::string::npos)
        << text;
}

TEST(ConfigSecrets, InsecureWebhooksAreOffByDefaultAndABareSwitchTurnsThemOn) {
    auto r = load_args({});
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->cfg.allow_insecure_webhooks);
    r = load_args({"--allow-insecure-webhooks"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_TRUE(r->cfg.allow_insecure_webhooks);
    r = load_args({"--allow-insecure-webhooks", "--shards", "3"});  // bare, followed by another flag
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_TRUE(r->cfg.allow_insecure_webhooks);
    EXPECT_EQ(r->cfg.shards, 3u);
    r = load_args({"--allow-insecure-webhooks", "off"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_FALSE(r->cfg.allow_insecure_webhooks);
    r = load_args({}, {"HERALD_ALLOW_INSECURE_WEBHOOKS=on"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_TRUE(r->cfg.allow_insecure_webhooks);
    expect_error(load_args({"--allow-insecure-webhooks", "yes"}),
                 "allow_insecure_webhooks: must be one of on|off");
    // Only switches may be bare: a value setting still needs its value.
    expect_error(load_args({"--whatsapp-token-file", "--shards", "2"}), "unexpected argument \"2\"");
}

TEST(Config, KafkaPropertiesFromFileEnvironmentAndFlagsLaterWinPerKey) {
    const auto path = temp_file(
        "kafka.security.protocol = sasl_ssl\n"
        "kafka.sasl.mechanism = PLAIN\n"
        "kafka.sasl.username = file-user\n"
        "kafka.sasl.password = \"file pass#1\"\n");
    auto r = load_args({"--config", path, "--kafka-property", "sasl.username=flag-user",
                        "--kafka-property=debug=broker,topic"},
                       {"HERALD_KAFKA_PROPERTIES=sasl.username=env-user,client.id=herald-x,linger.ms=7"});
    ASSERT_TRUE(r) << r.err().describe();
    const kafka_properties expected{{"security.protocol", "sasl_ssl"},
                                    {"sasl.mechanism", "PLAIN"},
                                    {"sasl.username", "flag-user"},  // file < env < flag
                                    {"sasl.password", "file pass#1"},
                                    {"client.id", "herald-x"},
                                    {"linger.ms", "7"},
                                    {"debug", "broker,topic"}};  // a comma not before KEY= stays in the value
    EXPECT_EQ(r->cfg.kafka, expected);
    std::remove(path.c_str());
}

TEST(Config, KafkaPropertiesListSplitsAtNewlinesFirst) {
    kafka_properties props;
    EXPECT_EQ(add_kafka_properties(
                  props, "sasl.oauthbearer.config=principal=a,scope=b\n\nssl.cipher.suites=A,B\n", true),
              "");
    const kafka_properties expected{{"sasl.oauthbearer.config", "principal=a,scope=b"},
                                    {"ssl.cipher.suites", "A,B"}};
    EXPECT_EQ(props, expected);
    props.clear();
    EXPECT_EQ(add_kafka_properties(props, "a.b=1, c.d = 2 ,e=x,y", true), "");
    const kafka_properties commas{{"a.b", "1"}, {"c.d", "2"}, {"e", "x,y"}};
    EXPECT_EQ(props, commas);
}

TEST(Config, KafkaPropertyErrorsNameTheItemButNeverItsValue) {
    auto r = load_args({"--kafka-property", "sasl.password:hunter2-secret"});
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().detail.find("kafka_property: must be KEY=VALUE"), std::string::npos) << r.err().detail;
    EXPECT_NE(r.err().detail.find("\"sasl.password\""), std::string::npos) << r.err().detail;
    EXPECT_NE(r.err().detail.find("(from --kafka-property)"), std::string::npos) << r.err().detail;
    EXPECT_EQ(r.err().detail.find("hunter2"), std::string::npos) << r.err().detail;

    r = load_args({"--kafka-property", "hunter2-secret"});  // a bare value: nothing of it is shown
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().detail.find("hunter2"), std::string::npos) << r.err().detail;

    r = load_args({}, {"HERALD_KAFKA_PROPERTIES=client.id=x\nbad key=hunter2-secret"});
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().detail.find("item 2"), std::string::npos) << r.err().detail;
    EXPECT_NE(r.err().detail.find("(from HERALD_KAFKA_PROPERTIES)"), std::string::npos) << r.err().detail;
    EXPECT_EQ(r.err().detail.find("hunter2"), std::string::npos) << r.err().detail;

    const auto path = temp_file("kafka.bad key = hunter2-secret\n");
    r = load_args({"--config", path});
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().detail.find(path + ":1"), std::string::npos) << r.err().detail;
    EXPECT_EQ(r.err().detail.find("hunter2"), std::string::npos) << r.err().detail;
    std::remove(path.c_str());
}

TEST(Config, KafkaCredentialsAreMaskedInTheDescriptionAndHelp) {
    EXPECT_TRUE(is_secret_kafka_key("sasl.password"));
    EXPECT_TRUE(is_secret_kafka_key("ssl.key.password"));
    EXPECT_TRUE(is_secret_kafka_key("ssl.keystore.location"));
    EXPECT_TRUE(is_secret_kafka_key("sasl.oauthbearer.client.secret"));
    EXPECT_TRUE(is_secret_kafka_key("Some.TOKEN"));
    EXPECT_FALSE(is_secret_kafka_key("sasl.username"));
    EXPECT_FALSE(is_secret_kafka_key("security.protocol"));
    EXPECT_EQ(shown_kafka_value("sasl.password", "hunter2"), "***");
    EXPECT_EQ(shown_kafka_value("sasl.username", "alice"), "alice");

    auto r =
        load_args({"--kafka-property", "sasl.username=alice", "--kafka-property",
                   "sasl.password=hunter2-secret", "--kafka-property", "ssl.key.pem=-----BEGIN hunter2-pem"});
    ASSERT_TRUE(r) << r.err().describe();
    const std::string shown = describe(r->cfg);
    EXPECT_NE(shown.find("kafka.sasl.username = alice\n"), std::string::npos) << shown;
    EXPECT_NE(shown.find("kafka.sasl.password = ***\n"), std::string::npos) << shown;
    EXPECT_NE(shown.find("kafka.ssl.key.pem = ***\n"), std::string::npos) << shown;
    EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
    EXPECT_EQ(describe_kafka_properties(r->cfg.kafka),
              "sasl.username=alice, sasl.password=***, ssl.key.pem=***");
    const auto help = usage("heraldd");
    EXPECT_NE(help.find("--kafka-property"), std::string::npos);
    EXPECT_NE(help.find("HERALD_KAFKA_PROPERTIES"), std::string::npos);
    EXPECT_NE(help.find("--subscriptions-max-compaction-lag-ms"), std::string::npos);
}

TEST(Config, SubscriptionsCompactionLagDefaultsToADay) {
    auto r = load_args({});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cfg.subscriptions_max_compaction_lag, std::chrono::hours(24));
    r = load_args({"--subscriptions-max-compaction-lag-ms", "3600000"});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cfg.subscriptions_max_compaction_lag, std::chrono::hours(1));
    expect_error(load_args({"--subscriptions-max-compaction-lag-ms", "10"}),
                 "subscriptions_max_compaction_lag_ms: must be an integer in 1000..");
}

TEST(Config, ResendUnknownChannelsIsEmptyByDefaultAndRefusesWhatIsNoAtMostOnceChannel) {
    auto r = load_args({});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cfg.resend_unknown_channels, "");
    r = load_args({"--resend-unknown-channels", "sms, whatsapp"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.resend_unknown_channels, "sms, whatsapp");
    r = load_args({}, {"HERALD_RESEND_UNKNOWN_CHANNELS=whatsapp"});
    ASSERT_TRUE(r) << r.err().describe();
    EXPECT_EQ(r->cfg.resend_unknown_channels, "whatsapp");
    expect_error(load_args({"--resend-unknown-channels", "whatsap"}),
                 "resend_unknown_channels: \"whatsap\" is not sms or whatsapp");
    expect_error(load_args({"--resend-unknown-channels", "sms,webhook"}),
                 "resend_unknown_channels: webhooks are always re-sent");
}

}  // namespace

TEST(Config, ScheduleHorizonDefaultsToFiveSecondsAndIsBounded) {
    auto r = load_args({});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cfg.schedule_horizon, std::chrono::seconds(5));
    r = load_args({}, {"HERALD_SCHEDULE_HORIZON_S=30"});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cfg.schedule_horizon, std::chrono::seconds(30));
    expect_error(load_args({"--schedule-horizon-s", "soon"}),
                 "schedule_horizon_s: must be an integer in 0..86400");
    expect_error(load_args({"--schedule-horizon-s", "-1"}), "schedule_horizon_s:");
}

}  // namespace herald::config
