// herald-loadgen: the end-to-end fan-out measurement.
//
// Opens N WebSocket subscribers (spread over worker processes, because one
// process may hold under 20k descriptors here, and over source addresses
// 127.0.0.2.. so loopback does not run out of ephemeral ports), publishes
// announcements through Kafka with a release instant R = deliver_at, and
// measures for every subscriber the wall-clock time its frame was read.
// Per broadcast: latency R -> receipt (p50/p99/max), spread (first to last
// receipt), deliveries/s (N / (last receipt - R)). With --burst K a round is K
// announcements published back to back (a ticker flood): a subscriber's
// receipt is when it holds all K, deliveries/s is K*N / (last receipt - R).
// Also the Kafka-to-socket
// latency of single announcements at idle, the server's memory per idle
// connection, and this tool's own CPU time so readers can see it was not the
// bottleneck. Raw sockets and epoll: no Boost, a few hundred bytes per
// connection. With --churn S it instead opens, upgrades and closes
// connections as fast as the server takes them (connection storms).
//
// With --tls-ca-file the subscribers speak wss:// (and requests to the ops
// port https://): each connection does its own TLS handshake, verifying the
// server's certificate against that CA and its name (--tls-server-name,
// default --host), so the figures are fan-out under TLS as a browser would
// see it. The plaintext path is unchanged: one branch per read decides.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <librdkafka/rdkafkacpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

std::int64_t wall_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

double cpu_seconds(int who) {
    rusage ru{};
    getrusage(who, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "herald-loadgen: %s\n", msg.c_str());
    std::exit(1);
}

struct options {
    int connections = 1000;
    int procs = 0;
    std::string host = "127.0.0.1";
    int port = 0;
    std::vector<int> more_ports;  // --port P1,P2,...: several heraldd instances (scale-out)
    std::string ops = "127.0.0.1:8081";
    std::string brokers;
    std::string audience = "bench.fanout";
    int broadcasts = 5;
    int burst = 1;  // announcements per broadcast round, published back to back
    int idle_samples = 20;
    int payload_bytes = 64;
    int release_delay_ms = 300;
    int timeout_s = 30;
    int source_ips = 16;
    int server_pid = 0;
    bool json = false;
    std::string path;                     // subscribe target; default /v1/ws?audience=<audience>
    std::vector<std::string> tokens;      // live tokens (one per line of --token-file), sent as &token=;
                                          // with several, --churn uses a different one per connection
    std::string api_key;                  // ops API key for /v1/info
    std::string trigger = "kafka";        // or http-post:HOST:PORT/PATH, nats-pub:HOST:PORT/SUBJECT (peers)
    std::string nats_subject;             // subscribers speak NATS over WebSocket (nats-server peer)
    std::string server_name = "heraldd";  // process whose RSS is measured
    double churn_s = 0;                   // --churn S: connect/handshake/close storm instead of broadcasts
    int hold_s = 0;  // --hold-s S: keep the connections open and reading, publish nothing
    int churn_inflight = 256;
    std::string tls_ca_file;      // --tls-ca-file: wss:// subscribers and https:// ops requests, verified
    std::string tls_server_name;  // the name or address the certificate must carry; default --host
};

// ---------------------------------------------------------------- plumbing

