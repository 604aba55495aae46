// Starts the real heraldd binary for integration tests: ports 0 (hermetic),
// the embedded Kafka, a private data dir; reads the "heraldd listening" line
// from its stdout to learn the ports and bootstrap address; stderr goes to a
// log file that is printed if the test fails. Also a plain HTTP GET and a
// process runner for the herald CLI and kcat.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/peer.h"

extern char** environ;

namespace herald::testing {

inline std::string bin_dir() {
    return HERALD_BIN_DIR;
}

struct http_reply {
    int status = 0;
    std::string body;
    std::string head;  // status line and headers
};

/// The admin key of the daemon serving ops port `port` (filled in by
/// `daemon` once it started): http_call sends it unless told otherwise, so
/// tests that are not about access control read like before it existed.
inline std::map<std::uint16_t, std::string>& ops_keys() {
    static std::map<std::uint16_t, std::string> keys;
    return keys;
}

/// How http_call reaches ops port `port` when it speaks TLS (set by tests
/// that start heraldd with a certificate; absent: plaintext).
inline std::map<std::uint16_t, peer::tls_options>& ops_tls() {
    static std::map<std::uint16_t, peer::tls_options> tls;
    return tls;
}

/// Which credential a call presents: the daemon's admin key, none, or this one.
struct as {
    static std::optional<std::string> admin() { return std::nullopt; }
    static std::optional<std::string> nobody() { return std::string(); }
    static std::optional<std::string> key(std::string k) { return k; }
};

/// One HTTP/1.1 request with a body (POST/DELETE/...) and Connection: close.
inline std::optional<http_reply> http_call(std::uint16_t port, const std::string& method,
                                           const std::string& path, const std::string& body = {},
                                           const std::string& content_type = "application/json",
                                           int timeout_ms = 30000,
                                           const std::optional<std::string>& key = as::admin()) {
    peer p(connect_tcp("127.0.0.1", port));
    if (!p.valid())
        return std::nullopt;
    if (const auto tls = ops_tls().find(port); tls != ops_tls().end() && !p.start_tls(tls->second).empty())
        return std::nullopt;
    std::string credential;
    if (key)
        credential = *key;
    else if (const auto it = ops_keys().find(port); it != ops_keys().end())
        credential = it->second;
    const std::string authorization =
        credential.empty() ? std::string() : "Authorization: Bearer " + credential + "\r\n";
    if (!p.send_all(method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                    authorization + "Content-Type: " + content_type +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body))
        return std::nullopt;
    while (p.fill(timeout_ms)) {
    }
    const std::string& raw = p.buffer();
    if (raw.rfind("HTTP/1.1 ", 0) != 0)
        return std::nullopt;
    http_reply r;
    r.status = std::stoi(raw.substr(9, 3));
    const auto at = raw.find("\r\n\r\n");
    if (at != std::string::npos) {
        r.body = raw.substr(at + 4);
        r.head = raw.substr(0, at);
    }
    return r;
}

/// One HTTP/1.1 GET with Connection: close.
inline std::optional<http_reply> http_get(std::uint16_t port, const std::string& path, int timeout_ms = 5000,
                                          const std::optional<std::string>& key = as::admin()) {
    return http_call(port, "GET", path, {}, "text/plain", timeout_ms, key);
}

/// Runs a command to completion; returns exit status and stdout+stderr.
struct run_result {
    int exit_code = -1;
    std::string output;
};
inline run_result run_command(const std::string& cmd) {
    run_result r;
    FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
    if (f == nullptr)
        return r;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) r.output.append(buf, n);
    const int status = ::pclose(f);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

/// Sum of every sample of `name` (any labels) whose label set contains `label_filter`.
inline double metric_value(const std::string& text, const std::string& name,
                           const std::string& label_filter = "") {
    double sum = 0;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        if (line.rfind(name, 0) != 0)
            continue;
        const char next = line.size() > name.size() ? line[name.size()] : ' ';
        if (next != '{' && next != ' ')
            continue;
        if (!label_filter.empty() && line.find(label_filter) == std::string::npos)
            continue;
        sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
}

class daemon {
  public:
    /// Starts heraldd with `args` (ports default to 0) and waits for /readyz.
    explicit daemon(std::vector<std::string> args = {}, bool wait_ready = true) {
        start(std::move(args), wait_ready);
    }
    ~daemon() {
        kill_hard();
        if (!data_dir_.empty())
            std::filesystem::remove_all(data_dir_);
    }
    daemon(const daemon&) = delete;
    daemon& operator=(const daemon&) = delete;

