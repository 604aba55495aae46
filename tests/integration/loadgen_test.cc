// herald-loadgen, the benchmarks' load generator, against the real daemon:
// over TLS it opens wss:// subscribers and measures the same rounds as in
// plaintext (every subscriber gets every announcement, bursts included); it
// refuses a certificate of another CA or for another name, on the ops port
// and on the subscribers' port alike, and says why; plaintext is unchanged.
// Against a stand-in for a peer server that writes TLS records back to back
// (as nginx+Nchan does), it reads every record OpenSSL already holds rather
// than waiting for epoll. The CA and certificates are made by the test.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon.h"
#include "support/test_certs.h"

namespace herald::testing {
namespace {

/// The load generator's one-line JSON report, or "" when it printed none.
std::string json_report(const std::string& output) {
    const auto at = output.find("{\"connections\":");
    return at == std::string::npos ? std::string() : output.substr(at, output.find('\n', at) - at);
}

/// Every broadcast of the report delivered to `n` of `n`.
::testing::AssertionResult all_delivered(const std::string& json, int n, int broadcasts) {
    const std::string full =
        "\"delivered\":" + std::to_string(n) + ",\"expected\":" + std::to_string(n) + ",";
    int seen = 0;
    for (auto at = json.find("\"delivered\":"); at != std::string::npos;
         at = json.find("\"delivered\":", at + 1)) {
        if (json.compare(at, full.size(), full) != 0)
            return ::testing::AssertionFailure() << "a broadcast missed subscribers: " << json;
        ++seen;
    }
    if (seen != broadcasts)
        return ::testing::AssertionFailure()
               << seen << " broadcasts reported, want " << broadcasts << ": " << json;
    return ::testing::AssertionSuccess();
}

/// A stand-in for a peer server over TLS (the role nginx+Nchan plays in
/// bench/peers.sh --tls): it upgrades `subscribers` wss:// connections, and
/// for every message POSTed to its plaintext publish port writes the
/// WebSocket frame to each subscriber as two TLS records corked into one TCP
/// segment, so both reach the reader in one read(2): OpenSSL then holds the
/// second record where epoll cannot see it.
class split_record_server {
  public:
    split_record_server(const private_ca::issued& cert, int subscribers) {
        ctx_ = SSL_CTX_new(TLS_server_method());
        ok_ = SSL_CTX_use_certificate_chain_file(ctx_, cert.cert_file.c_str()) == 1 &&
              SSL_CTX_use_PrivateKey_file(ctx_, cert.key_file.c_str(), SSL_FILETYPE_PEM) == 1;
        sub_listener_ = listen_loopback(&sub_port);
        pub_listener_ = listen_loopback(&pub_port);
        thread_ = std::thread([this, subscribers] { serve(subscribers); });
    }
    ~split_record_server() {
        stop_ = true;
        thread_.join();
        for (SSL* ssl : subs_) SSL_free(ssl);
        for (const int fd : fds_) ::close(fd);
        ::close(sub_listener_);
        ::close(pub_listener_);
        SSL_CTX_free(ctx_);
    }
    split_record_server(const split_record_server&) = delete;
    split_record_server& operator=(const split_record_server&) = delete;

    [[nodiscard]] bool ok() const { return ok_ && sub_port != 0 && pub_port != 0; }

    std::uint16_t sub_port = 0;
    std::uint16_t pub_port = 0;
    std::atomic<int> published{0};

  private:
    static int listen_loopback(std::uint16_t* port) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 64) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            return fd;
        *port = ntohs(a.sin_port);
        return fd;
    }