bool write_all(int fd, const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

bool read_all(int fd, void* data, std::size_t n) {
    char* p = static_cast<char*>(data);
    while (n > 0) {
        const ssize_t r = ::read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

// -------------------------------------------------------------------- TLS

/// The client context every connection of the run shares; nullptr = plaintext.
/// Made before the workers fork, so a bad CA file stops the run at once.
SSL_CTX* g_tls = nullptr;
std::string g_tls_sni;  // sent as SNI when the verified name is a host name, not an address

std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return "no OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

void make_tls_context(const options& o) {
    g_tls = SSL_CTX_new(TLS_client_method());
    if (g_tls == nullptr)
        die("cannot create a TLS context: " + openssl_error());
    SSL_CTX_set_min_proto_version(g_tls, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(g_tls, o.tls_ca_file.c_str(), nullptr) != 1)
        die("--tls-ca-file: cannot load \"" + o.tls_ca_file + "\": " + openssl_error());
    SSL_CTX_set_verify(g_tls, SSL_VERIFY_PEER, nullptr);
    // The certificate must name the server as a browser would check it: an
    // address against its IP entries, a host name against its DNS entries.
    const std::string name = o.tls_server_name.empty() ? o.host : o.tls_server_name;
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(g_tls);
    in6_addr any{};
    if (inet_pton(AF_INET, name.c_str(), &any) == 1 || inet_pton(AF_INET6, name.c_str(), &any) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1)
            die("--tls-server-name: bad address " + name);
    } else {
        if (X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0) != 1)
            die("--tls-server-name: bad host name " + name);
        g_tls_sni = name;
    }
    static constexpr unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(g_tls, alpn, sizeof alpn);
    // Read whole socket buffers, not a record header and then its body (two
    // system calls per record); readers drain OpenSSL until it wants the socket.
    SSL_CTX_set_read_ahead(g_tls, 1);
    SSL_CTX_set_mode(g_tls, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

SSL* new_tls(int fd) {
    SSL* ssl = SSL_new(g_tls);
    if (ssl == nullptr)
        die("SSL_new: " + openssl_error());
    SSL_set_fd(ssl, fd);
    if (!g_tls_sni.empty())
        SSL_set_tlsext_host_name(ssl, g_tls_sni.c_str());
    return ssl;
}

/// Why a handshake failed, in words; the certificate check is the usual reason.
std::string tls_failure(SSL* ssl, int ret) {
    if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK)
        return std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
    if (SSL_get_error(ssl, ret) == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return "connection closed during the handshake";
    return openssl_error();
}

/// One read: read(2) on plaintext, else the next decrypted bytes. > 0 bytes,
/// 0 when the peer closed, -1 with errno EAGAIN when it would block.
ssize_t read_some(int fd, SSL* ssl, char* buf, std::size_t n) {
    if (ssl == nullptr)
        return ::read(fd, buf, n);
    std::size_t got = 0;
    if (SSL_read_ex(ssl, buf, n, &got) == 1)
        return static_cast<ssize_t>(got);
    switch (SSL_get_error(ssl, 0)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            errno = EAGAIN;
            return -1;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        default:
            ERR_clear_error();
            errno = EPROTO;
            return -1;
    }
}

/// Writes all of a small message (upgrade request, pong, NATS SUB); under TLS
/// a full socket is waited out briefly, as write_all's blocking write would.
bool send_all(int fd, SSL* ssl, const void* data, std::size_t n) {
    if (ssl == nullptr)
        return write_all(fd, data, n);
    const char* p = static_cast<const char*>(data);
    for (int waits = 0; n > 0;) {
        std::size_t w = 0;
        if (SSL_write_ex(ssl, p, n, &w) == 1) {
            p += w;
            n -= w;
            continue;
        }
        const int err = SSL_get_error(ssl, 0);
        if ((err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) || ++waits > 100) {
            ERR_clear_error();
            return false;
        }
        pollfd pf{fd, static_cast<short>(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
        ::poll(&pf, 1, 10);
    }
    return true;
}

std::string g_api_key;  // sent to the ops port

/// GET from the ops port (https:// with --tls-ca-file); the body, or "" with
/// `tls_error` set when the server's certificate was refused.
std::string http_get(const std::string& hostport, const std::string& path, std::string* tls_error = nullptr) {
    const auto colon = hostport.rfind(':');
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(hostport.substr(colon + 1))));
    inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return {};
    }
    SSL* ssl = nullptr;
    if (g_tls != nullptr) {
        ssl = new_tls(fd);
        if (const int ret = SSL_connect(ssl); ret != 1) {
            if (tls_error != nullptr)
                *tls_error = tls_failure(ssl, ret);
            SSL_free(ssl);
            ::close(fd);
            return {};
        }
    }
    const std::string req =
        "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
        (g_api_key.empty() ? std::string() : "Authorization: Bearer " + g_api_key + "\r\n") + "\r\n";
    send_all(fd, ssl, req.data(), req.size());
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read_some(fd, ssl, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    if (ssl != nullptr)
        SSL_free(ssl);
    ::close(fd);
    const auto body = out.find("\r\n\r\n");
    return body == std::string::npos ? std::string() : out.substr(body + 4);
}

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
}

std::string json_field(const std::string& json, const std::string& key) {
    const auto at = json.find("\"" + key + "\":");
    if (at == std::string::npos)
        return {};
    auto start = at + key.size() + 3;
    if (json[start] == '"')
        return json.substr(start + 1, json.find('"', start + 1) - start - 1);
    return json.substr(start, json.find_first_of(",}", start) - start);
}

/// POST `body` to "HOST:PORT/PATH" and wait for the response head (peers' publish endpoints).
void post(const std::string& where, const std::string& body) {
    const auto slash = where.find('/');
    const std::string hostport = where.substr(0, slash);
    const std::string path = slash == std::string::npos ? "/" : where.substr(slash);
    const auto colon = hostport.rfind(':');
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(hostport.substr(colon + 1))));
    inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        die("cannot connect to " + hostport);
    const std::string req =
        "POST " + path + " HTTP/1.1\r\nHost: " + hostport +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    write_all(fd, req.data(), req.size());
    char buf[1024];
    [[maybe_unused]] const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
}

/// Publishes `body` on a NATS subject over the plain NATS protocol and waits
/// for the server's PONG, so the message has been processed when this returns.
void nats_publish(const std::string& where, const std::vector<std::string>& bodies) {
    const auto slash = where.find('/');
    const std::string hostport = where.substr(0, slash);
    const std::string subject = where.substr(slash + 1);
    const auto colon = hostport.rfind(':');
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(hostport.substr(colon + 1))));
    inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        die("cannot connect to " + hostport);
    std::string req = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
    for (const auto& body : bodies)
        req += "PUB " + subject + " " + std::to_string(body.size()) + "\r\n" + body + "\r\n";
    req += "PING\r\n";
    write_all(fd, req.data(), req.size());
    std::string got;
    char buf[4096];
    ssize_t n;
    while (got.find("PONG") == std::string::npos && (n = ::read(fd, buf, sizeof buf)) > 0)
        got.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
}

long rss_kib(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stol(line.substr(6));
    }
    return -1;
}

/// Every process whose command name is `name` (nginx runs a master and workers).
std::vector<int> find_pids(const std::string& name) {
    std::vector<int> found;
    DIR* d = opendir("/proc");
    if (d == nullptr)
        return found;
    while (dirent* e = readdir(d)) {
        const int pid = std::atoi(e->d_name);
        if (pid <= 0)
            continue;
        std::ifstream in(std::string("/proc/") + e->d_name + "/comm");
        std::string comm;
        std::getline(in, comm);
        if (comm == name)
            found.push_back(pid);
    }
    closedir(d);
    return found;
}

/// Resident memory of the server: the given pid, else every process named `name`.
long server_rss_kib(int pid, const std::string& name) {
    if (pid > 0)
        return rss_kib(pid);
    long total = 0;
    for (const int p : find_pids(name)) total += std::max(0L, rss_kib(p));
    return total > 0 ? total : -1;
}

// ------------------------------------------------------------------ worker

/// Commands parent -> worker and reports worker -> parent are fixed-size records.
struct command {
    char id[64];
    std::int64_t release_ns;  // 0 = stop, else measure
    std::int32_t timeout_ms;
    std::int32_t burst;  // frames per connection that complete the round
};
struct report_head {
    std::int32_t connected;
    std::int32_t received;
    double cpu_s;
};

