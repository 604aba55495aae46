// The herald CLI over TLS: https:// (ops API calls, SSE) and wss:// (live
// WebSocket) connect with TLS, verify the certificate against the system's
// CAs plus --ca-file and the host name, and never fall back to plaintext.
//
// heraldd does not serve TLS yet, so the server is tests/support/tls_origin.py
// (Python's ssl module) with certificates from a CA made at test time
// (support/test_ca.h). Each refusal is shown by the exit code, a message that
// names the host and the reason, and the server's record: a refused client
// sent no request, so its API key or token never left it.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/daemon.h"
#include "support/test_ca.h"

namespace herald::testing {
namespace {

/// tests/support/tls_origin.py on a free loopback port, TLS with the given
/// certificate or (empty cert) plaintext; its requests recorded to a file.
class tls_origin {
  public:
    tls_origin(const std::string& dir, const std::string& name, const test_ca::issued& cert) {
        record_ = dir + "/" + name + ".requests";
        int out[2];
        if (::pipe(out) != 0)
            return;
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        std::vector<std::string> argv_s{
            "/usr/bin/env", "python3", std::string(HERALD_SOURCE_DIR) + "/tests/support/tls_origin.py",
            "--port",       "0",       "--record",
            record_};
        if (cert.cert.empty()) {
            argv_s.emplace_back("--plain");
        } else {
            argv_s.insert(argv_s.end(), {"--cert", cert.cert, "--key", cert.key});
        }
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0)
            pid_ = -1;
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        // First line: "tls-origin listening on 127.0.0.1:PORT".
        std::string line;
        char c = 0;
        while (line.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) line += c;
        ::close(out[0]);
        if (const auto colon = line.rfind(':'); colon != std::string::npos)
            port = std::to_string(std::stoi(line.substr(colon + 1)));
    }
    ~tls_origin() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    tls_origin(const tls_origin&) = delete;
    tls_origin& operator=(const tls_origin&) = delete;

    /// "METHOD PATH" lines of every request that reached the server.
    [[nodiscard]] std::string requests() const {
        std::ifstream in(record_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    std::string port;  // "" if it did not start

  private:
    std::string record_;
    pid_t pid_ = -1;
};

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

/// The CLI with an API key from the environment (never argv), no CA from
/// the caller's environment, and a bound on its run time.
run_result cli(const std::string& args) {
    return run_command(
        "env -u HERALD_CA_FILE -u HERALD_OPS_URL -u HERALD_CLIENT_URL HERALD_API_KEY=herald_test "
        "HERALD_DATA_DIR=/nonexistent timeout 60 " +
        bin_dir() + "/herald " + args);
}

class CliTls : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(ca.ok()) << ca.error;
        valid = ca.issue("valid", "IP:127.0.0.1,DNS:localhost");
        expired = ca.issue("expired", "IP:127.0.0.1,DNS:localhost", -1);
        wrong_host = ca.issue("wrong-host", "DNS:wrong.example.invalid");
        ASSERT_FALSE(valid.cert.empty() || expired.cert.empty() || wrong_host.cert.empty()) << ca.error;
    }

