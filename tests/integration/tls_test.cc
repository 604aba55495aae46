// TLS on the client and ops ports against the real daemon, with a CA and
// certificates the test makes (nothing committed): WebSocket and SSE over
// TLS get byte-identical announcements, old protocols and plain HTTP are
// refused and counted, a SIGHUP serves a renewed certificate to new
// connections while an open one keeps receiving, the ops port can demand a
// client certificate, and bad certificate settings stop start-up naming the
// setting. Clients: the test's own OpenSSL peer, openssl s_client and curl.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "support/daemon.h"
#include "support/kafka.h"
#include "support/test_certs.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

class TlsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("herald-tls-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        ca_ = std::make_unique<private_ca>(dir_, "herald");
        server_ = ca_->server("server", "herald.test");
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    /// heraldd with TLS on both ports (plus `extra` flags), ready.
    std::unique_ptr<daemon> start(std::vector<std::string> extra = {},
                                  std::optional<peer::tls_options> ops_client = std::nullopt) {
        std::vector<std::string> args{"--tls-cert-file", server_.cert_file, "--tls-key-file",
                                      server_.key_file};
        args.insert(args.end(), extra.begin(), extra.end());
        auto d = std::make_unique<daemon>(args, false);
        ops_tls()[d->ops_port] = ops_client.value_or(peer::tls_options{ca_->ca_file()});
        EXPECT_TRUE(d->wait_until_ready(30000)) << d->log();
        return d;
    }

    peer tls_peer(std::uint16_t port, peer::tls_options o = {}) {
        if (o.ca_file.empty())
            o.ca_file = ca_->ca_file();
        peer p(connect_tcp("127.0.0.1", port));
        const std::string why = p.start_tls(o);
        EXPECT_EQ(why, "") << "TLS handshake to port " << port;
        return p;
    }

    std::string curl(const std::string& args) {
        return run_command("curl -sS --max-time 10 --cacert " + ca_->ca_file() + " " + args + " 2>&1").output;
    }

    static std::string announcement(const std::string& id, const std::string& audience,
                                    const std::string& text = "Doors open at 18:00") {
        return R"({"id":")" + id + R"(","audience":")" + audience + R"(","text":")" + text + R"("})";
    }

    std::filesystem::path dir_;
    std::unique_ptr<private_ca> ca_;
    private_ca::issued server_;
};

TEST_F(TlsTest, WebSocketAndSseOverTlsGetIdenticalBytes) {
    auto d = start();
    std::vector<peer> ws;
    for (int i = 0; i < 4; ++i) {
        ws.push_back(tls_peer(d->client_port));
        auto head = ws.back().websocket_handshake("/v1/ws?audience=lineup.main");
        ASSERT_TRUE(head);
        ASSERT_EQ(head->rfind("HTTP/1.1 101", 0), 0u) << *head;
    }
    EXPECT_EQ(ws[0].alpn(), "http/1.1");
    std::vector<peer> sse;
    for (int i = 0; i < 2; ++i) {
        sse.push_back(tls_peer(d->client_port));
        auto head = sse.back().sse_handshake("/v1/sse?audience=lineup.main");
        ASSERT_TRUE(head);
        ASSERT_NE(head->find("text/event-stream"), std::string::npos) << *head;
    }
    // curl as a third kind of client, reading the SSE stream over https.
    std::string curl_out;
    std::thread curl_thread([&] {
        curl_out = run_command("curl -sSN --max-time 6 --cacert " + ca_->ca_file() + " 'https://127.0.0.1:" +
                               std::to_string(d->client_port) + "/v1/sse?audience=lineup.main' 2>&1")
                       .output;
    });
    std::this_thread::sleep_for(1500ms);  // curl connected and subscribed
    kafka_producer producer(d->brokers);
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "lineup.main", announcement("tls-1", "lineup.main")));

    ASSERT_TRUE(ws[0].read_data_frame(10000));
    const std::string frame = ws[0].raw_last_;
    EXPECT_NE(frame.find("Doors open at 18:00"), std::string::npos);
    for (std::size_t i = 1; i < ws.size(); ++i) {
        ASSERT_TRUE(ws[i].read_data_frame(10000));
        EXPECT_EQ(ws[i].raw_last_, frame) << "subscriber " << i << " got other bytes";
    }
    auto first = sse[0].read_sse_event(10000);
    ASSERT_TRUE(first);
    auto second = sse[1].read_sse_event(10000);
    ASSERT_TRUE(second);
    EXPECT_EQ(*first, *second);
    curl_thread.join();
    EXPECT_NE(curl_out.find(*first), std::string::npos) << curl_out;

    // The ops port speaks TLS too and says so.
    const std::string info = curl("-H 'Authorization: Bearer " + d->admin_key +
                                  "' https://127.0.0.1:" + std::to_string(d->ops_port) + "/v1/info");
    EXPECT_NE(info.find("\"client\":true"), std::string::npos) << info;
    EXPECT_NE(info.find("\"kernel_tls_available\""), std::string::npos) << info;
}