/// After connecting, each worker also reports what TLS its connections negotiated.
struct tls_report {
    char negotiated[64];  // "TLSv1.3 TLS_AES_256_GCM_SHA384", "" for plaintext
};

struct conn {
    int fd = -1;
    SSL* ssl = nullptr;  // under TLS
    bool sent = false;   // upgrade request sent
    bool open = false;   // handshake done
    std::string buf;     // unparsed bytes (usually empty)
    std::int64_t got_ns = 0;
    std::int32_t got = 0;  // frames of this round seen
};

class worker {
  public:
    worker(const options& o, int index, int count, int cmd_fd, int report_fd)
        : o_(o), index_(index), count_(count), cmd_fd_(cmd_fd), report_fd_(report_fd) {}

    void run() {
        epfd_ = epoll_create1(EPOLL_CLOEXEC);
        connect_all();
        report_head head{connected(), 0, 0};
        write_all(report_fd_, &head, sizeof head);
        tls_report tls{};
        for (const auto& c : conns_) {
            if (c.open && c.ssl != nullptr) {
                std::snprintf(tls.negotiated, sizeof tls.negotiated, "%s %s", SSL_get_version(c.ssl),
                              SSL_get_cipher_name(c.ssl));
                break;
            }
        }
        write_all(report_fd_, &tls, sizeof tls);
        for (;;) {
            command c{};
            if (!read_all(cmd_fd_, &c, sizeof c) || c.release_ns == 0)
                break;
            measure(c);
        }
        std::_Exit(0);
    }

  private:
    int connected() const {
        int n = 0;
        for (const auto& c : conns_) n += c.open;
        return n;
    }

    /// NATS over WebSocket: CONNECT and SUB in one masked binary frame (zero
    /// mask key, so the payload goes as is).
    void nats_subscribe(const conn& c) const {
        const std::string cmd = "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nSUB " +
                                o_.nats_subject + " 1\r\n";
        std::string frame;
        frame += static_cast<char>(0x82);
        frame += static_cast<char>(0x80 | cmd.size());
        frame.append(4, '\0');
        frame += cmd;
        send_all(c.fd, c.ssl, frame.data(), frame.size());
    }

