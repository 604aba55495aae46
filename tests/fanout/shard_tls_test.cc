// The fan-out core over TLS: the same shards and sessions as shard_test.cc,
// with a certificate from a CA the test makes. Each connection encrypts its
// own records, but the frame is encoded once: every subscriber decrypts the
// same bytes, Herald allocates nothing per recipient (OpenSSL 3.0's record
// layer makes three small allocations per record of its own: counted apart
// and held to that), and a handshake that fails or stalls is counted and
// touches no other connection.
#include <openssl/crypto.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <new>

// Allocation counting: operator new and OpenSSL's allocator. GCC sees
// through the replacement and warns about malloc/delete pairs; they match.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<bool> g_count_allocations{false};
static std::atomic<std::uint64_t> g_allocations{0};
static std::atomic<std::uint64_t> g_openssl_allocations{0};

void* operator new(std::size_t size) {
    if (g_count_allocations.load(std::memory_order_relaxed))
        g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {
void* counted_malloc(std::size_t n, const char* /*file*/, int /*line*/) {
    if (g_count_allocations.load(std::memory_order_relaxed))
        g_openssl_allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n);
}
void* counted_realloc(void* p, std::size_t n, const char* /*file*/, int /*line*/) {
    if (g_count_allocations.load(std::memory_order_relaxed))
        g_openssl_allocations.fetch_add(1, std::memory_order_relaxed);
    return std::realloc(p, n);
}
void counted_free(void* p, const char* /*file*/, int /*line*/) {
    std::free(p);
}
// Before OpenSSL allocates anything (it initialises lazily, in main).
const bool g_openssl_counted = CRYPTO_set_mem_functions(counted_malloc, counted_realloc, counted_free) == 1;
}  // namespace

#include "fanout/shard_fixture.h"
#include "support/test_certs.h"
#include "tls/server_context.h"