    test_ca ca;
    test_ca::issued valid;
    test_ca::issued expired;
    test_ca::issued wrong_host;
};

TEST_F(CliTls, AValidCertificateFromTheCaFileIsAcceptedForHttpsAndWss) {
    tls_origin server(ca.dir, "valid", valid);
    ASSERT_FALSE(server.port.empty());
    const std::string ops = "https://127.0.0.1:" + server.port;

    // An ops API call over https.
    auto r = cli("status --ops " + ops + " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "heraldd tls-origin")) << r.output;
    // By name too (the certificate's DNS entry), with the CA from the environment.
    r = run_command("HERALD_CA_FILE=" + ca.ca_file + " HERALD_API_KEY=herald_test timeout 60 " + bin_dir() +
                    "/herald status --ops https://localhost:" + server.port);
    EXPECT_EQ(r.exit_code, 0) << r.output;

    // Live frames over wss:// and over https:// SSE.
    r = cli("listen --audience a --count 1 --timeout 20s --client wss://127.0.0.1:" + server.port +
            " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, R"({"via":"ws","text":"over TLS"})")) << r.output;
    EXPECT_TRUE(contains(r.output, "listening on wss://127.0.0.1:" + server.port)) << r.output;
    r = cli("listen --audience a --count 1 --timeout 20s --sse --client https://127.0.0.1:" + server.port +
            " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, R"({"via":"sse","text":"over TLS"})")) << r.output;

    // Without --client the live port is learnt from an https ops API: wss, not ws.
    r = cli("listen --audience a --count 1 --timeout 20s --ops " + ops + " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "listening on wss://")) << r.output;
    EXPECT_TRUE(contains(r.output, R"({"via":"ws","text":"over TLS"})")) << r.output;

    const std::string seen = server.requests();
    EXPECT_TRUE(contains(seen, "GET /v1/info")) << seen;
    EXPECT_TRUE(contains(seen, "GET /v1/ws")) << seen;
    EXPECT_TRUE(contains(seen, "GET /v1/sse")) << seen;
}

TEST_F(CliTls, AnExpiredCertificateIsRefused) {
    tls_origin server(ca.dir, "expired", expired);
    ASSERT_FALSE(server.port.empty());
    auto r = cli("status --ops https://127.0.0.1:" + server.port + " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "127.0.0.1:" + server.port)) << r.output;
    EXPECT_TRUE(contains(r.output, "expired")) << r.output;
    r = cli("listen --audience a --count 1 --timeout 20s --client wss://127.0.0.1:" + server.port +
            " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "expired")) << r.output;
    EXPECT_EQ(server.requests(), "");  // neither the API key nor the token was sent
}

TEST_F(CliTls, ACertificateForAnotherHostIsRefused) {
    tls_origin server(ca.dir, "wrong-host", wrong_host);
    ASSERT_FALSE(server.port.empty());
    auto r = cli("status --ops https://127.0.0.1:" + server.port + " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "not valid for the address 127.0.0.1")) << r.output;
    r = cli("listen --audience a --count 1 --timeout 20s --sse --client https://localhost:" + server.port +
            " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "not valid for the host localhost")) << r.output;
    r = cli("listen --audience a --count 1 --timeout 20s --client wss://localhost:" + server.port +
            " --ca-file " + ca.ca_file);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "not valid for the host localhost")) << r.output;
    EXPECT_EQ(server.requests(), "");
}

TEST_F(CliTls, AnUnknownCaIsRefusedWithoutCaFile) {
    tls_origin server(ca.dir, "valid", valid);
    ASSERT_FALSE(server.port.empty());
    auto r = cli("status --ops https://127.0.0.1:" + server.port);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "127.0.0.1:" + server.port)) << r.output;
    EXPECT_TRUE(contains(r.output, "unknown CA")) << r.output;
    r = cli("subscription someone --ops https://127.0.0.1:" + server.port);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "unknown CA")) << r.output;
    r = cli("listen --audience a --count 1 --timeout 20s --client wss://127.0.0.1:" + server.port);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "unknown CA")) << r.output;
    EXPECT_EQ(server.requests(), "");
}

TEST_F(CliTls, TlsToAPlaintextPortFailsAndNothingIsSentInPlaintext) {
    tls_origin server(ca.dir, "plain", test_ca::issued{});
    ASSERT_FALSE(server.port.empty());
    auto r = cli("listen --audience a --count 1 --timeout 20s --client wss://127.0.0.1:" + server.port);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "does not speak TLS")) << r.output;
    r = cli("listen --audience a --count 1 --timeout 20s --sse --client https://127.0.0.1:" + server.port);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "does not speak TLS")) << r.output;
    r = cli("status --ops https://127.0.0.1:" + server.port);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "does not speak TLS")) << r.output;
    EXPECT_EQ(server.requests(), "");  // no request line reached it: no downgrade
    // The same server is fine when plaintext is what was asked for.
    r = cli("status --ops http://127.0.0.1:" + server.port);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(server.requests(), "GET /v1/info"));
}

TEST(CliTlsUsage, UnknownSchemesAndAnUnreadableCaFileAreUsageErrors) {
    for (const char* args :
         {"status --ops htps://127.0.0.1:1", "status --ops ws://127.0.0.1:1", "status --ops 127.0.0.1:1",
          "listen --audience a --client ftp://127.0.0.1:1", "listen --audience a --client wsss://127.0.0.1:1",
          "status --ops https://127.0.0.1:1 --ca-file /nonexistent/ca.pem"}) {
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    }
    const auto r = cli("status --ops https://127.0.0.1:1 --ca-file /nonexistent/ca.pem");
    EXPECT_TRUE(contains(r.output, "--ca-file")) << r.output;
}

}  // namespace
}  // namespace herald::testing