    void connect_all() {
        conns_.resize(static_cast<std::size_t>(count_));
        const std::string request =
            "GET " + o_.path +
            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        const bool loopback = o_.host.rfind("127.", 0) == 0;
        int in_flight = 0;
        std::size_t next = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o_.timeout_s + 30);
        epoll_event events[512];
        while ((next < conns_.size() || in_flight > 0) && std::chrono::steady_clock::now() < deadline) {
            while (next < conns_.size() && in_flight < 500) {
                conn& c = conns_[next];
                c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (c.fd < 0)
                    die("socket: " + std::string(std::strerror(errno)) +
                        " (too many connections per process? use --procs)");
                const int one = 1;
                setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                if (loopback && o_.source_ips > 0) {
                    sockaddr_in src{};
                    src.sin_family = AF_INET;
                    const int k = static_cast<int>((next + static_cast<std::size_t>(index_) * 7919) %
                                                   static_cast<std::size_t>(o_.source_ips));
                    src.sin_addr.s_addr = htonl(0x7F000002u + static_cast<std::uint32_t>(k));
                    ::bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
                }
                sockaddr_in dst{};
                dst.sin_family = AF_INET;
                // Worker w subscribes through instance w mod #instances.
                const int port =
                    o_.more_ports.empty() || index_ % (1 + static_cast<int>(o_.more_ports.size())) == 0
                        ? o_.port
                        : o_.more_ports[static_cast<std::size_t>(
                              index_ % (1 + static_cast<int>(o_.more_ports.size())) - 1)];
                dst.sin_port = htons(static_cast<std::uint16_t>(port));
                inet_pton(AF_INET, o_.host.c_str(), &dst.sin_addr);
                ::connect(c.fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
                epoll_event ev{};
                ev.events = EPOLLOUT | EPOLLIN;
                ev.data.u64 = next;
                epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
                ++next;
                ++in_flight;
            }
            const int n = epoll_wait(epfd_, events, 512, 100);
            for (int i = 0; i < n; ++i) {
                conn& c = conns_[events[i].data.u64];
                if (c.open || c.fd < 0)
                    continue;
                const auto wait_for = [&](std::uint32_t what) {
                    epoll_event ev{};
                    ev.events = what;
                    ev.data.u64 = events[i].data.u64;
                    epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
                };
                const auto drop = [&] {
                    epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
                    if (c.ssl != nullptr)
                        SSL_free(c.ssl);
                    c.ssl = nullptr;
                    ::close(c.fd);
                    c.fd = -1;
                    --in_flight;
                };
                if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                    drop();
                    continue;
                }
                if (!c.sent && g_tls != nullptr) {
                    // TLS first: the handshake runs on whatever readiness OpenSSL asks for.
                    if (c.ssl == nullptr)
                        c.ssl = new_tls(c.fd);
                    if (const int ret = SSL_connect(c.ssl); ret != 1) {
                        const int err = SSL_get_error(c.ssl, ret);
                        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                            wait_for(err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
                        } else {
                            tls_refused(tls_failure(c.ssl, ret));
                            drop();
                        }
                        continue;
                    }
                    send_all(c.fd, c.ssl, request.data(), request.size());
                    c.sent = true;
                    wait_for(EPOLLIN);
                    continue;
                }
                if ((events[i].events & EPOLLOUT) && !c.sent) {
                    write_all(c.fd, request.data(), request.size());
                    c.sent = true;
                    wait_for(EPOLLIN);
                }
                if (events[i].events & EPOLLIN) {
                    char tmp[1024];
                    const ssize_t r = read_some(c.fd, c.ssl, tmp, sizeof tmp);
                    if (r > 0 && std::string_view(tmp, static_cast<std::size_t>(r)).find("101") !=
                                     std::string_view::npos) {
                        c.open = true;
                        --in_flight;
                        if (!o_.nats_subject.empty())
                            nats_subscribe(c);
                    } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
                        drop();
                    }
                }
            }
        }
    }

    /// The first refused TLS handshake of this worker is told (usually every
    /// connection fails the same way: the wrong CA or name).
    void tls_refused(const std::string& why) {
        if (!tls_refusal_told_) {
            std::fprintf(stderr, "herald-loadgen: TLS handshake with %s:%d refused: %s\n", o_.host.c_str(),
                         o_.port, why.c_str());
            tls_refusal_told_ = true;
        }
    }

    /// Waits until every open connection has read the frame carrying `c.id`
    /// (or, for a burst, all `c.burst` frames whose ids start with `c.id`-).
    void measure(const command& c) {
        const std::string needle =
            std::string("\"id\":\"") + c.id + (c.burst > 1 ? std::string("-") : std::string("\""));
        for (auto& x : conns_) {
            x.got_ns = 0;
            x.got = 0;
        }
        const int expected = connected();
        int received = 0;
        const double cpu_before = cpu_seconds(RUSAGE_SELF);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(c.timeout_ms);
        epoll_event events[1024];
        static char tmp[1 << 16];
        while (received < expected && std::chrono::steady_clock::now() < deadline) {
            const int n = epoll_wait(epfd_, events, 1024, 50);
            const std::int64_t now = wall_ns();  // one clock read per wake-up batch
            for (int i = 0; i < n; ++i) {
                conn& x = conns_[events[i].data.u64];
                if (!x.open)
                    continue;
                ssize_t r = read_some(x.fd, x.ssl, tmp, sizeof tmp);
                if (r <= 0) {
                    if (r == 0 || errno != EAGAIN)
                        x.open = false;
                    continue;
                }
                x.buf.append(tmp, static_cast<std::size_t>(r));
                if (x.ssl != nullptr) {
                    // OpenSSL may hold decrypted records epoll cannot see: drain it.
                    while ((r = read_some(x.fd, x.ssl, tmp, sizeof tmp)) > 0)
                        x.buf.append(tmp, static_cast<std::size_t>(r));
                    if (r == 0 || errno != EAGAIN)
                        x.open = false;  // what arrived before the end still counts
                }
                // Walk complete frames; answer pings; find ours.
                std::size_t pos = 0;
                while (x.buf.size() - pos >= 2) {
                    const auto b0 = static_cast<std::uint8_t>(x.buf[pos]);
                    std::size_t len = static_cast<std::uint8_t>(x.buf[pos + 1]) & 0x7F;
                    std::size_t hdr = 2;
                    if (len == 126) {
                        if (x.buf.size() - pos < 4)
                            break;
                        len = (std::size_t(std::uint8_t(x.buf[pos + 2])) << 8) | std::uint8_t(x.buf[pos + 3]);
                        hdr = 4;
                    } else if (len == 127) {
                        if (x.buf.size() - pos < 10)
                            break;
                        len = 0;
                        for (int k = 0; k < 8; ++k) len = (len << 8) | std::uint8_t(x.buf[pos + 2 + k]);
                        hdr = 10;
                    }
                    if (x.buf.size() - pos < hdr + len)
                        break;
                    const std::string_view payload(x.buf.data() + pos + hdr, len);
                    const int op = b0 & 0x0F;
                    if (op == 0x9) {
                        char pong[6 + 125];
                        pong[0] = static_cast<char>(0x8A);
                        pong[1] = static_cast<char>(0x80 | len);
                        std::memset(pong + 2, 0, 4);  // zero mask: payload unchanged
                        std::memcpy(pong + 6, payload.data(), len);
                        send_all(x.fd, x.ssl, pong, 6 + len);
                    } else if ((op == 0x1 || op == 0x2) && x.got_ns == 0) {
                        // A peer may pack several messages into one frame (NATS does).
                        for (auto at = payload.find(needle); at != std::string_view::npos;
                             at = payload.find(needle, at + needle.size())) {
                            if (++x.got == c.burst) {
                                x.got_ns = now;
                                ++received;
                                break;
                            }
                        }
                    }
                    pos += hdr + len;
                }
                x.buf.erase(0, pos);
            }
        }
        report_head head{expected, received, cpu_seconds(RUSAGE_SELF) - cpu_before};
        write_all(report_fd_, &head, sizeof head);
        std::vector<std::int64_t> times;
        times.reserve(static_cast<std::size_t>(received));
        for (const auto& x : conns_) {
            if (x.got_ns != 0)
                times.push_back(x.got_ns);
        }
        const auto count = static_cast<std::int32_t>(times.size());
        write_all(report_fd_, &count, sizeof count);
        write_all(report_fd_, times.data(), times.size() * sizeof(std::int64_t));
    }

    const options& o_;
    int index_;
    int count_;
    int cmd_fd_;
    int report_fd_;
    int epfd_ = -1;
    std::vector<conn> conns_;
    bool tls_refusal_told_ = false;
};

// ------------------------------------------------------------------ parent

struct worker_handle {
    pid_t pid;
    int cmd_fd;
    int report_fd;
};

struct result {
    int expected = 0;
    int received = 0;
    double cpu_s = 0;
    std::vector<std::int64_t> times;
};

/// Tells the workers which id to wait for; sent before the announcement is
/// produced, so a fast delivery is never timed late.
void start_round(std::vector<worker_handle>& workers, const std::string& id, int timeout_ms, int burst) {
    command c{};
    c.burst = burst;
    std::snprintf(c.id, sizeof c.id, "%s", id.c_str());
    c.release_ns = 1;  // non-zero: measure (0 means stop)
    c.timeout_ms = timeout_ms;
    for (auto& w : workers) write_all(w.cmd_fd, &c, sizeof c);
}

