// Access control and abuse limits against the real daemon, each rule with
// its refusal and its allowed path: ops API keys (generated admin.key, keys
// file with roles and tenants, SIGHUP reload, the CLI finding the key), live
// tokens (HS256 / RS256, expiry, nbf, alg none, algorithm confusion,
// audiences, public audiences, expiry on an open connection), tenant
// isolation of live clients, browser Origins, the outbound SSRF guard, ping
// floods, per-address connection caps and the ops body cap.
//
// Everything stays on loopback: the only outbound destination is the gateway
// stand-in on 127.0.0.1, and refused addresses are proved by refusals, never
// by sending anything elsewhere.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/daemon.h"
#include "support/kafka.h"
#include "support/standin.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

/// A private temporary directory, removed with everything in it.
class temp_dir {
  public:
    temp_dir() {
        char tmpl[] = "/tmp/herald-security-XXXXXX";
        if (::mkdtemp(tmpl) != nullptr)
            path = tmpl;
    }
    ~temp_dir() {
        if (!path.empty())
            std::filesystem::remove_all(path);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    [[nodiscard]] std::string file(const std::string& name) const { return path + "/" + name; }
    std::string path;
};

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string trimmed_last_line(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    std::string last;
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty())
            last = line;
    }
    return last;
}

std::int64_t now_s() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string herald_cli() {
    return bin_dir() + "/herald";
}

/// An ops API key made by `herald keys new` and the keys file line for it.
struct api_key {
    std::string key;
    std::string line;
};

api_key new_key(const temp_dir& dir, const std::string& name, const std::string& role,
                const std::string& tenant) {
    const std::string err = dir.file("keys-new-" + name + ".err");
    const auto r = run_command("(" + herald_cli() + " keys new " + name + " " + role + " '" + tenant +
                               "' 2>" + err + ")");
    EXPECT_EQ(r.exit_code, 0) << r.output << read_file(err);
    api_key k{trimmed_last_line(r.output), trimmed_last_line(read_file(err))};
    EXPECT_EQ(k.key.rfind("herald_", 0), 0u) << r.output;
    EXPECT_EQ(k.line.rfind(name + " " + role + " " + tenant + " sha256:", 0), 0u) << k.line;
    return k;
}

// --- JSON Web Tokens, minted independently of Herald ------------------------

constexpr const char* mint_script = R"PY(
import base64, hashlib, hmac, json, sys

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

alg, key_file, payload = sys.argv[1], sys.argv[2], sys.argv[3]
header = json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode()
signing_input = b64(header) + "." + b64(payload.encode())
if alg == "none":
    signature = ""
elif alg == "HS256":
    # Plain HMAC over whatever bytes the key file holds (a PEM public key too:
    # that is the algorithm-confusion attack, which PyJWT refuses to build).
    key = open(key_file, "rb").read()
    signature = b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())
elif alg == "RS256":
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    private_key = serialization.load_pem_private_key(open(key_file, "rb").read(), None)
    signature = b64(private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))
else:
    sys.exit("unknown alg " + alg)
print(signing_input + "." + signature)
)PY";

/// A compact JWS of `payload`, signed with `alg` and the key in `key_file`
/// (the HS256 secret, an RSA private key PEM, anything for "none").
std::string mint(const std::string& alg, const std::string& key_file, const std::string& payload) {
    static temp_dir dir;
    static const std::string script = [] {
        const std::string path = dir.file("mint.py");
        write_file(path, mint_script);
        return path;
    }();
    // Debian's python3 (python3-jwt / python3-cryptography), not whatever python3 is first in PATH.
    const auto r =
        run_command("/usr/bin/python3 " + script + " " + alg + " " + key_file + " '" + payload + "'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return trimmed_last_line(r.output);
}

/// Claims: exp, the granted audiences (a JSON list) and more fields (",\"k\":v...").
std::string claims(std::int64_t exp, const std::string& audiences, const std::string& more = "") {
    return R"({"sub":"fan-1","exp":)" + std::to_string(exp) + R"(,"audiences":)" + audiences + more + "}";
}

// --- live handshakes ---------------------------------------------------------

int status_of(const std::optional<std::string>& head) {
    if (!head || head->rfind("HTTP/1.1 ", 0) != 0 || head->size() < 12)
        return 0;
    return std::stoi(head->substr(9, 3));
}

/// A WebSocket upgrade with extra header lines ("Name: value\r\n...") and a Host of our choosing.
std::optional<std::string> ws_handshake(peer& p, const std::string& target,
                                        const std::string& extra_headers = "",
                                        const std::string& host = "127.0.0.1") {
    if (!p.valid())
        return std::nullopt;
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + host +
                            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                            extra_headers + "\r\n";
    if (!p.send_all(req))
        return std::nullopt;
    return p.read_until("\r\n\r\n", 10000);
}

/// The status of a fresh connection's WebSocket handshake (the connection is dropped).
int ws_status(std::uint16_t port, const std::string& target, const std::string& extra_headers = "",
              const std::string& host = "127.0.0.1") {
    peer p(connect_tcp("127.0.0.1", port));
    return status_of(ws_handshake(p, target, extra_headers, host));
}

/// The value of header `name` in a response head ("" when absent).
std::string header_value(const std::string& head, const std::string& name) {
    std::istringstream in(head);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        std::string key = line.substr(0, colon);
        for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (key == name) {
            std::string value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            return value;
        }
    }
    return {};
}

std::string announcement(const std::string& id, const std::string& audience, const std::string& tenant = "") {
    return R"({"id":")" + id + "\"" + (tenant.empty() ? "" : R"(,"tenant":")" + tenant + "\"") +
           R"(,"audience":")" + audience + R"(","text":"hello"})";
}

/// Polls /metrics until `name{filter}` reaches `at_least` (shards publish their tallies on a tick).
double wait_metric(const daemon& d, const std::string& name, const std::string& filter, double at_least,
                   int timeout_ms = 10000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    double v = 0;
    for (;;) {
        v = metric_value(d.metrics(), name, filter);
        if (v >= at_least || std::chrono::steady_clock::now() > deadline)
            return v;
        std::this_thread::sleep_for(200ms);
    }
}

std::string subscription(const std::string& id, const std::string& audience, const std::string& address,
                         const std::string& tenant = "") {
    return R"({"recipient_id":")" + id + "\"" + (tenant.empty() ? "" : R"(,"tenant":")" + tenant + "\"") +
           R"(,"audiences":[")" + audience + R"("],"channel":"webhook","address":")" + address +
           R"(","consent":{"given_at":"2026-06-01T10:00:00Z","source":"web-form"}})";
}