    /// Waits for a connection on `fd` until stopped.
    [[nodiscard]] int accept_one(int fd) const {
        while (!stop_) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 100) == 1)
                return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        }
        return -1;
    }

    void serve(int subscribers) {
        while (static_cast<int>(subs_.size()) < subscribers) {
            const int fd = accept_one(sub_listener_);
            if (fd < 0)
                return;
            SSL* ssl = SSL_new(ctx_);
            SSL_set_fd(ssl, fd);
            std::string request;
            char buf[2048];
            while (SSL_accept(ssl) == 1 && request.find("\r\n\r\n") == std::string::npos) {
                const int n = SSL_read(ssl, buf, sizeof buf);
                if (n <= 0)
                    break;
                request.append(buf, static_cast<std::size_t>(n));
            }
            static const std::string upgraded =
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
            SSL_write(ssl, upgraded.data(), static_cast<int>(upgraded.size()));
            subs_.push_back(ssl);
            fds_.push_back(fd);
        }
        for (int fd; (fd = accept_one(pub_listener_)) >= 0;) {
            std::string req;
            char buf[4096];
            std::size_t want = std::string::npos;
            while (req.size() < want) {
                const ssize_t n = ::read(fd, buf, sizeof buf);
                if (n <= 0)
                    break;
                req.append(buf, static_cast<std::size_t>(n));
                if (const auto end = req.find("\r\n\r\n");
                    end != std::string::npos && want == std::string::npos) {
                    const auto cl = req.find("Content-Length: ");
                    want = end + 4 + (cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16)));
                }
            }
            static const std::string done =
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            [[maybe_unused]] const ssize_t w = ::write(fd, done.data(), done.size());
            ::close(fd);
            const std::string body = req.substr(req.find("\r\n\r\n") + 4);
            std::string frame(1, '\x81');
            if (body.size() < 126) {
                frame += static_cast<char>(body.size());
            } else {
                frame += static_cast<char>(126);
                frame += static_cast<char>(body.size() >> 8);
                frame += static_cast<char>(body.size() & 0xFF);
            }
            frame += body;
            const std::size_t half = frame.size() / 2;
            for (std::size_t i = 0; i < subs_.size(); ++i) {
                int on = 1;
                ::setsockopt(fds_[i], IPPROTO_TCP, TCP_CORK, &on, sizeof on);
                SSL_write(subs_[i], frame.data(), static_cast<int>(half));
                SSL_write(subs_[i], frame.data() + half, static_cast<int>(frame.size() - half));
                on = 0;
                ::setsockopt(fds_[i], IPPROTO_TCP, TCP_CORK, &on, sizeof on);
            }
            ++published;
        }
    }

    SSL_CTX* ctx_ = nullptr;
    bool ok_ = false;
    int sub_listener_ = -1;
    int pub_listener_ = -1;
    std::vector<SSL*> subs_;
    std::vector<int> fds_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

class LoadgenTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("herald-loadgen-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        ca_ = std::make_unique<private_ca>(dir_, "bench");
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    /// herald-loadgen against `d` with `args`; output and exit code.
    static run_result loadgen(const daemon& d, const std::string& args) {
        return run_command("HERALD_DATA_DIR=" + d.data_dir() + " timeout 120 " + bin_dir() +
                           "/herald-loadgen --ops 127.0.0.1:" + std::to_string(d.ops_port) +
                           " --idle-samples 1 --release-delay-ms 0 --timeout-s 10 --json " + args);
    }

    /// The test's own HTTP calls (readiness, metrics) reach the ops port over TLS.
    void trust_ops_port(const daemon& d) const {
        peer::tls_options o;
        o.ca_file = ca_->ca_file();
        ops_tls()[d.ops_port] = o;
    }

    std::filesystem::path dir_;
    std::unique_ptr<private_ca> ca_;
};

TEST_F(LoadgenTest, MeasuresFanOutOverWssAsInPlaintext) {
    const auto server = ca_->server("server", "herald.test");
    daemon d({"--tls-cert-file", server.cert_file, "--tls-key-file", server.key_file}, false);
    trust_ops_port(d);
    ASSERT_TRUE(d.wait_until_ready(30000)) << d.log();

    // Two worker processes, single announcements.
    auto single =
        loadgen(d, "--tls-ca-file " + ca_->ca_file() + " --connections 30 --procs 2 --broadcasts 2");
    ASSERT_EQ(single.exit_code, 0) << single.output << d.log();
    const std::string json = json_report(single.output);
    EXPECT_NE(json.find("\"connected\":30,"), std::string::npos) << json;
    EXPECT_NE(json.find("\"tls\":\"TLSv1.3 TLS_"), std::string::npos) << json;
    EXPECT_TRUE(all_delivered(json, 30, 2));

    // Bursts: several records arrive together; OpenSSL reads them ahead of
    // epoll, so a reader that did not drain it would miss frames and time out.
    auto burst =
        loadgen(d, "--tls-ca-file " + ca_->ca_file() + " --connections 20 --broadcasts 2 --burst 25");
    ASSERT_EQ(burst.exit_code, 0) << burst.output << d.log();
    EXPECT_TRUE(all_delivered(json_report(burst.output), 20, 2));

    // Every handshake succeeded (none counted as failed by heraldd).
    EXPECT_EQ(metric_value(d.metrics(), "herald_tls_handshake_failures_total", "port=\"client\""), 0);
}