namespace herald::fanout {
namespace {

class ShardTlsTest : public ShardTest {
  protected:
    void SetUp() override {
        // OpenSSL writes with write(2): a closed peer raises SIGPIPE, which heraldd ignores.
        std::signal(SIGPIPE, SIG_IGN);
        dir_ = std::filesystem::temp_directory_path() /
               ("herald-shard-tls-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        ca_ = std::make_unique<testing::private_ca>(dir_, "shard");
        const auto server = ca_->server("server", "herald.test");
        auto ctx = tls::server_context::load({server.cert_file, server.key_file, {}}, false);
        ASSERT_TRUE(ctx) << ctx.err().detail;
        server_ctx_ = *ctx;
        tls_client_ = peer::tls_options{ca_->ca_file()};
        make_tls_shards(2, {});
    }
    void TearDown() override {
        ShardTest::TearDown();
        std::filesystem::remove_all(dir_);
    }

    void make_tls_shards(std::uint32_t n, shard_options opts) {
        opts.tls = server_ctx_.get();
        opts.on_tls_failure = [this](std::string_view reason) {
            std::lock_guard lock(failures_mu_);
            failures_.emplace_back(reason);
        };
        make_shards(n, opts);
    }

    std::vector<std::string> failures() {
        std::lock_guard lock(failures_mu_);
        return failures_;
    }

    std::filesystem::path dir_;
    std::unique_ptr<testing::private_ca> ca_;
    std::shared_ptr<tls::server_context> server_ctx_;
    std::mutex failures_mu_;
    std::vector<std::string> failures_;
};

TEST_F(ShardTlsTest, EveryMemberDecryptsTheSameFrameOverItsOwnTlsConnection) {
    ASSERT_TRUE(g_openssl_counted) << "OpenSSL allocated before the test could count it";
    std::vector<peer> ws, sse;
    for (int i = 0; i < 12; ++i) ws.push_back(subscribe_ws(i % 2, "audience=lineup.rock"));
    for (int i = 0; i < 6; ++i) sse.push_back(subscribe_sse(i % 2, "audience=lineup.rock"));
    peer other = subscribe_ws(0, "audience=lineup.jazz");
    settle();
    EXPECT_EQ(ws[0].alpn(), "http/1.1");
    EXPECT_TRUE(ws[0].tls_version() == "TLSv1.3" || ws[0].tls_version() == "TLSv1.2") << ws[0].tls_version();

    auto b = announce("a1", "lineup.rock", "Headliner moved to 21:00", 41);
    ASSERT_TRUE(wait_done(1));
    EXPECT_EQ(b->live.recipients.load(), 18u);
    for (auto& p : ws) {
        ASSERT_TRUE(p.read_data_frame());
        EXPECT_EQ(p.raw_last_, b->websocket_frame);
    }
    for (auto& p : sse) {
        auto ev = p.read_sse_event();
        ASSERT_TRUE(ev);
        EXPECT_EQ(*ev, b->sse_frame);
    }
    EXPECT_FALSE(other.read_data_frame(150));
    EXPECT_TRUE(failures().empty());
}

TEST_F(ShardTlsTest, ABurstArrivesCompleteAndInOrder) {
    peer p = subscribe_ws(0, "audience=ticker");
    peer s = subscribe_sse(1, "audience=ticker");
    settle();
    std::vector<broadcast_ptr> sent;
    for (int i = 0; i < 20; ++i)
        sent.push_back(announce("t" + std::to_string(i), "ticker", "goal " + std::to_string(i), i));
    ASSERT_TRUE(wait_done(20));
    for (const auto& b : sent) {
        ASSERT_TRUE(p.read_data_frame());
        EXPECT_EQ(p.raw_last_, b->websocket_frame);
        auto ev = s.read_sse_event();
        ASSERT_TRUE(ev);
        EXPECT_EQ(*ev, b->sse_frame);
    }
}

// A subscriber that stops reading fills its socket and its queue while
// OpenSSL holds a half-sent record: the close follows that record at once
// (not the whole 1 MiB queue behind it), after whole frames only.
TEST_F(ShardTlsTest, SlowConsumerIsClosedWith1008AfterWholeFrames) {
    shard_options opts;
    opts.session.send_queue_frames = 1000;
    opts.session.send_queue_bytes = 1 << 20;
    make_tls_shards(1, opts);
    peer slow = subscribe_ws(0, "audience=flood");
    peer healthy = subscribe_ws(0, "audience=flood");
    settle();
    const std::string big(60 * 1024, 'x');
    std::atomic<bool> reading{true};
    std::atomic<int> healthy_frames{0};
    std::thread reader([&] {
        while (reading) {
            if (auto f = healthy.read_data_frame(200))
                ++healthy_frames;
        }
    });
    const int count = 64;
    for (int i = 0; i < count; ++i) {
        announce("f" + std::to_string(i), "flood", big, i);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (healthy_frames.load() <= i && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ASSERT_TRUE(wait_done(count, 10000));
    std::optional<testing::ws_frame> last;
    int whole = 0;
    while (auto f = slow.read_frame(2000)) {
        last = f;
        if (f->opcode == 0x8)
            break;
        EXPECT_NE(f->payload.find(big), std::string::npos) << "a frame was cut";
        ++whole;
    }
    ASSERT_TRUE(last);
    EXPECT_EQ(last->opcode, 0x8);
    EXPECT_EQ(last->close_code(), 1008);
    EXPECT_GT(whole, 0);
    // The socket pair buffers a few 60 KiB frames; the queued 1 MiB is dropped at the close.
    EXPECT_LT(whole, 10) << "the close waited behind the queued frames";
    reading = false;
    reader.join();
    EXPECT_EQ(healthy_frames.load(), count);
}

TEST_F(ShardTlsTest, FailedAndStalledHandshakesAreCountedAndStallNobody) {
    shard_options opts;
    opts.session.handshake_timeout = std::chrono::milliseconds(300);
    make_tls_shards(1, opts);
    peer good = subscribe_ws(0, "audience=news");
    // Plain HTTP to the TLS port, and a client that connects and says nothing.
    auto save = tls_client_;
    tls_client_.reset();
    peer plaintext = connect(0);
    ASSERT_TRUE(plaintext.send_all("GET /v1/ws?audience=news HTTP/1.1\r\nHost: x\r\n\r\n"));
    peer silent = connect(0);
    tls_client_ = save;
    settle();
    auto b = announce("n1", "news", "still flowing", 1);
    ASSERT_TRUE(wait_done(1));
    ASSERT_TRUE(good.read_data_frame());
    EXPECT_EQ(good.raw_last_, b->websocket_frame);
    EXPECT_TRUE(plaintext.wait_eof(3000));
    EXPECT_TRUE(silent.wait_eof(5000)) << "a silent client was not dropped after the handshake timeout";
    const auto seen = failures();
    EXPECT_NE(std::find(seen.begin(), seen.end(), "plaintext_http"), seen.end());
    EXPECT_NE(std::find(seen.begin(), seen.end(), "timeout"), seen.end());
}

TEST_F(ShardTlsTest, ReloadedCertificateReachesNewConnectionsOnly) {
    peer before = subscribe_ws(0, "audience=gate");
    EXPECT_EQ(before.peer_common_name(), "herald.test");
    // Same files, new contents: a certificate with another name.
    const auto renewed = ca_->server("server", "herald-renewed.test");
    (void)renewed;
    ASSERT_TRUE(server_ctx_->reload());
    peer after = subscribe_ws(0, "audience=gate");
    EXPECT_EQ(after.peer_common_name(), "herald-renewed.test");
    settle();
    auto b = announce("g1", "gate", "Gate B7", 1);
    ASSERT_TRUE(wait_done(1));
    for (auto* p : {&before, &after}) {
        ASSERT_TRUE(p->read_data_frame());
        EXPECT_EQ(p->raw_last_, b->websocket_frame);
    }
}

// No allocation per recipient by Herald over TLS either: the frame is
// encrypted straight from the shared buffer, and OpenSSL's record buffers are
// per connection, made at its first write (the warm-up round). OpenSSL 3.0
// itself allocates three 40-byte WPACKET sub-packets per record
// (crypto/packet.c); that is held to at most three per recipient, so a
// change that frees and remakes record buffers per write
// (SSL_MODE_RELEASE_BUFFERS) shows up here. Kernel TLS has none of them.
TEST_F(ShardTlsTest, NoPerRecipientAllocation) {
    ASSERT_TRUE(g_openssl_counted);
    make_tls_shards(1, {});
    struct counts {
        std::uint64_t herald = 0;
        std::uint64_t openssl = 0;
    };
    auto measure = [&](int recipients, const std::string& audience) -> counts {
        std::vector<peer> peers;
        for (int i = 0; i < recipients; ++i) peers.push_back(subscribe_ws(0, "audience=" + audience));
        settle();
        std::int64_t offset = 1000;
        counts result;
        for (int round = 0; round < 3; ++round) {
            herald::v1::Announcement a;
            a.set_id("alloc");
            a.set_audience(audience);
            a.set_text("same bytes for everyone");
            auto b = model::build_broadcast(a, model::seq_at(model::kafka_offset(offset)), at(offset));
            ++offset;
            b->live.shards_pending = 1;
            g_allocations = 0;
            g_openssl_allocations = 0;
            g_count_allocations = true;
            EXPECT_TRUE(shards_[0]->try_enqueue(b));
            while (b->live.shards_pending.load() != 0) std::this_thread::yield();
            g_count_allocations = false;
            result = {g_allocations.load(), g_openssl_allocations.load()};
            for (auto& p : peers) EXPECT_TRUE(p.read_data_frame());
        }
        return result;
    };
    const counts small = measure(10, "small");
    const counts large = measure(500, "large");
    EXPECT_LE(large.herald, small.herald + 2)
        << "Herald's allocations grew with recipients over TLS: " << small.herald << " for 10, "
        << large.herald << " for 500";
    EXPECT_LE(large.openssl, small.openssl + 3 * 500)
        << "OpenSSL allocates more than its three WPACKET blocks per record: " << large.openssl << " for 500";
    std::printf(
        "allocations per broadcast: Herald %llu for 10, %llu for 500; OpenSSL %llu for 10, %llu for 500\n",
        static_cast<unsigned long long>(small.herald), static_cast<unsigned long long>(large.herald),
        static_cast<unsigned long long>(small.openssl), static_cast<unsigned long long>(large.openssl));
}

}  // namespace
}  // namespace herald::fanout