// --- 1. ops API keys -----------------------------------------------------------

TEST(Security, OpsApiNeedsAKeyAndTheGeneratedAdminKeyStaysPrivate) {
    daemon d({"--log-level", "debug"});
    ASSERT_FALSE(d.admin_key.empty()) << "no admin.key generated in " << d.data_dir();

    const auto anonymous = http_get(d.ops_port, "/v1/info", 5000, as::nobody());
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401) << anonymous->body;
    EXPECT_EQ(header_value(anonymous->head, "www-authenticate").rfind("Bearer", 0), 0u) << anonymous->head;
    EXPECT_FALSE(contains(anonymous->body, "bootstrap_servers")) << anonymous->body;

    const auto wrong = http_get(d.ops_port, "/v1/info", 5000, as::key("herald_not-the-key"));
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 401) << wrong->body;
    EXPECT_EQ(header_value(wrong->head, "www-authenticate").rfind("Bearer", 0), 0u) << wrong->head;
    // The right key with one character changed is just as wrong.
    std::string near = d.admin_key;
    near.back() = near.back() == 'A' ? 'B' : 'A';
    EXPECT_EQ(http_get(d.ops_port, "/v1/info", 5000, as::key(near))->status, 401);

    const auto admin = http_get(d.ops_port, "/v1/info", 5000, as::key(d.admin_key));
    ASSERT_TRUE(admin);
    EXPECT_EQ(admin->status, 200) << admin->body;
    EXPECT_TRUE(contains(admin->body, "bootstrap_servers")) << admin->body;
    // Other /v1/ routes are closed too.
    EXPECT_EQ(http_get(d.ops_port, "/v1/subscriptions/nobody", 5000, as::nobody())->status, 401);
    EXPECT_EQ(
        http_call(d.ops_port, "POST", "/v1/subscriptions", "{}\n", "application/x-ndjson", 5000, as::nobody())
            ->status,
        401);
    EXPECT_EQ(http_get(d.ops_port, "/v1/broadcasts/x", 5000, as::nobody())->status, 401);

    // Health and metrics stay open (Prometheus and load balancers carry no key by default).
    for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
        const auto r = http_get(d.ops_port, path, 5000, as::nobody());
        ASSERT_TRUE(r) << path;
        EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    }
    const std::string m = d.metrics();
    EXPECT_GE(metric_value(m, "herald_ops_auth_failures_total", "reason=\"missing_key\""), 4) << m;
    EXPECT_GE(metric_value(m, "herald_ops_auth_failures_total", "reason=\"wrong_key\""), 2) << m;

    // The key file is the owner's only; so is the data directory.
    struct stat st {};
    ASSERT_EQ(::stat((d.data_dir() + "/admin.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(d.data_dir().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    for (const auto& entry : std::filesystem::directory_iterator(d.data_dir())) {
        if (!entry.is_regular_file())
            continue;
        ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0077, 0u) << entry.path() << " is readable by others";
    }

    // The log names the file, never the key (nor a wrong one presented), even at debug level.
    EXPECT_EQ(d.terminate(), 0);
    const std::string log = d.log();
    EXPECT_TRUE(contains(log, "admin.key")) << log;
    EXPECT_FALSE(contains(log, d.admin_key)) << "the admin key appears in the log";
    EXPECT_FALSE(contains(log, "herald_not-the-key")) << "a presented key appears in the log";
}

TEST(Security, MetricsRequireKeyOnClosesMetricsAndHealthToo) {
    daemon d({"--metrics-require-key", "on"});  // (the helper waits for /readyz with the admin key)
    for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
        const auto anonymous = http_get(d.ops_port, path, 5000, as::nobody());
        ASSERT_TRUE(anonymous) << path;
        EXPECT_EQ(anonymous->status, 401) << path;
        EXPECT_EQ(header_value(anonymous->head, "www-authenticate").rfind("Bearer", 0), 0u)
            << anonymous->head;
        EXPECT_EQ(http_get(d.ops_port, path, 5000, as::key("herald_wrong"))->status, 401) << path;
        const auto keyed = http_get(d.ops_port, path, 5000, as::key(d.admin_key));
        ASSERT_TRUE(keyed) << path;
        EXPECT_EQ(keyed->status, 200) << path << ": " << keyed->body;
    }
}

