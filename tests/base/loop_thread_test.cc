#include "base/loop_thread.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace herald::base {
namespace {

using namespace std::chrono_literals;

/// Generous bound for anything that should happen "soon" on a loop thread.
constexpr auto kDeadline = 5s;

/// Waits until `pred` holds or the deadline passes; returns whether it held.
template <class Pred>
bool wait_until(Pred pred, std::chrono::steady_clock::duration limit = kDeadline) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= end)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/// Runs `fn` on a detached helper thread; the future is ready once it returned.
std::shared_future<void> in_background(std::function<void()> fn) {
    auto done = std::make_shared<std::promise<void>>();
    std::shared_future<void> out = done->get_future().share();
    std::thread([fn = std::move(fn), done] {
        fn();
        done->set_value();
    }).detach();
    return out;
}

/// Waits for a background call; a call that hangs (a stop() that never joins)
/// aborts the binary with a message instead of hanging the test run.
void must_finish(const std::shared_future<void>& f, const char* what) {
    if (f.wait_for(kDeadline) != std::future_status::ready) {
        std::fprintf(
            stderr, "%s did not return within %lld s\n", what,
            static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(kDeadline).count()));
        std::abort();
    }
}

TEST(LoopThread, PostRunsOnTheLoopThread) {
    loop_thread loop("lt-post");
    EXPECT_FALSE(loop.running());
    loop.start();
    EXPECT_TRUE(loop.running());
    EXPECT_FALSE(loop.is_current());

    std::promise<std::pair<bool, std::thread::id>> seen;
    loop.post([&] { seen.set_value({loop.is_current(), std::this_thread::get_id()}); });
    auto fut = seen.get_future();
    ASSERT_EQ(fut.wait_for(kDeadline), std::future_status::ready);
    const auto [current, id] = fut.get();
    EXPECT_TRUE(current);
    EXPECT_NE(id, std::this_thread::get_id());
    EXPECT_FALSE(loop.is_current());

    loop.stop();
    EXPECT_FALSE(loop.running());
}

TEST(LoopThread, WorkPostedBeforeStartRunsAfterStartInOrder) {
    loop_thread loop("lt-order");
    std::mutex mu;
    std::vector<int> order;
    std::atomic<bool> ran_early{false};
    for (int i = 0; i < 5; ++i) {
        loop.post([&, i] {
            std::lock_guard lock(mu);
            order.push_back(i);
        });
    }
    // Nothing runs before start().
    std::this_thread::sleep_for(20ms);
    {
        std::lock_guard lock(mu);
        ran_early = !order.empty();
    }
    EXPECT_FALSE(ran_early.load());

    loop.start();
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mu);
        return order.size() == 5;
    }));
    loop.stop();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(LoopThread, RunAndWaitRunsOnTheLoopAndReturnsAfterFn) {
    loop_thread loop("lt-wait");
    loop.start();
    bool ran = false;
    bool on_loop = false;
    std::thread::id where;
    loop.run_and_wait([&] {
        std::this_thread::sleep_for(20ms);  // a caller that did not wait would see ran == false
        on_loop = loop.is_current();
        where = std::this_thread::get_id();
        ran = true;
    });
    EXPECT_TRUE(ran);
    EXPECT_TRUE(on_loop);
    EXPECT_NE(where, std::this_thread::get_id());

    // Ordered after what was posted before it.
    std::vector<int> order;
    loop.post([&] { order.push_back(1); });
    loop.run_and_wait([&] { order.push_back(2); });
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
    loop.stop();
}

TEST(LoopThread, RunAndWaitRunsInlineWhenNotRunning) {
    loop_thread loop("lt-inline");
    std::thread::id where;
    std::thread::id caller;
    const auto call = [&] {
        caller = std::this_thread::get_id();
        loop.run_and_wait([&] { where = std::this_thread::get_id(); });
    };
    must_finish(in_background(call), "run_and_wait() before start()");
    EXPECT_EQ(where, caller);

    loop.start();
    loop.stop();
    where = {};
    must_finish(in_background(call), "run_and_wait() after stop()");
    EXPECT_EQ(where, caller);
}

TEST(LoopThread, RepeatCallsStepUntilStop) {
    loop_thread loop("lt-repeat");
    std::atomic<int> steps{0};
    std::atomic<bool> off_loop{false};
    loop.repeat([&] {
        if (!loop.is_current())
            off_loop = true;
        ++steps;
        std::this_thread::sleep_for(1ms);  // a blocking poll with a short timeout
    });
    loop.start();
    ASSERT_TRUE(wait_until([&] { return steps.load() >= 5; })) << steps.load();

    // Other work still gets a turn between steps.
    std::promise<void> other;
    loop.post([&] { other.set_value(); });
    EXPECT_EQ(other.get_future().wait_for(kDeadline), std::future_status::ready);

    must_finish(in_background([&] { loop.stop(); }), "stop() with repeat() active");
    EXPECT_FALSE(off_loop.load());

    const int after_stop = steps.load();
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(steps.load(), after_stop);
}

