// The ops port as SREs and tools use it: /v1/info, /healthz, /readyz, the
// metric names dashboards rely on, and a real Prometheus server scraping
// /metrics and answering a histogram_quantile query.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

TEST(Ops, InfoHealthReadyAndMetricNames) {
    daemon d;
    auto info = http_get(d.ops_port, "/v1/info");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->status, 200);
    EXPECT_NE(info->body.find("\"bootstrap_servers\":\"" + d.brokers + "\""), std::string::npos)
        << info->body;
    EXPECT_NE(info->body.find("\"announcements\":\"herald.announcements\""), std::string::npos);
    EXPECT_NE(info->body.find("\"dlq\":\"herald.dlq\""), std::string::npos);
    EXPECT_NE(info->body.find("\"shards\":2"), std::string::npos);
    EXPECT_NE(info->body.find("\"version\":"), std::string::npos);
    EXPECT_EQ(http_get(d.ops_port, "/healthz")->status, 200);
    EXPECT_EQ(http_get(d.ops_port, "/readyz")->status, 200);
    EXPECT_EQ(http_get(d.ops_port, "/nope")->status, 404);

    const std::string m = d.metrics();
    for (const char* name :
         {"herald_announcements_consumed_total", "herald_announcements_rejected_total",
          "herald_deliveries_total", "herald_live_connections", "herald_shard_queue_depth",
          "herald_delivery_latency_seconds_bucket", "herald_broadcast_spread_seconds_bucket",
          "herald_kafka_consumer_lag", "herald_drops_total", "herald_connections_accepted_total"}) {
        EXPECT_NE(m.find(std::string("\n") + name), std::string::npos) << name << " missing from /metrics";
    }
}

TEST(Ops, NotReadyUntilKafkaAssignmentThenReady) {
    daemon d({}, /*wait_ready=*/false);
    // The mock cluster's first group join takes seconds: /readyz must say so, then turn ready.
    auto first = http_get(d.ops_port, "/readyz");
    ASSERT_TRUE(first);
    if (first->status == 503) {
        EXPECT_NE(first->body.find("Kafka"), std::string::npos);
    }
    EXPECT_TRUE(d.wait_until_ready(30000));
}

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

TEST(Ops, RealPrometheusScrapesAndQueriesHistograms) {
    daemon d;
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(ws.websocket_handshake("/v1/ws?audience=news"));
    kafka_producer producer(d.brokers);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", "news",
                                  R"({"id":"p)" + std::to_string(i) + R"(","audience":"news","text":"x"})"));
        ASSERT_TRUE(ws.read_data_frame(15000));
    }

    const auto dir = std::filesystem::temp_directory_path() / ("herald-prom-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::ofstream cfg(dir / "prometheus.yml");
        cfg << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: herald\n    static_configs:\n"
               "      - targets: ['127.0.0.1:"
            << d.ops_port << "']\n";
    }
    const std::uint16_t port = free_port();
    const std::string cmd = "prometheus --config.file=" + (dir / "prometheus.yml").string() +
                            " --storage.tsdb.path=" + (dir / "data").string() +
                            " --web.listen-address=127.0.0.1:" + std::to_string(port) + " > " +
                            (dir / "prometheus.log").string() + " 2>&1 & echo $!";
    auto started = run_command(cmd);
    const int prom_pid = std::stoi(started.output);
    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = http_get(port, "/api/v1/query?query=sum(herald_deliveries_total%7Boutcome%3D%22sent%22%7D)");
        if (r && r->status == 200 && r->body.find("\"result\":[{") != std::string::npos) {
            answer = r->body;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    EXPECT_NE(answer.find("\"3\""), std::string::npos) << "Prometheus did not see 3 deliveries: " << answer;
    auto q = http_get(port,
                      "/api/v1/query?query=histogram_quantile(0.99%2C%20sum%20by%20(le)%20"
                      "(herald_delivery_latency_seconds_bucket))");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->status, 200);
    EXPECT_NE(q->body.find("\"status\":\"success\""), std::string::npos) << q->body;
    EXPECT_NE(q->body.find("\"result\":[{"), std::string::npos) << q->body;
    ::kill(prom_pid, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::testing