TEST(Security, KeysFileRolesAndTenantsDecideWhatEachKeyMaySee) {
    temp_dir dir;
    const auto admin = new_key(dir, "ops-admin", "admin", "*");
    const auto viewer = new_key(dir, "viewer-a", "viewer", "festival-a");
    const auto pub_a = new_key(dir, "backend-a", "publisher", "festival-a");
    write_file(dir.file("keys"),
               "# ops keys\n" + admin.line + "\n\n" + viewer.line + "\n" + pub_a.line + "\n");
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    daemon d({"--admin-keys-file", dir.file("keys"), "--recipient-min-interval-ms", "0"});
    EXPECT_FALSE(std::filesystem::exists(d.data_dir() + "/admin.key"))
        << "a keys file needs no generated key";
    const auto call = [&](const api_key& k, const std::string& method, const std::string& path,
                          const std::string& body = {}) {
        auto r = http_call(d.ops_port, method, path, body, "application/x-ndjson", 30000, as::key(k.key));
        EXPECT_TRUE(r) << method << " " << path;
        return r.value_or(http_reply{});
    };
    EXPECT_EQ(http_get(d.ops_port, "/v1/info", 5000, as::nobody())->status, 401);
    EXPECT_EQ(
        http_get(d.ops_port, "/v1/info", 5000, as::key(admin.line.substr(admin.line.rfind(' ') + 1)))->status,
        401)
        << "the file's digest must not work as a key";

    // A viewer reads but may not write.
    EXPECT_EQ(call(viewer, "GET", "/v1/info").status, 200);
    const auto viewer_post =
        call(viewer, "POST", "/v1/subscriptions", subscription("v1", "club", gw.url("/webhook/v1")) + "\n");
    EXPECT_EQ(viewer_post.status, 403) << viewer_post.body;
    EXPECT_TRUE(contains(viewer_post.body, "viewer-a")) << viewer_post.body;
    EXPECT_EQ(call(viewer, "DELETE", "/v1/subscriptions/a1").status, 403);

    // A publisher of festival-a writes its own tenant's subscribers (by default).
    const auto posted =
        call(pub_a, "POST", "/v1/subscriptions", subscription("a1", "club", gw.url("/webhook/a1")) + "\n");
    EXPECT_EQ(posted.status, 200) << posted.body;
    const auto own = call(pub_a, "GET", "/v1/subscriptions/a1");
    EXPECT_EQ(own.status, 200) << own.body;
    EXPECT_TRUE(contains(own.body, "festival-a")) << own.body;
    EXPECT_EQ(call(viewer, "GET", "/v1/subscriptions/a1").status, 200);
    EXPECT_EQ(call(admin, "GET", "/v1/subscriptions/a1?tenant=festival-a").status, 200);
    EXPECT_EQ(call(admin, "GET", "/v1/subscriptions/a1").status, 404) << "a1 is not the default tenant's";

    // ... but not another tenant's: refused as if it did not exist.
    const auto b_posted = call(admin, "POST", "/v1/subscriptions",
                               subscription("b1", "club", gw.url("/webhook/b1"), "festival-b") + "\n");
    ASSERT_EQ(b_posted.status, 200) << b_posted.body;
    EXPECT_EQ(call(admin, "GET", "/v1/subscriptions/b1?tenant=festival-b").status, 200);
    const auto foreign = call(pub_a, "GET", "/v1/subscriptions/b1?tenant=festival-b");
    EXPECT_EQ(foreign.status, 404) << foreign.body;
    EXPECT_EQ(call(pub_a, "GET", "/v1/subscriptions/b1").status, 404);
    EXPECT_EQ(call(viewer, "GET", "/v1/subscriptions/b1?tenant=festival-b").status, 404);
    EXPECT_EQ(call(pub_a, "DELETE", "/v1/subscriptions/b1?tenant=festival-b").status, 404);
    EXPECT_EQ(call(admin, "GET", "/v1/subscriptions/b1?tenant=festival-b").status, 200) << "b1 was touched";
    const auto smuggled = call(pub_a, "POST", "/v1/subscriptions",
                               subscription("a2", "club", gw.url("/webhook/a2"), "festival-b") + "\n");
    EXPECT_EQ(smuggled.status, 422) << smuggled.body;
    EXPECT_TRUE(contains(smuggled.body, "tenant")) << smuggled.body;
    EXPECT_EQ(call(admin, "GET", "/v1/subscriptions/a2?tenant=festival-b").status, 404);

    // Broadcasts of another tenant are invisible too.
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "club", announcement("gates-b", "club", "festival-b")));
    int admin_status = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (admin_status != 200 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(200ms);
        admin_status = call(admin, "GET", "/v1/broadcasts/gates-b?tenant=festival-b").status;
    }
    ASSERT_EQ(admin_status, 200) << d.log();
    EXPECT_EQ(call(admin, "GET", "/v1/broadcasts/gates-b").status, 200);
    EXPECT_EQ(call(pub_a, "GET", "/v1/broadcasts/gates-b").status, 404);
    EXPECT_EQ(call(pub_a, "GET", "/v1/broadcasts/gates-b?tenant=festival-b").status, 404);
    EXPECT_EQ(call(viewer, "GET", "/v1/broadcasts/gates-b?tenant=festival-b").status, 404);
}

TEST(Security, AKeysFileThatDoesNotParseStopsStartUpNamingIt) {
    temp_dir dir;
    const auto good = new_key(dir, "ops-admin", "admin", "*");
    write_file(dir.file("keys"),
               good.line + "\nbackend-a superuser festival-a sha256:" + std::string(64, 'a') + "\n");
    const std::string common =
        " --client-port 0 --ops-port 0 --client-host 127.0.0.1 --ops-host 127.0.0.1"
        " --data-dir " +
        dir.file("data") + " --admin-keys-file ";
    auto r = run_command("timeout 60 " + bin_dir() + "/heraldd" + common + dir.file("keys"));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.exit_code, 124) << "heraldd did not stop";
    EXPECT_TRUE(contains(r.output, "admin_keys_file")) << r.output;
    EXPECT_TRUE(contains(r.output, dir.file("keys") + ":2")) << r.output;  // file and line
    EXPECT_TRUE(contains(r.output, "ROLE")) << r.output;                   // and field
    EXPECT_FALSE(contains(r.output, "heraldd listening")) << r.output;

    r = run_command("timeout 60 " + bin_dir() + "/heraldd" + common + dir.file("missing-keys"));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.exit_code, 124) << "heraldd did not stop";
    EXPECT_TRUE(contains(r.output, "admin_keys_file")) << r.output;
    EXPECT_TRUE(contains(r.output, dir.file("missing-keys"))) << r.output;
}

TEST(Security, SighupReloadsTheKeysFileAndKeepsTheOldKeysIfItBreaks) {
    temp_dir dir;
    const auto first = new_key(dir, "ops-first", "admin", "*");
    const auto leaving = new_key(dir, "ops-leaving", "viewer", "*");
    const auto joining = new_key(dir, "ops-joining", "viewer", "*");
    write_file(dir.file("keys"), first.line + "\n" + leaving.line + "\n");
    daemon d({"--admin-keys-file", dir.file("keys")});
    const auto info_status = [&](const api_key& k) {
        const auto r = http_get(d.ops_port, "/v1/info", 5000, as::key(k.key));
        return r ? r->status : 0;
    };
    EXPECT_EQ(info_status(first), 200);
    EXPECT_EQ(info_status(leaving), 200);
    EXPECT_EQ(info_status(joining), 401);

    // Rotation: the new line in, the old one out, SIGHUP.
    write_file(dir.file("keys"), first.line + "\n" + joining.line + "\n");
    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (info_status(joining) != 200 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    EXPECT_EQ(info_status(joining), 200) << d.log();
    EXPECT_EQ(info_status(leaving), 401);
    EXPECT_EQ(info_status(first), 200);

    // A file that no longer parses is logged and the keys in force stay.
    write_file(dir.file("keys"), "this is not a keys file\n");
    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    const auto logged = std::chrono::steady_clock::now() + 10s;
    while (!contains(d.log(), "keeping the current") && std::chrono::steady_clock::now() < logged)
        std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(contains(d.log(), "keeping the current")) << d.log();
    EXPECT_EQ(info_status(first), 200);
    EXPECT_EQ(info_status(joining), 200);
    EXPECT_EQ(info_status(leaving), 401);
    EXPECT_EQ(d.terminate(), 0) << "SIGHUP must not stop heraldd\n" << d.log();
}

// --- 2. the CLI ------------------------------------------------------------------

TEST(Security, CliFindsTheAdminKeyOrSaysWhyItGot401) {
    daemon d;
    temp_dir dir;
    const std::string ops = "HERALD_OPS_URL=http://127.0.0.1:" + std::to_string(d.ops_port) + " ";
    const std::string nowhere = ops + "HERALD_API_KEY= HERALD_DATA_DIR=" + dir.path + " ";

    // On the daemon's machine the CLI reads <data dir>/admin.key.
    auto r = run_command(d.cli_env() + "HERALD_API_KEY= " + herald_cli() + " status");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "heraldd")) << r.output;
    r = run_command(d.cli_env() + "HERALD_API_KEY= " + herald_cli() + " subscription nobody-here");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "unknown recipient")) << r.output;  // authenticated, then 404

    // Without a key: a clear 401 message, not a bare failure.
    r = run_command(nowhere + herald_cli() + " status");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "401")) << r.output;
    EXPECT_TRUE(contains(r.output, "API key")) << r.output;
    EXPECT_FALSE(contains(r.output, "shards:")) << r.output;
    r = run_command(nowhere + herald_cli() + " subscription nobody-here");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "API key")) << r.output;
    r = run_command(ops + "HERALD_API_KEY=herald_wrong HERALD_DATA_DIR=" + dir.path + " " + herald_cli() +
                    " status");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "401")) << r.output;

    // HERALD_API_KEY and --api-key-file work from anywhere.
    r = run_command(ops + "HERALD_API_KEY=" + d.admin_key + " HERALD_DATA_DIR=" + dir.path + " " +
                    herald_cli() + " status");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "ready:     yes")) << r.output;
    write_file(dir.file("ops.key"), d.admin_key + "\n");
    r = run_command(nowhere + herald_cli() + " status --api-key-file " + dir.file("ops.key"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = run_command(nowhere + herald_cli() + " subscription nobody-here --api-key-file " +
                    dir.file("ops.key"));
    EXPECT_TRUE(contains(r.output, "unknown recipient")) << r.output;
    r = run_command(nowhere + herald_cli() + " status --api-key-file " + dir.file("no-such.key"));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "api-key-file")) << r.output;
}