TEST(LoopThread, EveryTicksPeriodicallyAndStopsAfterStop) {
    loop_thread loop("lt-every");
    std::atomic<int> ticks{0};
    std::atomic<bool> off_loop{false};
    loop.every(5ms, [&] {
        if (!loop.is_current())
            off_loop = true;
        ++ticks;
    });
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(ticks.load(), 0);  // nothing before start()
    loop.start();
    ASSERT_TRUE(wait_until([&] { return ticks.load() >= 3; })) << ticks.load();
    must_finish(in_background([&] { loop.stop(); }), "stop() with every() active");
    EXPECT_FALSE(off_loop.load());
    const int after_stop = ticks.load();
    std::this_thread::sleep_for(30ms);
    EXPECT_EQ(ticks.load(), after_stop);
}

TEST(LoopThread, SeveralPeriodicsTickIndependently) {
    loop_thread loop("lt-every2");
    std::atomic<int> a{0};
    std::atomic<int> b{0};
    loop.every(5ms, [&] { ++a; });
    loop.every(7ms, [&] { ++b; });
    loop.start();
    EXPECT_TRUE(wait_until([&] { return a.load() >= 3 && b.load() >= 3; })) << a.load() << " " << b.load();
    must_finish(in_background([&] { loop.stop(); }), "stop() with every() active");
}

TEST(LoopThread, FirstTickIsOnePeriodAfterStart) {
    loop_thread loop("lt-first");
    std::atomic<int> ticks{0};
    loop.every(std::chrono::hours(1), [&] { ++ticks; });
    loop.start();
    loop.run_and_wait([] {});  // the arming has run
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(ticks.load(), 0);
    must_finish(in_background([&] { loop.stop(); }), "stop() with a timer pending");
}

TEST(LoopThread, StopIsIdempotent) {
    loop_thread loop("lt-stop");
    loop.stop();  // before start
    loop.start();
    std::promise<void> ran;
    loop.post([&] { ran.set_value(); });
    ASSERT_EQ(ran.get_future().wait_for(kDeadline), std::future_status::ready);
    loop.stop();
    EXPECT_FALSE(loop.running());
    loop.stop();
    loop.stop();
    EXPECT_FALSE(loop.running());
}

TEST(LoopThread, StopDiscardsQueuedWork) {
    loop_thread loop("lt-discard");
    std::promise<void> entered;
    std::promise<void> release;
    std::atomic<bool> later_ran{false};
    loop.post([&] {
        entered.set_value();
        release.get_future().wait();
    });
    loop.post([&] { later_ran = true; });
    loop.start();
    ASSERT_EQ(entered.get_future().wait_for(kDeadline), std::future_status::ready);
    const auto stopped = in_background([&] { loop.stop(); });
    // stop() waits for the handler running now.
    EXPECT_EQ(stopped.wait_for(50ms), std::future_status::timeout);
    release.set_value();
    must_finish(stopped, "stop() after the running handler returned");
    EXPECT_FALSE(later_ran.load());
}

TEST(LoopThread, DestructionWithoutStartIsFine) {
    std::atomic<bool> ran{false};
    {
        loop_thread loop("lt-nostart");
        loop.post([&] { ran = true; });
        loop.every(1ms, [&] { ran = true; });
        loop.repeat([&] { ran = true; });
        EXPECT_FALSE(loop.running());
    }
    EXPECT_FALSE(ran.load());
}

TEST(LoopThread, DestructionStopsARunningLoop) {
    std::atomic<int> steps{0};
    auto loop = std::make_unique<loop_thread>("lt-dtor");
    loop->repeat([&] { ++steps; });
    loop->every(1ms, [] {});
    loop->start();
    ASSERT_TRUE(wait_until([&] { return steps.load() > 0; }));
    must_finish(in_background([&] { loop.reset(); }), "~loop_thread() of a running loop");
    const int after = steps.load();
    std::this_thread::sleep_for(10ms);
    EXPECT_EQ(steps.load(), after);
}

std::string thread_name_from_proc() {
    const long tid = ::syscall(SYS_gettid);
    std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/comm");
    std::string name;
    std::getline(in, name);
    return name;
}

TEST(LoopThread, ThreadIsNamedWithAtMost15Characters) {
    {
        loop_thread loop("lt-named");
        EXPECT_EQ(loop.name(), "lt-named");
        loop.start();
        std::string comm;
        char buf[32] = {};
        loop.run_and_wait([&] {
            comm = thread_name_from_proc();
            ::pthread_getname_np(::pthread_self(), buf, sizeof buf);
        });
        EXPECT_EQ(comm, "lt-named");
        EXPECT_STREQ(buf, "lt-named");
        loop.stop();
    }
    {
        const std::string long_name = "outbound-shard-0123456789";
        loop_thread loop(long_name);
        EXPECT_EQ(loop.name(), long_name);  // kept whole for logs
        loop.start();
        std::string comm;
        loop.run_and_wait([&] { comm = thread_name_from_proc(); });
        EXPECT_EQ(comm, long_name.substr(0, 15));
        loop.stop();
    }
}

}  // namespace
}  // namespace herald::base
