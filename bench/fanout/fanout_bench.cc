// Micro-benchmarks of the fan-out hot path, one stage each:
//   queue hop       — a broadcast pointer through a moodycamel queue
//   frame build     — decode-to-frames work done once per announcement
//   shard release   — one shard writing one shared frame to N real sockets
// Run with --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// to get median and spread (see bench/RESULTS.md for the exact commands).
#include <benchmark/benchmark.h>
#include <concurrentqueue/concurrentqueue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "fanout/dispatcher.h"
#include "fanout/shard.h"
#include "metrics/registry.h"
#include "model/build.h"

namespace herald::fanout {
using model::broadcast;
using model::broadcast_ptr;
namespace {

herald::v1::Announcement sample(std::size_t text_bytes) {
    herald::v1::Announcement a;
    a.set_id("bench-1");
    a.set_audience("lineup.rock-am-ring");
    a.set_text(std::string(text_bytes, 'x'));
    (*a.mutable_labels())["stage"] = "main";
    return a;
}

void BM_QueueHopSingleThread(benchmark::State& state) {
    moodycamel::ConcurrentQueue<broadcast_ptr> q(1024);
    moodycamel::ProducerToken ptok(q);
    moodycamel::ConsumerToken ctok(q);
    auto b = std::make_shared<const broadcast>();
    broadcast_ptr out;
    for (auto _ : state) {
        q.enqueue(ptok, b);
        q.try_dequeue(ctok, out);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueueHopSingleThread);

// One producer thread (the dispatcher) to one consumer (a shard), as in heraldd.
void BM_QueueHopAcrossThreads(benchmark::State& state) {
    const std::int64_t batch = 100000;
    for (auto _ : state) {
        moodycamel::ConcurrentQueue<broadcast_ptr> q(static_cast<std::size_t>(batch));
        auto b = std::make_shared<const broadcast>();
        std::thread consumer([&] {
            broadcast_ptr items[64];
            std::int64_t got = 0;
            while (got < batch) got += static_cast<std::int64_t>(q.try_dequeue_bulk(items, 64));
        });
        for (std::int64_t i = 0; i < batch; ++i) q.enqueue(b);
        consumer.join();
    }
    state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_QueueHopAcrossThreads)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BuildBroadcastFrames(benchmark::State& state) {
    const auto a = sample(static_cast<std::size_t>(state.range(0)));
    std::uint64_t seq = 1;
    for (auto _ : state) {
        auto b = model::build_broadcast(a, model::seq_no(seq++),
                                        {model::kafka_partition(0), model::kafka_offset(1)});
        benchmark::DoNotOptimize(b);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_BuildBroadcastFrames)->Arg(64)->Arg(1024)->Arg(16384);

// One shard releasing one broadcast to N WebSocket sessions on socketpairs
// (real sessions after a real handshake; the kernel's socket buffer is the
// in-memory sink). Timed: enqueue until the shard reports the broadcast done.
void BM_ShardRelease(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    metrics::registry registry;
    probe p(registry, 1);
    channels::connection_budget budget;
    shard s(base::shard_id(0), {}, p, budget, {});
    s.start();
    std::vector<int> clients;
    const std::string handshake =
        "GET /v1/ws?audience=lineup.rock-am-ring HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    char buf[65536];
    for (int i = 0; i < n; ++i) {
        int fds[2];
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
        std::promise<void> adopted;
        boost::asio::post(s.io_context(), [&s, fd = fds[0], &adopted] {
            boost::asio::ip::tcp::socket sock(s.io_context());
            sock.assign(boost::asio::ip::tcp::v4(), fd);
            s.adopt({std::move(sock), std::nullopt, 0});
            adopted.set_value();
        });
        adopted.get_future().wait();
        [[maybe_unused]] auto w = ::write(fds[1], handshake.data(), handshake.size());
        [[maybe_unused]] auto r = ::read(fds[1], buf, sizeof buf);  // the 101 response
        clients.push_back(fds[1]);
    }
    const auto a = sample(64);
    std::uint64_t seq = 1;
    std::uint64_t last_recipients = 0;
    for (auto _ : state) {
        auto b = model::build_broadcast(
            a, model::seq_no(seq),
            {model::kafka_partition(0), model::kafka_offset(static_cast<std::int64_t>(seq))});
        ++seq;
        b->live.shards_pending = 1;
        const auto start = std::chrono::steady_clock::now();
        (void)s.try_enqueue(b);
        while (b->live.shards_pending.load(std::memory_order_acquire) != 0) {
        }
        const auto end = std::chrono::steady_clock::now();
        state.SetIterationTime(std::chrono::duration<double>(end - start).count());
        last_recipients = b->live.recipients.load();
        // Every send completed before shards_pending hit 0: drain without blocking.
        for (int fd : clients) {
            while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
            }
        }
    }
    state.SetItemsProcessed(state.iterations() * n);
    // Guard against measuring a broken run: every recipient must have been written.
    state.counters["recipients"] = static_cast<double>(last_recipients);
    s.shutdown(1001, "", std::chrono::milliseconds(200));
    for (int fd : clients) ::close(fd);
}
BENCHMARK(BM_ShardRelease)
    ->Arg(100)
    ->Arg(1000)
    ->Arg(5000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);

}  // namespace
}  // namespace herald::fanout

BENCHMARK_MAIN();