// --- 3. live tokens ----------------------------------------------------------------

TEST(Security, LiveTokensDecideWhoMayListenToWhat) {
    temp_dir dir;
    const std::string secret = dir.file("jwt.secret");
    write_file(secret, "0123456789abcdef0123456789abcdef-festival-secret");
    write_file(dir.file("other.secret"), "another-secret-of-at-least-32-bytes-000000");
    daemon d({"--jwt-hs256-secret-file", secret, "--public-audiences", "public.*"});
    const std::uint16_t port = d.client_port;
    const std::int64_t exp = now_s() + 3600;

    // A token from `herald token`, granting lineup.*.
    const auto minted = run_command(herald_cli() + " token --secret-file " + secret +
                                    " --audience 'lineup.*' --tenant default --ttl 1h");
    ASSERT_EQ(minted.exit_code, 0) << minted.output;
    const std::string lineup = trimmed_last_line(minted.output);
    peer by_query(connect_tcp("127.0.0.1", port));
    EXPECT_EQ(status_of(ws_handshake(by_query, "/v1/ws?audience=lineup.x&token=" + lineup)), 101);
    // The same token in Authorization: Bearer; and on SSE.
    peer by_header(connect_tcp("127.0.0.1", port));
    EXPECT_EQ(status_of(ws_handshake(by_header, "/v1/ws?audience=lineup.x",
                                     "Authorization: Bearer " + lineup + "\r\n")),
              101);
    peer sse(connect_tcp("127.0.0.1", port));
    EXPECT_EQ(status_of(sse.sse_handshake("/v1/sse?audience=lineup.x&token=" + lineup)), 200);
    // The wildcard grants every lineup.* audience at once.
    peer several(connect_tcp("127.0.0.1", port));
    EXPECT_EQ(status_of(ws_handshake(several, "/v1/ws?audience=lineup.y&audience=lineup.x&token=" + lineup)),
              101);
    // Public audiences need no token.
    peer public_news(connect_tcp("127.0.0.1", port));
    EXPECT_EQ(status_of(ws_handshake(public_news, "/v1/ws?audience=public.news")), 101);

    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "lineup.x", announcement("tok-1", "lineup.x")));
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "public.news", announcement("pub-1", "public.news")));
    for (peer* p : {&by_query, &by_header, &several}) {
        const auto f = p->read_data_frame(15000);
        ASSERT_TRUE(f) << d.log();
        EXPECT_TRUE(contains(f->payload, "\"id\":\"tok-1\"")) << f->payload;
    }
    const auto event = sse.read_sse_event(15000);
    ASSERT_TRUE(event);
    EXPECT_TRUE(contains(*event, "tok-1")) << *event;
    const auto news = public_news.read_data_frame(15000);
    ASSERT_TRUE(news);
    EXPECT_TRUE(contains(news->payload, "\"id\":\"pub-1\"")) << news->payload;

    // Refusals, each before the upgrade.
    const auto ws = [&](const std::string& query) { return ws_status(port, "/v1/ws?" + query); };
    EXPECT_EQ(ws("audience=lineup.x"), 401) << "no token";
    EXPECT_EQ(ws("audience=public.news&audience=lineup.x"), 401)
        << "a public audience does not open the others";
    EXPECT_EQ(
        ws("audience=lineup.x&token=" + mint("HS256", secret, claims(now_s() - 120, R"(["lineup.*"])"))), 401)
        << "expired";
    EXPECT_EQ(ws("audience=lineup.x&token=" +
                 mint("HS256", secret,
                      claims(exp, R"(["lineup.*"])", ",\"nbf\":" + std::to_string(now_s() + 600)))),
              401)
        << "not valid yet";
    EXPECT_EQ(ws("audience=lineup.x&token=" +
                 mint("HS256", dir.file("other.secret"), claims(exp, R"(["lineup.*"])"))),
              401)
        << "bad signature";
    EXPECT_EQ(ws("audience=lineup.x&token=" + mint("none", secret, claims(exp, R"(["lineup.*"])"))), 401)
        << "alg none";
    EXPECT_EQ(ws("audience=lineup.x&token=" + mint("HS256", secret, R"({"audiences":["lineup.*"]})")), 401)
        << "no exp";
    EXPECT_EQ(ws("audience=lineup.x&token=not.a-token"), 401) << "garbage";
    peer tampered(connect_tcp("127.0.0.1", port));
    std::string changed = lineup;
    changed[changed.find('.') + 3] = changed[changed.find('.') + 3] == 'A' ? 'B' : 'A';
    EXPECT_EQ(status_of(ws_handshake(tampered, "/v1/ws?audience=lineup.x&token=" + changed)), 401)
        << "tampered";
    EXPECT_EQ(ws("audience=headliner.x&token=" + lineup), 403) << "audience not granted";
    EXPECT_EQ(ws("audience=lineup.x&audience=backstage&token=" + lineup), 403) << "one audience not granted";
    const std::string exact = mint("HS256", secret, claims(exp, R"(["lineup.x"])"));
    EXPECT_EQ(ws("audience=lineup.x&token=" + exact), 101) << "an exact grant";
    EXPECT_EQ(ws("audience=lineup.xy&token=" + exact), 403) << "an exact grant is not a prefix";
    // A token fixes the tenant: ?tenant= may not contradict it.
    const std::string tenant_a =
        mint("HS256", secret, claims(exp, R"(["lineup.*"])", R"(,"tenant":"festival-a")"));
    EXPECT_EQ(ws("audience=lineup.x&token=" + tenant_a), 101);
    EXPECT_EQ(ws("audience=lineup.x&tenant=festival-b&token=" + tenant_a), 403);
    // SSE is refused the same way.
    peer sse_refused(connect_tcp("127.0.0.1", port));
    EXPECT_EQ(status_of(sse_refused.sse_handshake("/v1/sse?audience=lineup.x")), 401);

    // Counted by reason (shards publish their tallies on a tick).
    EXPECT_GE(wait_metric(d, "herald_connections_closed_total", "reason=\"unauthorized\"", 10), 10);
    EXPECT_GE(wait_metric(d, "herald_connections_closed_total", "reason=\"forbidden\"", 4), 4);
    EXPECT_FALSE(contains(d.log(), lineup)) << "a token appears in the log";
}