    void start(std::vector<std::string> args, bool wait_ready = true) {
        const auto has = [&](const std::string& flag) {
            for (const auto& a : args) {
                if (a == flag || a.rfind(flag + "=", 0) == 0)
                    return true;
            }
            return false;
        };
        if (!has("--client-port"))
            args.insert(args.end(), {"--client-port", "0"});
        if (!has("--ops-port"))
            args.insert(args.end(), {"--ops-port", "0"});
        if (!has("--client-host"))
            args.insert(args.end(), {"--client-host", "127.0.0.1"});
        if (!has("--ops-host"))
            args.insert(args.end(), {"--ops-host", "127.0.0.1"});
        if (!has("--shards"))
            args.insert(args.end(), {"--shards", "2"});
        // Every gateway stand-in and sink of the tests listens on loopback,
        // which outbound delivery refuses by default (SSRF guard).
        if (!has("--outbound-allowed-networks"))
            args.insert(args.end(), {"--outbound-allowed-networks", "127.0.0.0/8,::1/128"});
        // ... and speaks plain http://, which heraldd refuses by default; the
        // tests of that refusal pass --allow-insecure-webhooks off.
        if (!has("--allow-insecure-webhooks"))
            args.insert(args.end(), {"--allow-insecure-webhooks", "on"});
        if (!has("--data-dir")) {
            if (data_dir_.empty()) {
                char tmpl[] = "/tmp/heraldd-test-data-XXXXXX";
                ASSERT_NE(::mkdtemp(tmpl), nullptr);
                data_dir_ = tmpl;
            }
            args.insert(args.end(), {"--data-dir", data_dir_});
        }
        for (std::size_t i = 0; i + 1 < args.size(); ++i) {
            if (args[i] == "--data-dir")
                effective_data_dir_ = args[i + 1];
        }
        args_ = args;
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        log_path_ = "/tmp/heraldd-test-" + std::to_string(::getpid()) + "-" +
                    (info ? std::string(info->name()) : std::string("x")) + ".log";
        int out[2];
        ASSERT_EQ(::pipe(out), 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path_.c_str(),
                                         O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        std::vector<std::string> argv_s{bin_dir() + "/heraldd"};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);
        ASSERT_EQ(::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        stdout_ = peer(out[0]);
        auto line = read_stdout_line(30000);
        ASSERT_TRUE(line.has_value()) << "heraldd did not report its ports\n" << log();
        parse_listening(*line);
        // The generated admin key (tests with --admin-keys-file have none).
        if (std::ifstream key_file(effective_data_dir_ + "/admin.key"); key_file) {
            std::getline(key_file, admin_key);
            ops_keys()[ops_port] = admin_key;
        }
        if (wait_ready) {
            ASSERT_TRUE(wait_until_ready(30000)) << "heraldd never became ready\n" << log();
        }
    }

    std::optional<std::string> read_stdout_line(int timeout_ms) {
        // peer::read_until uses recv(); a pipe needs read(): poll + read here.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            const auto nl = line_buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = line_buf_.substr(0, nl);
                line_buf_.erase(0, nl + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0)
                return std::nullopt;
            pollfd p{stdout_.fd(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0)
                return std::nullopt;
            char buf[1024];
            const ssize_t n = ::read(stdout_.fd(), buf, sizeof buf);
            if (n <= 0)
                return std::nullopt;
            line_buf_.append(buf, static_cast<std::size_t>(n));
        }
    }

    bool wait_until_ready(int timeout_ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < deadline) {
            auto r = http_get(ops_port, "/readyz", 1000);
            if (r && r->status == 200)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }

    /// SIGTERM and wait; returns the exit code (or -1 on timeout / signal death).
    int terminate(int timeout_ms = 20000) { return stop(SIGTERM, timeout_ms); }

    int stop(int sig, int timeout_ms) {
        if (pid_ <= 0)
            return exit_code_;
        ::kill(pid_, sig);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                return exit_code_;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return -1;
    }

    void kill_hard() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    [[nodiscard]] std::string log() const {
        std::ifstream in(log_path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    [[nodiscard]] std::string metrics() const {
        auto r = http_get(ops_port, "/metrics");
        return r ? r->body : std::string();
    }

    /// Environment prefix that points the herald CLI at this daemon (and at
    /// its data directory, where the CLI finds the admin key like a user's would).
    [[nodiscard]] std::string cli_env() const {
        return "HERALD_OPS_URL=http://127.0.0.1:" + std::to_string(ops_port) +
               " HERALD_DATA_DIR=" + effective_data_dir_ + " ";
    }

    /// The data directory in use (the generated admin.key lives there).
    [[nodiscard]] const std::string& data_dir() const { return effective_data_dir_; }

    std::uint16_t client_port = 0;
    std::uint16_t ops_port = 0;
    std::string brokers;
    std::string admin_key;  // the generated one, "" with --admin-keys-file
    pid_t pid() const { return pid_; }

  private:
    void parse_listening(const std::string& line) {
        // heraldd listening client=127.0.0.1:PORT ops=127.0.0.1:PORT brokers=HOST:PORT
        const auto field = [&](const std::string& key) {
            const auto at = line.find(key + "=");
            if (at == std::string::npos)
                return std::string();
            const auto end = line.find(' ', at);
            return line.substr(at + key.size() + 1,
                               end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
        };
        const auto port_of = [](const std::string& hostport) {
            return static_cast<std::uint16_t>(std::stoi(hostport.substr(hostport.rfind(':') + 1)));
        };
        ASSERT_EQ(line.rfind("heraldd listening", 0), 0u) << line;
        client_port = port_of(field("client"));
        ops_port = port_of(field("ops"));
        brokers = field("brokers");
    }

    pid_t pid_ = -1;
    int exit_code_ = -1;
    peer stdout_;
    std::string line_buf_;
    std::string log_path_;
    std::string data_dir_;  // private data dir made for this daemon, removed with it
    std::string effective_data_dir_;
    std::vector<std::string> args_;
};

}  // namespace herald::testing
