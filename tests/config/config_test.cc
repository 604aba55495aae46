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

}  // namespace
}  // namespace herald::config