TEST(Security, Rs256KeyAcceptsItsTokensAndRefusesAlgorithmConfusion) {
    temp_dir dir;
    auto r = run_command("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " +
                         dir.file("private.pem") + " && openssl pkey -in " + dir.file("private.pem") +
                         " -pubout -out " + dir.file("public.pem"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    run_command("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " +
                dir.file("stranger.pem"));
    daemon d({"--jwt-public-key-file", dir.file("public.pem")});
    const std::int64_t exp = now_s() + 3600;
    const std::string grant = claims(exp, R"(["lineup.*"])");
    const auto ws = [&](const std::string& token) {
        return ws_status(d.client_port, "/v1/ws?audience=lineup.x&token=" + token);
    };
    EXPECT_EQ(ws(mint("RS256", dir.file("private.pem"), grant)), 101);
    EXPECT_EQ(ws(mint("RS256", dir.file("stranger.pem"), grant)), 401) << "signed by another key";
    EXPECT_EQ(ws(mint("HS256", dir.file("public.pem"), grant)), 401) << "HS256 with the public key as secret";
    EXPECT_EQ(ws(mint("none", dir.file("public.pem"), grant)), 401) << "alg none";
    EXPECT_EQ(ws(mint("RS256", dir.file("private.pem"), claims(now_s() - 120, R"(["lineup.*"])"))), 401)
        << "expired";
    EXPECT_EQ(ws_status(d.client_port, "/v1/ws?audience=lineup.x"), 401) << "no token";
}

TEST(Security, ATokenExpiringOnAnOpenConnectionClosesIt) {
    temp_dir dir;
    const std::string secret = dir.file("jwt.secret");
    write_file(secret, "0123456789abcdef0123456789abcdef-festival-secret");
    daemon d({"--jwt-hs256-secret-file", secret});
    // exp only a few seconds ahead: accepted (30 s leeway at the handshake),
    // but the open connection ends at exp itself.
    const std::string soon = mint("HS256", secret, claims(now_s() + 3, R"(["lineup.*"])"));
    const std::string later = mint("HS256", secret, claims(now_s() + 3600, R"(["lineup.*"])"));
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_EQ(status_of(ws_handshake(ws, "/v1/ws?audience=lineup.x&token=" + soon)), 101);
    peer sse(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_EQ(status_of(sse.sse_handshake("/v1/sse?audience=lineup.x&token=" + soon)), 200);
    peer steady(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_EQ(status_of(ws_handshake(steady, "/v1/ws?audience=lineup.x&token=" + later)), 101);

    const auto started = std::chrono::steady_clock::now();
    std::optional<ws_frame> close;
    while (std::chrono::steady_clock::now() - started < 15s) {
        close = ws.read_data_frame(1000);
        if (close && close->opcode == 0x8)
            break;
    }
    ASSERT_TRUE(close && close->opcode == 0x8) << "no close frame after the token expired\n" << d.log();
    EXPECT_EQ(close->close_code(), 1008);
    EXPECT_EQ(close->payload.substr(2), "token expired");
    EXPECT_TRUE(sse.wait_eof(10000)) << "the SSE stream did not end when its token expired";

    // The connection with a valid token is untouched.
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "lineup.x", announcement("after-exp", "lineup.x")));
    const auto f = steady.read_data_frame(15000);
    ASSERT_TRUE(f) << d.log();
    EXPECT_TRUE(contains(f->payload, "after-exp")) << f->payload;
    EXPECT_GE(wait_metric(d, "herald_connections_closed_total", "reason=\"token_expired\"", 2), 2);
}

// --- 4. tenants on live connections ------------------------------------------------

TEST(Security, LiveClientsHearOnlyTheirTenantsAnnouncements) {
    daemon d;  // no JWT key: every audience is public and ?tenant= names the tenant
    peer a(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_EQ(status_of(ws_handshake(a, "/v1/ws?audience=club&tenant=festival-a")), 101);
    peer b(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_EQ(status_of(ws_handshake(b, "/v1/ws?audience=club&tenant=festival-b")), 101);
    peer plain(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_EQ(status_of(ws_handshake(plain, "/v1/ws?audience=club")), 101);
    peer sse_a(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_EQ(status_of(sse_a.sse_handshake("/v1/sse?audience=club&tenant=festival-a")), 200);
    EXPECT_EQ(ws_status(d.client_port, "/v1/ws?audience=club&tenant=Festival%20A!"), 400);

    kafka_producer producer(d.brokers);
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "club", announcement("for-a", "club", "festival-a")));
    auto f = a.read_data_frame(15000);
    ASSERT_TRUE(f) << d.log();
    EXPECT_TRUE(contains(f->payload, "for-a")) << f->payload;
    auto event = sse_a.read_sse_event(15000);
    ASSERT_TRUE(event);
    EXPECT_TRUE(contains(*event, "for-a")) << *event;
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", "club", announcement("for-b", "club", "festival-b")));
    ASSERT_TRUE(producer.produce_json("herald.announcements", "club", announcement("for-default", "club")));
    f = b.read_data_frame(15000);
    ASSERT_TRUE(f);
    EXPECT_TRUE(contains(f->payload, "for-b")) << f->payload;
    f = plain.read_data_frame(15000);
    ASSERT_TRUE(f);
    EXPECT_TRUE(contains(f->payload, "for-default")) << f->payload << " (the default tenant heard another's)";
    // Nothing else arrives anywhere.
    std::this_thread::sleep_for(1s);
    for (peer* p : {&a, &b, &plain}) {
        const auto extra = p->read_data_frame(500);
        EXPECT_FALSE(extra) << "unexpected frame: " << (extra ? extra->payload : "");
    }
    const auto extra_event = sse_a.read_sse_event(500);
    EXPECT_FALSE(extra_event) << *extra_event;
}

// --- 5. browser origins -----------------------------------------------------------

TEST(Security, BrowserOriginsAreCheckedAndEchoedNeverAsAStar) {
    {
        daemon d;  // no --allowed-origins: same-host pages only
        const std::string host = "127.0.0.1:" + std::to_string(d.client_port);
        const std::string target = "/v1/ws?audience=news";
        EXPECT_EQ(ws_status(d.client_port, target, "Origin: http://evil.example\r\n", host), 403);
        EXPECT_EQ(ws_status(d.client_port, target, "Origin: null\r\n", host), 403);
        EXPECT_EQ(ws_status(d.client_port, target, "Origin: http://" + host + "\r\n", host), 101);
        EXPECT_EQ(ws_status(d.client_port, target, "", host), 101) << "no Origin: not a browser";

        peer same(connect_tcp("127.0.0.1", d.client_port));
        const auto head = same.sse_handshake("/v1/sse?audience=news", "Origin: http://127.0.0.1:8000\r\n");
        ASSERT_EQ(status_of(head), 200) << head.value_or("");
        EXPECT_EQ(header_value(*head, "access-control-allow-origin"), "http://127.0.0.1:8000") << *head;
        peer evil(connect_tcp("127.0.0.1", d.client_port));
        const auto refused = evil.sse_handshake("/v1/sse?audience=news", "Origin: http://evil.example\r\n");
        EXPECT_EQ(status_of(refused), 403) << refused.value_or("");
        EXPECT_EQ(header_value(refused.value_or(""), "access-control-allow-origin"), "");
        EXPECT_GE(wait_metric(d, "herald_connections_closed_total", "reason=\"forbidden\"", 3), 3);
    }
    {
        daemon d({"--allowed-origins", "http://app.example"});
        const std::string host = "127.0.0.1:" + std::to_string(d.client_port);
        const std::string target = "/v1/ws?audience=news";
        EXPECT_EQ(ws_status(d.client_port, target, "Origin: http://app.example\r\n", host), 101);
        EXPECT_EQ(ws_status(d.client_port, target, "Origin: http://" + host + "\r\n", host), 403)
            << "with a list, same-host is not implied";
        EXPECT_EQ(ws_status(d.client_port, target, "Origin: http://app.example.evil.example\r\n", host), 403);
        EXPECT_EQ(ws_status(d.client_port, target, "Origin: https://app.example\r\n", host), 403);

        peer app(connect_tcp("127.0.0.1", d.client_port));
        const auto head = app.sse_handshake("/v1/sse?audience=news", "Origin: http://app.example\r\n");
        ASSERT_EQ(status_of(head), 200) << head.value_or("");
        EXPECT_EQ(header_value(*head, "access-control-allow-origin"), "http://app.example") << *head;
        EXPECT_FALSE(contains(*head, "Access-Control-Allow-Origin: *")) << *head;
        peer other(connect_tcp("127.0.0.1", d.client_port));
        const auto refused = other.sse_handshake("/v1/sse?audience=news", "Origin: http://" + host + "\r\n");
        EXPECT_EQ(status_of(refused), 403) << refused.value_or("");
    }
}

// --- 6. outbound SSRF guard ----------------------------------------------------------

google::protobuf::Struct parse_json(const std::string& json) {
    google::protobuf::Struct s;
    (void)google::protobuf::util::JsonStringToMessage(json, &s);
    return s;
}

double number_field(const google::protobuf::Struct& s, const std::string& key) {
    const auto it = s.fields().find(key);
    return it == s.fields().end() ? -1 : it->second.number_value();
}

/// Polls GET /v1/broadcasts/{id} until it is done; returns the last answer.
google::protobuf::Struct wait_broadcast_done(const daemon& d, const std::string& id, int timeout_s) {
    google::protobuf::Struct last;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto r = http_get(d.ops_port, "/v1/broadcasts/" + id, 5000, as::key(d.admin_key));
            r && r->status == 200) {
            last = parse_json(r->body);
            const auto state = last.fields().find("state");
            if (state != last.fields().end() && state->second.string_value() == "done")
                return last;
        }
        std::this_thread::sleep_for(200ms);
    }
    return last;
}

double standin_requests(const gateway_standin& gw) {
    return number_field(gw.get_json("/_standin/stats"), "requests");
}

/// POSTs one webhook subscription of audience "alerts" with the daemon's admin key.
http_reply subscribe_webhook(const daemon& d, const std::string& id, const std::string& url) {
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", subscription(id, "alerts", url) + "\n",
                       "application/x-ndjson", 30000, as::key(d.admin_key));
    EXPECT_TRUE(r);
    return r.value_or(http_reply{});
}

TEST(Security, OutboundDeliveryRefusesLoopbackUnlessItsNetworkIsAllowed) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    const std::string port = std::to_string(gw.port);
    {
        daemon d({"--outbound-allowed-networks", "", "--recipient-min-interval-ms", "0"});
        // A name is accepted at subscribe time and refused after resolution, at connect.
        const auto named = subscribe_webhook(d, "named", "http://localhost:" + port + "/webhook/named");
        ASSERT_EQ(named.status, 200) << named.body;
        kafka_producer producer(d.brokers);
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", "alerts", announcement("ssrf-1", "alerts")));
        const auto p = wait_broadcast_done(d, "ssrf-1", 30);
        EXPECT_EQ(number_field(p, "targeted"), 1) << d.log();
        EXPECT_EQ(number_field(p, "failed"), 1) << d.log();
        EXPECT_EQ(number_field(p, "sent"), 0);
        const auto receipts = read_topic(d.brokers, "herald.receipts", 1, 15000);
        ASSERT_EQ(receipts.size(), 1u);
        EXPECT_TRUE(contains(receipts[0].value, "blocked_address")) << receipts[0].value;
        EXPECT_TRUE(contains(receipts[0].value, "OUTCOME_FAILED")) << receipts[0].value;
        EXPECT_FALSE(contains(receipts[0].value, port)) << "receipts must not say which port answered what";
        EXPECT_EQ(standin_requests(gw), 0) << "a refused destination was contacted";
        EXPECT_FALSE(contains(d.log(), "localhost:" + port)) << "webhook URLs do not belong in logs";
    }
    {
        // The operator trusts loopback: the same stand-in now gets the messages.
        daemon d({"--outbound-allowed-networks", "127.0.0.0/8", "--recipient-min-interval-ms", "0"});
        EXPECT_EQ(subscribe_webhook(d, "named", "http://localhost:" + port + "/webhook/named").status, 200);
        EXPECT_EQ(subscribe_webhook(d, "literal", "http://127.0.0.1:" + port + "/webhook/literal").status,
                  200);
        kafka_producer producer(d.brokers);
        ASSERT_TRUE(
            producer.produce_json("herald.announcements", "alerts", announcement("ssrf-2", "alerts")));
        const auto p = wait_broadcast_done(d, "ssrf-2", 30);
        EXPECT_EQ(number_field(p, "sent"), 2) << d.log();
        EXPECT_EQ(number_field(p, "failed"), 0);
        EXPECT_EQ(standin_requests(gw), 2);
    }
}