result finish_round(std::vector<worker_handle>& workers) {
    result r;
    for (auto& w : workers) {
        report_head head{};
        std::int32_t n = 0;
        if (!read_all(w.report_fd, &head, sizeof head) || !read_all(w.report_fd, &n, sizeof n))
            die("worker died");
        std::vector<std::int64_t> t(static_cast<std::size_t>(n));
        read_all(w.report_fd, t.data(), t.size() * sizeof(std::int64_t));
        r.expected += head.connected;
        r.received += head.received;
        r.cpu_s += head.cpu_s;
        r.times.insert(r.times.end(), t.begin(), t.end());
    }
    std::sort(r.times.begin(), r.times.end());
    return r;
}

double pct_ms(const std::vector<std::int64_t>& sorted, double q, std::int64_t origin) {
    if (sorted.empty())
        return 0;
    const auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
    return static_cast<double>(sorted[i] - origin) / 1e6;
}

class producer {
  public:
    explicit producer(const std::string& brokers) {
        std::string err;
        std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
        conf->set("bootstrap.servers", brokers, err);
        conf->set("linger.ms", "0", err);
        conf->set("log_level", "3", err);
        p_.reset(RdKafka::Producer::create(conf.get(), err));
        if (!p_)
            die("kafka: " + err);
    }
    void send(const std::string& audience, const std::string& json) {
        RdKafka::Headers* h = RdKafka::Headers::create();
        h->add("content-type", "application/json");
        if (p_->produce("herald.announcements", RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                        const_cast<char*>(json.data()), json.size(), audience.data(), audience.size(), 0, h,
                        nullptr) != RdKafka::ERR_NO_ERROR) {
            delete h;
            die("produce failed");
        }
    }
    void flush() { p_->flush(10000); }

  private:
    std::unique_ptr<RdKafka::Producer> p_;
};

std::string rfc3339(std::int64_t ns) {
    const std::time_t s = ns / 1'000'000'000;
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRId64 "Z", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1'000'000'000);
    return buf;
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc)
                die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--connections")
            o.connections = std::stoi(next());
        else if (a == "--procs")
            o.procs = std::stoi(next());
        else if (a == "--ops")
            o.ops = next();
        else if (a == "--host")
            o.host = next();
        else if (a == "--port") {
            std::string list = next();
            o.port = std::stoi(list);
            for (auto comma = list.find(','); comma != std::string::npos; comma = list.find(',', comma + 1))
                o.more_ports.push_back(std::stoi(list.substr(comma + 1)));
        } else if (a == "--brokers")
            o.brokers = next();
        else if (a == "--audience")
            o.audience = next();
        else if (a == "--broadcasts")
            o.broadcasts = std::stoi(next());
        else if (a == "--burst")
            o.burst = std::max(1, std::stoi(next()));
        else if (a == "--idle-samples")
            o.idle_samples = std::stoi(next());
        else if (a == "--payload-bytes")
            o.payload_bytes = std::stoi(next());
        else if (a == "--release-delay-ms")
            o.release_delay_ms = std::stoi(next());
        else if (a == "--timeout-s")
            o.timeout_s = std::stoi(next());
        else if (a == "--source-ips")
            o.source_ips = std::stoi(next());
        else if (a == "--server-pid")
            o.server_pid = std::stoi(next());
        else if (a == "--json")
            o.json = true;
        else if (a == "--path")
            o.path = next();
        else if (a == "--token-file") {
            std::ifstream in(next());
            for (std::string line; std::getline(in, line);)
                if (!line.empty())
                    o.tokens.push_back(line);
            if (o.tokens.empty())
                die("--token-file: no token in the file");
        } else if (a == "--api-key-file")
            o.api_key = first_line(next());
        else if (a == "--trigger")
            o.trigger = next();
        else if (a == "--nats-subject")
            o.nats_subject = next();
        else if (a == "--server-name")
            o.server_name = next();
        else if (a == "--hold-s")
            o.hold_s = std::stoi(next());
        else if (a == "--churn")
            o.churn_s = std::stod(next());
        else if (a == "--churn-inflight")
            o.churn_inflight = std::max(1, std::stoi(next()));
        else if (a == "--tls-ca-file")
            o.tls_ca_file = next();
        else if (a == "--tls-server-name")
            o.tls_server_name = next();
        else if (a == "--help") {
            std::printf(
                "usage: herald-loadgen --connections N [--procs P] [--ops HOST:PORT] [--host H --port "
                "P[,P2..] "
                "--brokers B]\n"
                "       [--audience A] [--broadcasts B] [--idle-samples K] [--payload-bytes S] "
                "[--release-delay-ms D] [--burst K] [--token-file F] [--api-key-file F]\n"
                "       [--timeout-s T] [--source-ips S] [--server-pid PID] [--json]\n"
                "       [--path /sub --trigger http-post:HOST:PORT/PATH --server-name NAME]   (peers)\n"
                "       [--path / --nats-subject S --trigger nats-pub:HOST:PORT/S --server-name "
                "nats-server]\n"
                "       [--churn SECONDS [--churn-inflight K]]   connect, upgrade, close, repeat\n"
                "       [--hold-s S]   hold the subscribers open, reading everything, for S seconds\n"
                "       [--tls-ca-file CA.pem [--tls-server-name NAME]]   wss:// subscribers and https:// "
                "ops\n"
                "         requests, the server's certificate verified against CA.pem and NAME (default "
                "--host)\n"
                "--release-delay-ms 0 publishes without deliver_at; latency then starts at the publish "
                "call.\n");
            std::exit(0);
        } else
            die("unknown option " + a);
    }
    return o;
}

