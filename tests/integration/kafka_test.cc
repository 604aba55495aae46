// The operator's librdkafka properties reach every Kafka client heraldd and
// the herald CLI create, a property librdkafka refuses stops start-up naming
// it, credentials never show; and what heraldd says about the compaction of
// herald.subscriptions.
//
// librdkafka 2.0.2's mock cluster speaks plaintext only (it advertises no
// SaslHandshake) and answers neither CreateTopics nor DescribeConfigs (no
// controller), so what reaches the clients is shown two ways: a deprecated
// property every client warns about as it is created (a CONFWARN naming the
// client), and SASL/PLAIN settings that make the clients try to
// authenticate, which the mock refuses.
#include "support/kafka.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "support/daemon.h"

namespace herald::testing {
namespace {

/// A deprecated property every librdkafka client warns about when it is
/// created, naming itself: visible proof a client got the operator's list.
const std::string deprecated = "topic.metadata.refresh.fast.cnt";
const std::string secret = "pw-Zq81-never-printed";

std::string temp_path(const std::string& stem) {
    return "/tmp/" + stem + "-" + std::to_string(::getpid()) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

/// Whether one line of `text` contains every one of `parts`.
bool has_line(const std::string& text, const std::vector<std::string>& parts) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (std::all_of(parts.begin(), parts.end(),
                        [&](const std::string& p) { return line.find(p) != std::string::npos; }))
            return true;
    }
    return false;
}

/// Waits until `log()` contains `needle`.
bool wait_for_log(const daemon& d, const std::string& needle, int timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
        if (d.log().find(needle) != std::string::npos)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
}

TEST(KafkaProperties, ReachEveryClientOfTheDaemonAndCredentialsAreMasked) {
    external_kafka kafka;  // a "real" cluster to heraldd: the admin client is created too
    daemon d({"--brokers", kafka.brokers, "--instance-id", "kp1", "--kafka-property", deprecated + "=5",
              "--kafka-property", "sasl.password=" + secret, "--log-level", "debug"});

    // One CONFWARN per client, each named by its client.id (librdkafka's
    // own log) or its log name (the consumers route librdkafka's log).
    const std::string warning = "Configuration property " + deprecated + " is deprecated";
    ASSERT_TRUE(wait_for_log(d, "[outbound] consuming", 10)) << d.log();
    ASSERT_TRUE(wait_for_log(d, "[live] consuming", 10)) << d.log();
    const std::string log = d.log();
    EXPECT_TRUE(has_line(log, {"[live] kafka: CONFWARN: ", warning})) << log;
    EXPECT_TRUE(has_line(log, {"[outbound] kafka: CONFWARN: ", warning})) << log;
    for (const std::string client :
         {"heraldd-kp1-dlq#producer", "heraldd-kp1-outbound-dlq#producer", "heraldd-kp1-registry#consumer",
          "heraldd-kp1-registry#producer", "heraldd-kp1-receipts#producer", "heraldd-kp1-admin#producer"}) {
        EXPECT_TRUE(has_line(log, {"CONFWARN|" + client + "-", warning}))
            << client << " did not get the property\n"
            << log;
    }

    // Shown masked where it is shown at all.
    EXPECT_NE(log.find("kafka properties for every client: " + deprecated + "=5, sasl.password=***"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("kafka.sasl.password = ***"), std::string::npos)
        << log;  // the debug dump of the config
    auto info = http_get(d.ops_port, "/v1/info");
    ASSERT_TRUE(info && info->status == 200);
    EXPECT_NE(info->body.find("\"properties\":{\"" + deprecated + "\":\"5\",\"sasl.password\":\"***\"}"),
              std::string::npos)
        << info->body;
    EXPECT_EQ(info->body.find(secret), std::string::npos) << info->body;

    // The subscriptions topic exists on this cluster; its configuration is
    // asked for in the background, and the mock cannot answer: unknown, said once.
    EXPECT_EQ(metric_value(d.metrics(), "herald_subscriptions_topic_compacted"), -1);
    EXPECT_TRUE(wait_for_log(d, "herald.subscriptions: cannot read its configuration", 30)) << d.log();
    EXPECT_EQ(metric_value(d.metrics(), "herald_subscriptions_topic_compacted"), -1);
    EXPECT_EQ(d.terminate(), 0);
    EXPECT_EQ(d.log().find(secret), std::string::npos);
}

TEST(KafkaProperties, TheEmbeddedClusterSaysItsSubscriptionsAreNeverCompacted) {
    daemon d;
    EXPECT_NE(d.log().find("herald.subscriptions lives in the embedded mock cluster"), std::string::npos)
        << d.log();
    const auto m = d.metrics();
    EXPECT_NE(m.find("herald_subscriptions_topic_compacted -1"), std::string::npos) << m;
}

TEST(KafkaProperties, ARefusedPropertyStopsStartUpNamingIt) {
    const std::string dir = temp_path("herald-kp-refused");
    const std::string heraldd = bin_dir() + "/heraldd --client-port 0 --ops-port 0 --data-dir " + dir;
    auto r = run_command(heraldd + " --kafka-property sasl.password=" + secret +
                         " --kafka-property no.such.property=1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("config error: kafka_property no.such.property"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir + "/admin.key")) << "refused before anything started";

    // A value librdkafka refuses; through the environment (a list).
    r = run_command("HERALD_KAFKA_PROPERTIES='sasl.password=" + secret +
                    ",security.protocol=carrier_pigeon' " + heraldd);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("kafka_property security.protocol"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;

    // A setting at-least-once delivery rests on.
    r = run_command(heraldd + " --kafka-property enable.auto.commit=true");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("kafka_property enable.auto.commit: set by Herald itself"), std::string::npos)
        << r.output;

    // A combination librdkafka refuses only when it creates a client.
    r = run_command(heraldd + " --kafka-property security.protocol=ssl --kafka-property ssl.key.password=" +
                    secret + " --kafka-property ssl.ca.location=/nonexistent/ca.pem");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("ssl.ca.location"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;

    // From the config file too.
    const std::string conf = temp_path("herald-kp.conf");
    std::ofstream(conf) << "kafka.sasl.password = " << secret << "\nkafka.no.such.thing = 1\n";
    r = run_command(heraldd + " --config " + conf);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("kafka_property no.such.thing"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;
    std::remove(conf.c_str());
    std::filesystem::remove_all(dir);
}

TEST(KafkaProperties, SaslSettingsReachTheClientsWhichTheMockRefuses) {
    // SASL/PLAIN against the embedded cluster: every client tries to
    // authenticate and the mock (plaintext only) refuses the handshake, so
    // heraldd cannot start; the password never appears.
    const std::string dir = temp_path("herald-kp-sasl");
    auto r =
        run_command("timeout 60 " + bin_dir() +
                    "/heraldd --client-port 0 --ops-port 0 --instance-id sasl1 --data-dir " + dir +
                    " --kafka-property security.protocol=sasl_plaintext --kafka-property sasl.mechanism=PLAIN"
                    " --kafka-property sasl.username=herald --kafka-property sasl.password=" +
                    secret);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.exit_code, 124) << "heraldd neither started nor gave up\n" << r.output;
    EXPECT_NE(r.output.find("the embedded Kafka speaks plaintext only"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("SASL Handshake not supported by broker (required by mechanism PLAIN)"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("heraldd-sasl1-registry#"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;
    std::filesystem::remove_all(dir);
}

TEST(KafkaProperties, TheCliTakesThemFromFlagsAndAFile) {
    external_kafka kafka;
    const std::string herald =
        bin_dir() + "/herald announce --brokers " + kafka.brokers + " --audience kp.news --text hello";
    // Passed through: the CLI's producer warns about the deprecated property
    // (log_level raised so that a warning is printed at all).
    auto r = run_command(herald + " --kafka-property log_level=4 --kafka-property " + deprecated + "=5");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("herald-cli#producer"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(deprecated + " is deprecated"), std::string::npos) << r.output;

    // Refused, by name.
    r = run_command(herald + " --kafka-property no.such.property=1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("kafka_property no.such.property"), std::string::npos) << r.output;

    // Secrets from a file, not argv: SASL reaches the producer, the mock
    // refuses it, the password is printed nowhere.
    const std::string file = temp_path("herald-cli-kafka.properties");
    std::ofstream(file) << "# SASL for the CLI\nsecurity.protocol=sasl_plaintext\nsasl.mechanism=PLAIN\n"
                        << "sasl.username=publisher\nsasl.password=" << secret
                        << "\nmessage.timeout.ms=3000\n";
    r = run_command(herald + " --kafka-properties-file " + file);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("SASL Handshake not supported by broker"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;
    // The environment works like the file; a flag overrides both.
    r = run_command("HERALD_KAFKA_PROPERTIES='security.protocol=sasl_plaintext\nsasl.mechanism=PLAIN' " +
                    herald + " --kafka-properties-file " + file +
                    " --kafka-property security.protocol=plaintext");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::remove(file.c_str());
}

}  // namespace
}  // namespace herald::testing