TEST(Security, ALiteralRefusedWebhookAddressIsRefusedAtSubscribeTime) {
    // Found by this test: the routes once held a reference to a destroyed
    // guard, and literal loopback webhooks were accepted.
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    const std::string port = std::to_string(gw.port);
    {
        daemon d({"--outbound-allowed-networks", ""});
        for (const std::string& url :
             {"http://127.0.0.1:" + port + "/webhook/lit4", "http://[::1]:" + port + "/webhook/lit6",
              "http://[::ffff:127.0.0.1]:" + port + "/webhook/mapped"}) {
            const auto r = subscribe_webhook(d, "literal", url);
            EXPECT_EQ(r.status, 422) << url << ": " << r.body;
            EXPECT_TRUE(contains(r.body, "loopback")) << r.body;
        }
        EXPECT_EQ(http_get(d.ops_port, "/v1/subscriptions/literal", 5000, as::key(d.admin_key))->status, 404);
        EXPECT_EQ(subscribe_webhook(d, "named", "http://localhost:" + port + "/webhook/named").status, 200)
            << "names are checked at connect";
    }
    {
        daemon d({"--outbound-allowed-networks", "127.0.0.0/8"});
        EXPECT_EQ(subscribe_webhook(d, "literal", "http://127.0.0.1:" + port + "/webhook/lit4").status, 200);
        const auto v6 = subscribe_webhook(d, "literal6", "http://[::1]:" + port + "/webhook/lit6");
        EXPECT_EQ(v6.status, 422) << "::1 is not in 127.0.0.0/8: " << v6.body;
        EXPECT_TRUE(contains(v6.body, "loopback")) << v6.body;
    }
    EXPECT_EQ(standin_requests(gw), 0);
}