TEST_F(LoadgenTest, RefusesCertificatesOfAnotherCaOrForAnotherName) {
    // The ops port's certificate names 127.0.0.1 and elsewhere.test; the
    // client port's names only elsewhere.test, so subscribers that verify
    // 127.0.0.1 must refuse it.
    const auto ops = ca_->server("ops", "ops.test", "IP:127.0.0.1,DNS:elsewhere.test");
    const auto client = ca_->server("client", "elsewhere.test", "DNS:elsewhere.test");
    daemon d({"--tls-cert-file", client.cert_file, "--tls-key-file", client.key_file, "--ops-tls-cert-file",
              ops.cert_file, "--ops-tls-key-file", ops.key_file},
             false);
    trust_ops_port(d);
    ASSERT_TRUE(d.wait_until_ready(30000)) << d.log();

    // Wrong name on the subscribers' port: no subscriber, a non-zero exit, the reason told.
    auto wrong_name = loadgen(d, "--tls-ca-file " + ca_->ca_file() + " --connections 5 --broadcasts 1");
    EXPECT_NE(wrong_name.exit_code, 0) << wrong_name.output;
    EXPECT_NE(wrong_name.output.find("certificate verify failed: IP address mismatch"), std::string::npos)
        << wrong_name.output;
    EXPECT_NE(wrong_name.output.find("no subscriber completed the TLS handshake"), std::string::npos)
        << wrong_name.output;
    EXPECT_EQ(json_report(wrong_name.output), "") << wrong_name.output;

    // The same CA and the name the certificates carry: accepted, measured.
    auto right_name = loadgen(d, "--tls-ca-file " + ca_->ca_file() +
                                     " --tls-server-name elsewhere.test --connections 5 --broadcasts 1");
    ASSERT_EQ(right_name.exit_code, 0) << right_name.output << d.log();
    EXPECT_TRUE(all_delivered(json_report(right_name.output), 5, 1));

    // Another CA: already the ops port is refused, at once rather than after
    // the readiness wait, naming the port and the reason.
    private_ca stranger(dir_ / "stranger", "stranger");
    auto other_ca = loadgen(d, "--tls-ca-file " + stranger.ca_file() + " --connections 5 --broadcasts 1");
    EXPECT_NE(other_ca.exit_code, 0) << other_ca.output;
    EXPECT_NE(other_ca.output.find("TLS handshake with the ops port 127.0.0.1:" + std::to_string(d.ops_port) +
                                   " refused: certificate verify failed"),
              std::string::npos)
        << other_ca.output;

    // heraldd saw the subscribers walk away during the handshake (their alerts).
    EXPECT_GE(metric_value(d.metrics(), "herald_tls_handshake_failures_total", "port=\"client\""), 5);
}

TEST_F(LoadgenTest, ReadsEveryRecordOpenSslAlreadyHolds) {
    const auto cert = ca_->server("peer", "peer.test");
    split_record_server peer_server(cert, 4);
    ASSERT_TRUE(peer_server.ok());
    // A broken reader waits for epoll, which never fires again: the round
    // times out (5 s) with frames half read, and the run fails.
    auto r = run_command(
        "timeout 120 " + bin_dir() + "/herald-loadgen --port " + std::to_string(peer_server.sub_port) +
        " --path /sub --trigger http-post:127.0.0.1:" + std::to_string(peer_server.pub_port) +
        "/pub --server-name none --tls-ca-file " + ca_->ca_file() +
        " --connections 4 --broadcasts 2 --burst 2 --idle-samples 0 --release-delay-ms 0 "
        "--timeout-s 5 --json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(all_delivered(json_report(r.output), 4, 2));
    EXPECT_EQ(peer_server.published.load(), 6);  // a warm-up round and two rounds, two messages each
}

TEST_F(LoadgenTest, PlaintextIsMeasuredAsBefore) {
    daemon d;
    auto plain = loadgen(d, "--connections 20 --broadcasts 2 --burst 3");
    ASSERT_EQ(plain.exit_code, 0) << plain.output << d.log();
    const std::string json = json_report(plain.output);
    EXPECT_NE(json.find("\"tls\":\"\","), std::string::npos) << json;
    EXPECT_TRUE(all_delivered(json, 20, 2));
    // A CA file that cannot be read stops the run naming the option.
    auto bad = loadgen(d, "--tls-ca-file " + (dir_ / "missing.pem").string() + " --connections 1");
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.output.find("--tls-ca-file: cannot load"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace herald::testing
