// Is io_uring worth it for fan-out? The live hot path writes one small frame
// to each of N connections: one send(2) per recipient. io_uring can submit
// all N sends with one system call. This benchmark measures both on the same
// N loopback TCP connections, with a receiver thread draining them the way a
// client would, so what the kernel does per segment (TCP output, loopback
// input, waking the reader) is paid in both variants and only the system-call
// and submission cost differs. Only the sending loop is timed.
//
//   build/bench/send_path_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t frame_size = 64;

/// N connected loopback pairs; the client ends are drained by a thread.
class loopback_fanout {
  public:
    explicit loopback_fanout(int n) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(listener_, 4096);
        socklen_t len = sizeof addr;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
        const int one = 1;
        for (int i = 0; i < n; ++i) {
            const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            (void)::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
            const int s = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            servers_.push_back(s);
            clients_.push_back(c);
        }
        receiver_ = std::thread([this] { drain(); });
    }
    ~loopback_fanout() {
        stop_.store(true);
        receiver_.join();
        for (const int fd : servers_) ::close(fd);
        for (const int fd : clients_) ::close(fd);
        ::close(listener_);
    }
    loopback_fanout(const loopback_fanout&) = delete;
    loopback_fanout& operator=(const loopback_fanout&) = delete;

    [[nodiscard]] const std::vector<int>& server_fds() const noexcept { return servers_; }

    /// Waits until every frame sent so far has been read.
    void wait_received(std::uint64_t frames) const {
        while (received_.load(std::memory_order_acquire) < frames) std::this_thread::yield();
    }

  private:
    void drain() {
        const int ep = ::epoll_create1(EPOLL_CLOEXEC);
        for (const int fd : clients_) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = fd;
            ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        epoll_event events[512];
        char buf[4096];
        while (!stop_.load(std::memory_order_relaxed)) {
            const int k = ::epoll_wait(ep, events, 512, 20);
            for (int i = 0; i < k; ++i) {
                const ssize_t r = ::read(events[i].data.fd, buf, sizeof buf);
                if (r > 0)
                    received_.fetch_add(static_cast<std::uint64_t>(r) / frame_size,
                                        std::memory_order_release);
            }
        }
        ::close(ep);
    }

    int listener_ = -1;
    std::vector<int> servers_;
    std::vector<int> clients_;
    std::thread receiver_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> received_{0};
};

const char frame[frame_size] = "{\"id\":\"a1\",\"audience\":\"x\",\"seq\":1,\"text\":\"Headliner at 21\"}";

void BM_SendPerRecipient(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    loopback_fanout fan(n);
    std::uint64_t sent = 0;
    for (auto _ : state) {
        for (const int fd : fan.server_fds()) {
            if (::send(fd, frame, frame_size, MSG_NOSIGNAL | MSG_DONTWAIT) ==
                static_cast<ssize_t>(frame_size))
                ++sent;
        }
        state.PauseTiming();
        fan.wait_received(sent);
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(sent));
    state.counters["recipients"] = n;
}

void BM_SendIoUringBatch(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    loopback_fanout fan(n);
    io_uring ring{};
    if (io_uring_queue_init(4096, &ring, 0) < 0) {
        state.SkipWithError("io_uring not available");
        return;
    }
    std::uint64_t sent = 0;
    for (auto _ : state) {
        const auto& fds = fan.server_fds();
        std::size_t next = 0;
        while (next < fds.size()) {
            unsigned queued = 0;
            while (next < fds.size()) {
                io_uring_sqe* sqe = io_uring_get_sqe(&ring);
                if (sqe == nullptr)
                    break;
                io_uring_prep_send(sqe, fds[next++], frame, frame_size, MSG_NOSIGNAL | MSG_DONTWAIT);
                ++queued;
            }
            io_uring_submit_and_wait(&ring, queued);
            io_uring_cqe* cqe = nullptr;
            unsigned head = 0;
            unsigned seen = 0;
            io_uring_for_each_cqe(&ring, head, cqe) {
                if (cqe->res == static_cast<int>(frame_size))
                    ++sent;
                ++seen;
            }
            io_uring_cq_advance(&ring, seen);
        }
        state.PauseTiming();
        fan.wait_received(sent);
        state.ResumeTiming();
    }
    io_uring_queue_exit(&ring);
    state.SetItemsProcessed(static_cast<std::int64_t>(sent));
    state.counters["recipients"] = n;
}

BENCHMARK(BM_SendPerRecipient)->Arg(1000)->Arg(5000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SendIoUringBatch)->Arg(1000)->Arg(5000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