// --- 7. ping flood ----------------------------------------------------------------------

TEST(Security, APingFloodClosesTheFlooderNotTheAudience) {
    daemon d({"--send-queue-frames", "64", "--send-queue-bytes", "65536"});
    peer good(connect_tcp("127.0.0.1", d.client_port));
    ASSERT_EQ(status_of(ws_handshake(good, "/v1/ws?audience=stage")), 101);

    // The flooder: a small receive buffer, pings as fast as it can, never reading.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    const int small = 16384;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const timeval send_timeout{10, 0};  // a stalled send ends the flood instead of the test
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(d.client_port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    peer flooder(fd);
    ASSERT_EQ(status_of(ws_handshake(flooder, "/v1/ws?audience=stage")), 101);
    std::string batch;
    {
        const std::string payload(125, 'p');
        std::string one;
        one.push_back(static_cast<char>(0x89));
        one.push_back(static_cast<char>(0x80 | 125));
        const char mask[4] = {0x12, 0x34, 0x56, 0x78};
        one.append(mask, 4);
        for (std::size_t i = 0; i < payload.size(); ++i)
            one.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
        for (int i = 0; i < 1000; ++i) batch += one;
    }
    int sent_batches = 0;
    const auto flood_start = std::chrono::steady_clock::now();
    for (; sent_batches < 200; ++sent_batches) {  // 200,000 pings
        if (!flooder.send_all(batch))
            break;
    }
    std::cerr << "flooder sent " << sent_batches * 1000 << " pings in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - flood_start).count()
              << " s\n";

    // It was closed as a slow consumer: a 1008 close frame after the pongs, or the connection ended.
    bool closed = false;
    bool saw_1008 = false;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!closed && std::chrono::steady_clock::now() < deadline) {
        if (auto f = flooder.read_frame(2000)) {
            if (f->opcode == 0x8) {
                saw_1008 = f->close_code() == 1008;
                EXPECT_EQ(f->close_code(), 1008) << f->payload;
                closed = true;
            }
            continue;  // pongs queued before the close
        }
        closed = flooder.wait_eof(500);  // no whole frame: has the connection ended?
    }
    EXPECT_TRUE(closed) << "the flooder was never closed";
    std::cerr << (saw_1008 ? "flooder got close 1008\n" : "flooder saw the connection end\n");
    EXPECT_GE(wait_metric(d, "herald_connections_closed_total", "reason=\"slow_consumer\"", 1), 1)
        << d.metrics();

    // The audience is still served.
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "stage", announcement("after-flood", "stage")));
    std::optional<ws_frame> f;
    do {
        f = good.read_data_frame(15000);
    } while (f && f->opcode != 0x1 && f->opcode != 0x2);
    ASSERT_TRUE(f) << d.log();
    EXPECT_TRUE(contains(f->payload, "after-flood")) << f->payload;
}

// --- 8. per-address caps -----------------------------------------------------------------

