// Hostile and broken clients against the real daemon: connections that never
// finish their request (slowloris), a storm of connects and disconnects, bad
// frames — each ended with a clear status, close code or timeout and counted
// by reason, while a well-behaved subscriber keeps getting every announcement.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

TEST(HostileClients, SlowlorisChurnAndBadFramesDoNotDisturbTheAudience) {
    daemon d({"--handshake-timeout-ms", "500"});
    peer good(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(good.websocket_handshake("/v1/ws?audience=steady"));
    kafka_producer producer(d.brokers);

    // 50 connections that send half a request and then nothing.
    std::vector<peer> slow;
    for (int i = 0; i < 50; ++i) {
        slow.emplace_back(connect_tcp("127.0.0.1", d.client_port));
        ASSERT_TRUE(slow.back().send_all("GET /v1/ws?audience=ste"));
    }
    // A storm of connects, handshakes and disconnects from four threads.
    std::atomic<int> churned{0};
    const auto storm_start = std::chrono::steady_clock::now();
    std::vector<std::thread> storm;
    for (int t = 0; t < 4; ++t) {
        storm.emplace_back([&] {
            for (int i = 0; i < 1250; ++i) {
                peer p(connect_tcp("127.0.0.1", d.client_port));
                if (p.websocket_handshake("/v1/ws?audience=churn"))
                    ++churned;
            }
        });
    }
    // A client that sends an unmasked frame (a protocol error: 1002).
    peer rude(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_TRUE(rude.websocket_handshake("/v1/ws?audience=steady"));
    ASSERT_TRUE(rude.send_all(std::string("\x81\x02hi", 4)));
    for (auto& th : storm) th.join();
    const double storm_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - storm_start).count();
    std::cerr << "connect/handshake/disconnect storm: " << churned.load() << " in " << storm_s << " s ("
              << static_cast<int>(churned.load() / storm_s) << "/s)\n";
    EXPECT_EQ(churned.load(), 5000);

    ASSERT_TRUE(producer.produce_json("herald.announcements", "steady",
                                      R"({"id":"s1","audience":"steady","text":"still here"})"));
    auto f = good.read_data_frame(15000);
    ASSERT_TRUE(f) << d.log();
    EXPECT_NE(f->payload.find("\"id\":\"s1\""), std::string::npos);

    auto close = rude.read_frame(5000);
    ASSERT_TRUE(close);
    EXPECT_EQ(close->opcode, 0x8);
    EXPECT_EQ(close->close_code(), 1002);
    rude.close();  // the connection ends when the client answers the close
    for (auto& p : slow) {
        auto reply = p.read_until("\r\n\r\n", 5000);
        ASSERT_TRUE(reply) << "a slowloris connection was never timed out";
        EXPECT_EQ(reply->rfind("HTTP/1.1 408", 0), 0u) << *reply;
        p.close();  // (one that never closes is dropped after a linger)
    }
    // Counted by reason (the tallies reach Prometheus on the next shard tick).
    std::string m;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        m = d.metrics();
    } while ((metric_value(m, "herald_connections_closed_total", "reason=\"peer_closed\"") < 5000 ||
              metric_value(m, "herald_connections_closed_total", "reason=\"protocol_error\"") < 1 ||
              metric_value(m, "herald_connections_closed_total", "reason=\"handshake_timeout\"") < 50) &&
             std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(metric_value(m, "herald_connections_closed_total", "reason=\"handshake_timeout\""), 50) << m;
    EXPECT_EQ(metric_value(m, "herald_connections_closed_total", "reason=\"protocol_error\""), 1) << m;
    EXPECT_GE(metric_value(m, "herald_connections_closed_total", "reason=\"peer_closed\""), 5000) << m;
    EXPECT_EQ(metric_value(m, "herald_live_connections"), 1) << "only the good subscriber is left";
}

}  // namespace
}  // namespace herald::testing