TEST_F(TlsTest, OldProtocolsPlainHttpAndStrangersAreRefusedAndCounted) {
    auto d = start();
    const std::string port = std::to_string(d->client_port);
    // TLS 1.1 (and older) is refused.
    auto old = run_command("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + port +
                           " -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' 2>&1");
    EXPECT_NE(old.exit_code, 0) << old.output;
    // TLS 1.3 with ALPN http/1.1, verified against the test CA.
    auto good = run_command("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + port +
                            " -alpn http/1.1 -verify_return_error -CAfile " + ca_->ca_file() + " 2>&1");
    EXPECT_EQ(good.exit_code, 0) << good.output;
    EXPECT_NE(good.output.find("ALPN protocol: http/1.1"), std::string::npos) << good.output;
    EXPECT_NE(good.output.find("TLSv1.3"), std::string::npos) << good.output;
    // Plain HTTP to a TLS port gets no HTTP answer.
    peer plain(connect_tcp("127.0.0.1", d->client_port));
    ASSERT_TRUE(plain.send_all("GET /v1/sse?audience=a HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(plain.wait_eof(5000));
    EXPECT_EQ(plain.buffer().find("HTTP/1.1"), std::string::npos);
    // A client that trusts another CA refuses heraldd's certificate; heraldd counts its alert.
    private_ca stranger(dir_ / "stranger", "stranger");
    peer wary(connect_tcp("127.0.0.1", d->client_port));
    EXPECT_NE(wary.start_tls({stranger.ca_file()}).find("certificate"), std::string::npos);

    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::string m;
    while (std::chrono::steady_clock::now() < deadline) {
        m = d->metrics();
        if (metric_value(m, "herald_tls_handshake_failures_total", "reason=\"protocol_version\"") >= 1 &&
            metric_value(m, "herald_tls_handshake_failures_total", "reason=\"plaintext_http\"") >= 1 &&
            metric_value(m, "herald_tls_handshake_failures_total", "reason=\"peer_alert\"") >= 1)
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_GE(metric_value(m, "herald_tls_handshake_failures_total", "reason=\"protocol_version\""), 1) << m;
    EXPECT_GE(metric_value(m, "herald_tls_handshake_failures_total", "reason=\"plaintext_http\""), 1) << m;
    EXPECT_GE(metric_value(m, "herald_tls_handshake_failures_total", "reason=\"peer_alert\""), 1) << m;
}

TEST_F(TlsTest, SighupServesARenewedCertificateWhileOpenConnectionsKeepReceiving) {
    auto d = start();
    peer before = tls_peer(d->client_port);
    EXPECT_EQ(before.peer_common_name(), "herald.test");
    ASSERT_TRUE(before.websocket_handshake("/v1/ws?audience=gate.a12"));
    // The operator renews the certificate in place and sends SIGHUP.
    ca_->server("server", "herald-renewed.test");
    ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
    std::string cn;
    for (int i = 0; i < 100 && cn != "herald-renewed.test"; ++i) {
        std::this_thread::sleep_for(50ms);
        peer probe = tls_peer(d->client_port);
        cn = probe.peer_common_name();
    }
    EXPECT_EQ(cn, "herald-renewed.test") << d->log();
    peer after = tls_peer(d->client_port);
    ASSERT_TRUE(after.websocket_handshake("/v1/ws?audience=gate.a12"));
    // The ops port was reloaded too.
    const std::string ops =
        run_command("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(d->ops_port) +
                    " 2>&1")
            .output;
    EXPECT_NE(ops.find("herald-renewed.test"), std::string::npos) << ops;

    kafka_producer producer(d->brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "gate.a12", announcement("g-1", "gate.a12")));
    for (auto* p : {&before, &after}) {
        ASSERT_TRUE(p->read_data_frame(10000));
        EXPECT_NE(p->raw_last_.find("Doors open"), std::string::npos);
    }
    // A certificate file that no longer loads keeps the one in force.
    {
        std::ofstream broken(server_.cert_file, std::ios::trunc);
        broken << "not a certificate\n";
    }
    ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
    std::this_thread::sleep_for(500ms);
    peer still = tls_peer(d->client_port);
    EXPECT_EQ(still.peer_common_name(), "herald-renewed.test");
    EXPECT_NE(d->log().find("keeping the current client port certificate"), std::string::npos) << d->log();
}

TEST_F(TlsTest, TheOpsPortCanRequireAClientCertificate) {
    private_ca clients(dir_ / "clients", "sre");
    const auto prometheus = clients.client("prometheus", "prometheus");
    peer::tls_options with_cert{ca_->ca_file()};
    with_cert.cert_file = prometheus.cert_file;
    with_cert.key_file = prometheus.key_file;
    auto d = start({"--tls-client-ca-file", clients.ca_file()}, with_cert);
    const std::string url = "https://127.0.0.1:" + std::to_string(d->ops_port) + "/metrics";
    // Without a certificate, and with one from another CA: no answer.
    EXPECT_EQ(curl(url).find("herald_"), std::string::npos);
    private_ca rogue(dir_ / "rogue", "rogue");
    const auto intruder = rogue.client("intruder", "intruder");
    EXPECT_EQ(
        curl("--cert " + intruder.cert_file + " --key " + intruder.key_file + " " + url).find("herald_"),
        std::string::npos);
    // With the SRE's certificate: the scrape works and shows the refusals.
    std::string m;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        m = curl("--cert " + prometheus.cert_file + " --key " + prometheus.key_file + " " + url);
        if (metric_value(m, "herald_tls_handshake_failures_total",
                         "port=\"ops\",reason=\"client_certificate\"") >= 2)
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_GE(
        metric_value(m, "herald_tls_handshake_failures_total", "port=\"ops\",reason=\"client_certificate\""),
        2)
        << m;
    // The client port asks live clients for no certificate.
    peer live = tls_peer(d->client_port);
    auto head = live.websocket_handshake("/v1/ws?audience=news");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->rfind("HTTP/1.1 101", 0), 0u) << *head;
}

// The herald CLI against heraldd over TLS, as an operator would use it:
// status and announce through https://, listen over wss:// and https:// SSE,
// trusting the CA with --ca-file; without it, a refusal and no plaintext.
TEST_F(TlsTest, TheCliSpeaksVerifiedTlsToHeraldd) {
    auto d = start();
    const std::string env = "HERALD_OPS_URL=https://127.0.0.1:" + std::to_string(d->ops_port) +
                            " HERALD_DATA_DIR=" + d->data_dir() + " ";
    const std::string cli = env + bin_dir() + "/herald ";
    const std::string ca = " --ca-file " + ca_->ca_file();
    auto status = run_command(cli + "status" + ca + " 2>&1");
    EXPECT_EQ(status.exit_code, 0) << status.output;
    auto refused = run_command(cli + "status 2>&1");
    EXPECT_NE(refused.exit_code, 0) << refused.output;
    EXPECT_NE(refused.output.find("unknown CA"), std::string::npos) << refused.output;

    run_result ws_out, sse_out;
    std::thread ws([&] {
        ws_out = run_command(cli + "listen --audience lineup.main --count 1 --timeout 30s" + ca + " 2>&1");
    });
    std::thread sse([&] {
        sse_out =
            run_command(cli + "listen --sse --audience lineup.main --count 1 --timeout 30s" + ca + " 2>&1");
    });
    std::this_thread::sleep_for(2s);  // both listeners connected
    kafka_producer producer(d->brokers);
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "lineup.main", announcement("cli-1", "lineup.main")));
    ws.join();
    sse.join();
    EXPECT_EQ(ws_out.exit_code, 0) << ws_out.output;
    EXPECT_NE(ws_out.output.find("Doors open at 18:00"), std::string::npos) << ws_out.output;
    EXPECT_EQ(sse_out.exit_code, 0) << sse_out.output;
    EXPECT_NE(sse_out.output.find("Doors open at 18:00"), std::string::npos) << sse_out.output;
}

TEST_F(TlsTest, BadCertificateSettingsStopStartUpNamingTheSetting) {
    const std::string heraldd = "timeout 60 " + bin_dir() +
                                "/heraldd --client-port 0 --ops-port 0 --data-dir " +
                                (dir_ / "data").string() + " ";
    auto r = run_command(heraldd + "--tls-cert-file " + server_.cert_file + " 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("tls_key_file"), std::string::npos) << r.output;

    r = run_command(heraldd + "--tls-cert-file " + (dir_ / "missing.pem").string() + " --tls-key-file " +
                    server_.key_file + " 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("tls_cert_file"), std::string::npos) << r.output;

    const auto other = ca_->server("other", "other.test");
    r = run_command(heraldd + "--tls-cert-file " + server_.cert_file + " --tls-key-file " + other.key_file +
                    " 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("does not match"), std::string::npos) << r.output;

    r = run_command(heraldd + "--tls-client-ca-file " + ca_->ca_file() + " 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("tls_client_ca_file"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace herald::testing