TEST(Security, PerAddressCapsAnswer429AndFreeUpWhenAConnectionCloses) {
    {
        daemon d({"--connection-limit-exempt", "", "--max-connections-per-ip", "5"});
        std::vector<peer> open;
        for (int i = 0; i < 5; ++i) {
            open.emplace_back(connect_tcp("127.0.0.1", d.client_port));
            ASSERT_EQ(status_of(ws_handshake(open.back(), "/v1/ws?audience=cap")), 101) << i;
        }
        peer sixth(connect_tcp("127.0.0.1", d.client_port));
        const auto refused = ws_handshake(sixth, "/v1/ws?audience=cap");
        EXPECT_EQ(status_of(refused), 429) << refused.value_or("");
        EXPECT_EQ(ws_status(d.client_port, "/v1/sse?audience=cap"), 429) << "SSE counts too";
        // One closes: there is room for one more (once the close is seen).
        open.front().close();
        int status = 0;
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        peer seventh;
        while (status != 101 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(100ms);
            seventh = peer(connect_tcp("127.0.0.1", d.client_port));
            status = status_of(ws_handshake(seventh, "/v1/ws?audience=cap"));
        }
        EXPECT_EQ(status, 101);
        EXPECT_EQ(ws_status(d.client_port, "/v1/ws?audience=cap"), 429);
        EXPECT_GE(wait_metric(d, "herald_connections_closed_total", "reason=\"per_ip_limit\"", 3), 3);
        // The live audience is not disturbed by the refusals.
        kafka_producer producer(d.brokers);
        ASSERT_TRUE(producer.produce_json("herald.announcements", "cap", announcement("capped", "cap")));
        const auto f = open.back().read_data_frame(15000);
        ASSERT_TRUE(f) << d.log();
        EXPECT_TRUE(contains(f->payload, "capped"));
    }
    {
        daemon d({"--connection-limit-exempt", "", "--max-connects-per-ip-per-s", "5"});
        // A burst of 10 connects (held open): the budget is one second's worth.
        int ok = 0;
        int too_many = 0;
        std::vector<peer> burst;
        for (int i = 0; i < 10; ++i) {
            burst.emplace_back(connect_tcp("127.0.0.1", d.client_port));
            const int status = status_of(ws_handshake(burst.back(), "/v1/ws?audience=burst"));
            ok += status == 101;
            too_many += status == 429;
        }
        EXPECT_GE(too_many, 1) << ok << " accepted";
        EXPECT_GE(ok, 5);
        EXPECT_EQ(ok + too_many, 10);
        // The bucket refills: a second later connects are accepted again.
        std::this_thread::sleep_for(1500ms);
        EXPECT_EQ(ws_status(d.client_port, "/v1/ws?audience=burst"), 101);
    }
    {
        // Loopback is exempt by default (a local proxy speaks for many clients).
        daemon d({"--max-connections-per-ip", "2"});
        std::vector<peer> open;
        for (int i = 0; i < 4; ++i) {
            open.emplace_back(connect_tcp("127.0.0.1", d.client_port));
            EXPECT_EQ(status_of(ws_handshake(open.back(), "/v1/ws?audience=cap")), 101) << i;
        }
    }
}

TEST(Security, PerAddressRefusalsAreCountedAsRejectedPerIp) {
    // docs/SECURITY.md promises herald_connections_rejected_total{reason="per_ip"}.
    daemon d({"--connection-limit-exempt", "", "--max-connections-per-ip", "2"});
    std::vector<peer> open;
    for (int i = 0; i < 2; ++i) {
        open.emplace_back(connect_tcp("127.0.0.1", d.client_port));
        ASSERT_EQ(status_of(ws_handshake(open.back(), "/v1/ws?audience=cap")), 101);
    }
    for (int i = 0; i < 3; ++i) EXPECT_EQ(ws_status(d.client_port, "/v1/ws?audience=cap"), 429);
    const std::string m = d.metrics();
    EXPECT_TRUE(contains(m, "herald_connections_rejected_total{reason=\"per_ip\"}")) << m;
    EXPECT_EQ(metric_value(m, "herald_connections_rejected_total", "reason=\"per_ip\""), 3) << m;
}

TEST(Security, ConnectRateHoldsForClientsThatCloseAtOnce) {
    // A client reconnecting in a tight loop (connect, upgrade, close, again)
    // is the churn --max-connects-per-ip-per-s exists for.
    //
    // (It once forgot an address at its last close, refilling its budget.)
    daemon d({"--connection-limit-exempt", "", "--max-connects-per-ip-per-s", "5"});
    int ok = 0;
    int too_many = 0;
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        const int status = ws_status(d.client_port, "/v1/ws?audience=churn");
        ok += status == 101;
        too_many += status == 429;
        std::this_thread::sleep_for(20ms);  // the close is seen before the next connect
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cerr << ok << " accepted, " << too_many << " refused in " << seconds << " s\n";
    // At most the burst (5) plus what refilled meanwhile (5/s), with a little slack.
    EXPECT_LE(ok, 5 + static_cast<int>(5 * seconds) + 2);
    EXPECT_GE(too_many, 1);
}

// --- 9. ops abuse ------------------------------------------------------------------------

TEST(Security, OpsBodyCapAndMetricsAnswerWhileARegistryWriteWaits) {
    external_kafka kafka;
    daemon d({"--brokers", kafka.brokers, "--ops-max-body-bytes", "2048"});
    const std::string line = subscription("capped", "club", "http://127.0.0.1:9/webhook/capped") + "\n";

    std::string big;
    while (big.size() < 10 * 1024) big += line;
    const auto too_big = http_call(d.ops_port, "POST", "/v1/subscriptions", big, "application/x-ndjson");
    ASSERT_TRUE(too_big) << "no answer to an oversized body";
    EXPECT_EQ(too_big->status, 413) << too_big->body;
    EXPECT_TRUE(contains(too_big->body, "ops_max_body_bytes")) << too_big->body;
    EXPECT_EQ(http_get(d.ops_port, "/v1/subscriptions/capped")->status, 404);
    const auto small = http_call(d.ops_port, "POST", "/v1/subscriptions", line, "application/x-ndjson");
    ASSERT_TRUE(small);
    EXPECT_EQ(small->status, 200) << small->body;

    // Kafka goes away: a registry write waits for it, /metrics and /healthz do not.
    rd_kafka_mock_broker_set_down(kafka.mock(), 1);
    std::atomic<bool> done{false};
    std::optional<http_reply> waiting;
    std::thread writer([&] {
        waiting = http_call(d.ops_port, "POST", "/v1/subscriptions",
                            subscription("waits", "club", "http://127.0.0.1:9/webhook/waits") + "\n",
                            "application/x-ndjson", 60000);
        done = true;
    });
    std::this_thread::sleep_for(1s);
    for (int i = 0; i < 3; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto m = http_get(d.ops_port, "/metrics", 5000, as::nobody());
        const auto h = http_get(d.ops_port, "/healthz", 5000, as::nobody());
        const auto info = http_get(d.ops_port, "/v1/info");
        ASSERT_TRUE(m && h && info);
        EXPECT_EQ(m->status, 200);
        EXPECT_EQ(h->status, 200);
        EXPECT_EQ(info->status, 200);
        std::cerr << "ops answers while a write waits: "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
    }
    const bool finished_early = done.load();
    rd_kafka_mock_broker_set_up(kafka.mock(), 1);
    writer.join();
    EXPECT_FALSE(finished_early) << "the write did not wait for Kafka (cannot show the ops port stayed free)";
    ASSERT_TRUE(waiting);
    EXPECT_TRUE(waiting->status == 200 || waiting->status == 503) << waiting->status << " " << waiting->body;
}

}  // namespace
}  // namespace herald::testing