/// --churn: as many WebSocket connects + upgrades + closes per second as the
/// server takes, K in flight at once, for S seconds. Counts completed
/// upgrades, refusals and errors; this process's CPU time is reported beside.
int run_churn(const options& o) {
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_port = htons(static_cast<std::uint16_t>(o.port));
    ::inet_pton(AF_INET, o.host.c_str(), &server.sin_addr);
    // One request per token when there are several (each connection a new
    // client, so nothing verified before can be remembered), else one.
    std::vector<std::string> requests;
    const std::string sep = o.path.find('?') == std::string::npos ? "?token=" : "&token=";
    const auto request_for = [&](const std::string& target) {
        return "GET " + target + " HTTP/1.1\r\nHost: " + o.host +
               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    };
    if (o.tokens.size() > 1) {
        for (const auto& t : o.tokens) requests.push_back(request_for(o.path + sep + t));
    } else {
        requests.push_back(request_for(o.path));
    }
    struct conn {
        int fd = -1;
        bool sent = false;
        const std::string* request = nullptr;
        std::string got;
    };
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<conn> conns(static_cast<std::size_t>(o.churn_inflight));
    std::uint64_t upgraded = 0;
    std::uint64_t refused = 0;
    std::uint64_t errors = 0;
    std::uint64_t started = 0;
    const bool loopback = o.host.rfind("127.", 0) == 0;
    const auto open_one = [&](std::size_t slot) {
        conn& c = conns[slot];
        c = conn{};
        c.request = &requests[started % requests.size()];
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (loopback && o.source_ips > 0) {
            sockaddr_in src{};
            src.sin_family = AF_INET;
            src.sin_addr.s_addr = htonl(0x7f000002U + static_cast<std::uint32_t>(started % o.source_ips));
            ::bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
        }
        // No TIME_WAIT pile-up on the client side: close with RST after the upgrade.
        const linger hard{1, 0};
        ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        ++started;
        if (::connect(c.fd, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0 &&
            errno != EINPROGRESS) {
            ++errors;
            ::close(c.fd);
            c.fd = -1;
            return;
        }
        epoll_event ev{};
        ev.events = EPOLLOUT | EPOLLIN;
        ev.data.u64 = slot;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    };
    const auto finish = [&](std::size_t slot) {
        ::close(conns[slot].fd);  // epoll forgets it with the descriptor
        conns[slot].fd = -1;
    };
    const double cpu0 = cpu_seconds(RUSAGE_SELF);
    const std::int64_t t0 = wall_ns();
    const std::int64_t end = t0 + static_cast<std::int64_t>(o.churn_s * 1e9);
    for (std::size_t i = 0; i < conns.size(); ++i) open_one(i);
    epoll_event events[512];
    char buf[2048];
    while (wall_ns() < end) {
        const int k = ::epoll_wait(ep, events, 512, 100);
        for (int i = 0; i < k; ++i) {
            const auto slot = static_cast<std::size_t>(events[i].data.u64);
            conn& c = conns[slot];
            if (c.fd < 0)
                continue;
            if ((events[i].events & (EPOLLERR | EPOLLHUP)) != 0 && c.got.empty()) {
                ++errors;
                finish(slot);
                open_one(slot);
                continue;
            }
            if (!c.sent && (events[i].events & EPOLLOUT) != 0) {
                c.sent = ::send(c.fd, c.request->data(), c.request->size(), MSG_NOSIGNAL) ==
                         static_cast<ssize_t>(c.request->size());
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = slot;
                ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
            }
            if ((events[i].events & EPOLLIN) != 0) {
                const ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
                if (r > 0)
                    c.got.append(buf, static_cast<std::size_t>(r));
                if (c.got.find("\r\n\r\n") != std::string::npos || r <= 0) {
                    if (c.got.rfind("HTTP/1.1 101", 0) == 0)
                        ++upgraded;
                    else if (!c.got.empty())
                        ++refused;
                    else
                        ++errors;
                    finish(slot);
                    open_one(slot);
                }
            }
        }
    }
    const double wall = static_cast<double>(wall_ns() - t0) * 1e-9;
    const double cpu = cpu_seconds(RUSAGE_SELF) - cpu0;
    for (std::size_t i = 0; i < conns.size(); ++i) {
        if (conns[i].fd >= 0)
            finish(i);
    }
    if (o.json) {
        std::printf(
            "{\"churn_s\":%.3f,\"upgraded\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"upgrades_per_s\":%.0f,\"inflight\":%d,\"loadgen_cpu_s\":%.3f,\"loadgen_cpu_share\":%.3f}\n",
            wall, upgraded, refused, errors, upgraded / wall, o.churn_inflight, cpu, cpu / wall);
    } else {
        std::printf(
            "churn: %" PRIu64 " WebSocket upgrades and closes in %.2f s = %.0f/s (%d in flight); %" PRIu64
            " refused, %" PRIu64 " errors; loadgen CPU %.2f s (%.0f%% of one core)\n",
            upgraded, wall, upgraded / wall, o.churn_inflight, refused, errors, cpu, 100 * cpu / wall);
    }
    return errors == 0 && refused == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    options o = parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (!o.tls_ca_file.empty()) {
        if (o.churn_s > 0)
            die("--churn does not speak TLS (it measures plaintext upgrade storms); drop --tls-ca-file");
        make_tls_context(o);
    }
    const bool kafka = o.trigger == "kafka";
    if (o.path.empty())
        o.path = "/v1/ws?audience=" + o.audience;
    const char* token_sep = o.path.find('?') == std::string::npos ? "?token=" : "&token=";
    if (o.tokens.size() == 1)
        o.path += token_sep + o.tokens.front();
    // Announcements produced before heraldd's partition assignment would not be seen.
    for (int tries = 0; kafka; ++tries) {
        std::string tls_error;
        if (http_get(o.ops, "/readyz", &tls_error) == "ready\n")
            break;
        if (!tls_error.empty())
            die("TLS handshake with the ops port " + o.ops + " refused: " + tls_error);
        if (tries == 300)
            die("heraldd at " + o.ops + " did not become ready");
        usleep(100'000);
    }
    // The ops key for /v1/info: --api-key-file, HERALD_API_KEY, else the one
    // heraldd generated (read now: a fresh heraldd writes it at start).
    g_api_key = o.api_key;
    if (g_api_key.empty() && std::getenv("HERALD_API_KEY") != nullptr)
        g_api_key = std::getenv("HERALD_API_KEY");
    if (g_api_key.empty()) {
        const char* dir = std::getenv("HERALD_DATA_DIR");
        g_api_key = first_line(std::string(dir != nullptr ? dir : "herald-data") + "/admin.key");
    }
    if (kafka && (o.port == 0 || o.brokers.empty())) {
        const std::string info = http_get(o.ops, "/v1/info");
        if (info.empty())
            die("cannot read /v1/info from " + o.ops + " (is heraldd running? or pass --port and --brokers)");
        if (json_field(info, "client_port").empty())
            die("/v1/info from " + o.ops + " answered " + info.substr(0, 200) +
                " (an ops API key: --api-key-file, HERALD_API_KEY or HERALD_DATA_DIR)");
        if (o.port == 0)
            o.port = std::stoi(json_field(info, "client_port"));
        if (o.brokers.empty())
            o.brokers = json_field(info, "bootstrap_servers");
    }
    if (o.churn_s > 0)
        return run_churn(o);
    if (o.procs <= 0)
        o.procs = std::max(1, (o.connections + 14999) / 15000);
    const int instances = 1 + static_cast<int>(o.more_ports.size());
    o.procs = (o.procs + instances - 1) / instances * instances;  // equal share per instance
    const long rss_before = server_rss_kib(o.server_pid, o.server_name);

    std::vector<worker_handle> workers;
    for (int w = 0; w < o.procs; ++w) {
        int cmd[2], rep[2];
        if (pipe(cmd) != 0 || pipe(rep) != 0)
            die("pipe");
        const int share = o.connections / o.procs + (w < o.connections % o.procs ? 1 : 0);
        const pid_t pid = fork();
        if (pid == 0) {
            ::close(cmd[1]);
            ::close(rep[0]);
            worker(o, w, share, cmd[0], rep[1]).run();
        }
        ::close(cmd[0]);
        ::close(rep[1]);
        workers.push_back({pid, cmd[1], rep[0]});
    }
    int connected = 0;
    std::string tls_negotiated;  // as the first worker's connections saw it
    for (auto& w : workers) {
        report_head head{};
        tls_report tls{};
        if (!read_all(w.report_fd, &head, sizeof head) || !read_all(w.report_fd, &tls, sizeof tls))
            die("worker failed while connecting");
        connected += head.connected;
        if (tls_negotiated.empty())
            tls_negotiated.assign(tls.negotiated, strnlen(tls.negotiated, sizeof tls.negotiated));
    }
    if (g_tls != nullptr && connected == 0)
        die("no subscriber completed the TLS handshake (see above)");
    usleep(500'000);  // let the server settle (gauges, memory)
    const long rss_after = server_rss_kib(o.server_pid, o.server_name);
    const double rss_per_conn = rss_before > 0 && connected > 0
                                    ? static_cast<double>(rss_after - rss_before) * 1024.0 / connected
                                    : -1;

    std::unique_ptr<producer> prod;
    if (kafka)
        prod = std::make_unique<producer>(o.brokers);
    const auto publish = [&](const std::string& json) {
        if (kafka) {
            prod->send(o.audience, json);
            prod->flush();
        } else if (o.trigger.rfind("nats-pub:", 0) == 0) {
            nats_publish(o.trigger.substr(std::string("nats-pub:").size()), {json});
        } else {
            post(o.trigger.substr(std::string("http-post:").size()), json);
        }
    };
    const std::string text(static_cast<std::size_t>(o.payload_bytes), 'x');
    const double cpu_start = cpu_seconds(RUSAGE_SELF);
    const auto wall_start = std::chrono::steady_clock::now();
    double worker_cpu = 0;
    bool all_delivered = connected == o.connections;

    if (!o.json) {
        std::printf(
            "herald-loadgen: %d/%d connections open over %d process(es)%s%s; server RSS %.0f "
            "bytes/connection\n",
            connected, o.connections, o.procs, tls_negotiated.empty() ? "" : ", TLS ", tls_negotiated.c_str(),
            rss_per_conn);
        std::printf("%-10s %9s %10s %10s %10s %10s %14s\n", "broadcast", "delivered", "p50 ms", "p99 ms",
                    "max ms", "spread ms", "deliveries/s");
    }
    if (o.hold_s > 0) {
        // Subscribers that read everything someone else publishes (overload
        // runs): a round waiting for an id nobody sends lasts the hold time.
        start_round(workers, "lg-hold-never-published", o.hold_s * 1000, 1);
        const result r = finish_round(workers);
        std::printf("held %d connections for %d s, reading; loadgen CPU %.2f s\n", connected, o.hold_s,
                    cpu_seconds(RUSAGE_SELF) + r.cpu_s - cpu_start);
        for (auto& w : workers) {
            command stop{};
            write_all(w.cmd_fd, &stop, sizeof stop);
            waitpid(w.pid, nullptr, 0);
        }
        return 0;
    }
    std::string json_broadcasts;
    const std::int64_t run_tag = wall_ns() / 1000;
    // Round -1 warms up (producer metadata, peers' first-publish paths) and is not reported.
    for (int b = -1; b < o.broadcasts; ++b) {
        const std::string id = "lg-" + std::to_string(run_tag) + "-w" + std::to_string(b + 1);
        start_round(workers, id, o.timeout_s * 1000, o.burst);
        usleep(20'000);  // workers are back in epoll_wait
        const bool held = kafka && o.release_delay_ms > 0;
        const std::int64_t release =
            held ? wall_ns() + static_cast<std::int64_t>(o.release_delay_ms) * 1'000'000 : wall_ns();
        const std::string tail = "\",\"audience\":\"" + o.audience + "\",\"text\":\"" + text + "\"" +
                                 (held ? ",\"deliver_at\":\"" + rfc3339(release) + "\"" : std::string()) +
                                 "}";
        if (o.burst == 1) {
            publish("{\"id\":\"" + id + tail);
        } else if (kafka) {
            for (int k = 0; k < o.burst; ++k)
                prod->send(o.audience, "{\"id\":\"" + id + "-" + std::to_string(k) + tail);
            prod->flush();
        } else if (o.trigger.rfind("nats-pub:", 0) == 0) {
            std::vector<std::string> bodies;
            for (int k = 0; k < o.burst; ++k)
                bodies.push_back("{\"id\":\"" + id + "-" + std::to_string(k) + tail);
            nats_publish(o.trigger.substr(std::string("nats-pub:").size()), bodies);
        } else {
            for (int k = 0; k < o.burst; ++k) publish("{\"id\":\"" + id + "-" + std::to_string(k) + tail);
        }
        const result r = finish_round(workers);
        if (b < 0)
            continue;
        worker_cpu += r.cpu_s;
        all_delivered &= r.received == r.expected;
        const double spread =
            r.times.empty() ? 0 : static_cast<double>(r.times.back() - r.times.front()) / 1e6;
        const double last_s = r.times.empty() ? 0 : static_cast<double>(r.times.back() - release) / 1e9;
        const double rate = last_s > 0 ? static_cast<double>(r.received) * o.burst / last_s : 0;
        const double p50 = pct_ms(r.times, 0.50, release), p99 = pct_ms(r.times, 0.99, release),
                     mx = pct_ms(r.times, 1.0, release);
        if (o.json) {
            char buf[512];
            std::snprintf(buf, sizeof buf,
                          "%s{\"id\":\"%s\",\"delivered\":%d,\"expected\":%d,\"latency_p50_ms\":%.3f,"
                          "\"latency_p99_ms\":%.3f,"
                          "\"latency_max_ms\":%.3f,\"spread_ms\":%.3f,\"deliveries_per_s\":%.0f}",
                          json_broadcasts.empty() ? "" : ",", id.c_str(), r.received, r.expected, p50, p99,
                          mx, spread, rate);
            json_broadcasts += buf;
        } else {
            std::printf("%-10d %4d/%-4d %10.2f %10.2f %10.2f %10.2f %14.0f\n", b, r.received, r.expected, p50,
                        p99, mx, spread, rate);
        }
    }
    // Kafka-to-socket at idle: no deliver_at; origin = just before produce.
    std::vector<double> idle_p50, idle_p99;
    for (int k = 0; k < o.idle_samples; ++k) {
        const std::string id = "lg-idle-" + std::to_string(run_tag) + "-" + std::to_string(k);
        start_round(workers, id, o.timeout_s * 1000, 1);
        usleep(20'000);  // workers are back in epoll_wait
        const std::int64_t origin = wall_ns();
        publish("{\"id\":\"" + id + "\",\"audience\":\"" + o.audience + "\",\"text\":\"" + text + "\"}");
        const result r = finish_round(workers);
        worker_cpu += r.cpu_s;
        idle_p50.push_back(pct_ms(r.times, 0.5, origin));
        idle_p99.push_back(pct_ms(r.times, 0.99, origin));
        usleep(50'000);
    }
    std::sort(idle_p50.begin(), idle_p50.end());
    std::sort(idle_p99.begin(), idle_p99.end());
    const double idle50 = idle_p50.empty() ? 0 : idle_p50[idle_p50.size() / 2];
    // p99 across samples of each sample's slowest recipient's p99.
    const double idle99 =
        idle_p99.empty()
            ? 0
            : idle_p99[std::min(idle_p99.size() - 1,
                                static_cast<std::size_t>(0.99 * static_cast<double>(idle_p99.size())))];
    const double wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    const double cpu_total = cpu_seconds(RUSAGE_SELF) - cpu_start + worker_cpu;

    for (auto& w : workers) {
        command stop{};
        write_all(w.cmd_fd, &stop, sizeof stop);
    }
    for (auto& w : workers) waitpid(w.pid, nullptr, 0);

    if (o.json) {
        std::printf(
            "{\"connections\":%d,\"connected\":%d,\"procs\":%d,\"tls\":\"%s\",\"rss_idle_per_conn_bytes\":%."
            "0f,"
            "\"broadcasts\":[%s],"
            "\"kafka_to_socket_p50_ms\":%.3f,\"kafka_to_socket_p99_ms\":%.3f,\"loadgen_cpu_s\":%.3f,"
            "\"loadgen_cpu_share\":%.3f,\"wall_s\":%.3f}\n",
            o.connections, connected, o.procs, tls_negotiated.c_str(), rss_per_conn, json_broadcasts.c_str(),
            idle50, idle99, cpu_total, cpu_total / wall_s, wall_s);
    } else {
        std::printf("kafka-to-socket at idle (%d single announcements): p50 %.2f ms, p99 %.2f ms\n",
                    o.idle_samples, idle50, idle99);
        std::printf(
            "loadgen CPU %.2f s over %.2f s wall (%.0f%% of one core, incl. waiting for release instants)\n",
            cpu_total, wall_s, 100 * cpu_total / wall_s);
    }
    return all_delivered ? 0 : 2;
}
