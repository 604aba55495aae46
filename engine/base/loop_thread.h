// One event-loop thread: an io_context run by one named thread.
//
// Every long-lived thread of heraldd is one of these — the live shards, the
// outbound shards, the ops server, the Kafka consumers and the change feed,
// the checkpoint flusher and the receipt poller — so starting, stopping and
// "which thread am I on?" are written once. State owned by a loop is touched
// only from its thread: other threads post() to it, and methods documented
// "loop thread only" check is_current() with HERALD_ASSERT.
//
// A loop whose work is a blocking poll (a Kafka consumer) repeats one step
// with repeat(); stop() then ends it after the step running now.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace herald::base {

class loop_thread {
  public:
    /// `name` shows in logs, top and perf (at most 15 characters are kept).
    explicit loop_thread(std::string name);
    ~loop_thread();
    loop_thread(const loop_thread&) = delete;
    loop_thread& operator=(const loop_thread&) = delete;

    /// Starts the thread; what was posted before runs first, in order.
    void start();

    /// Any thread but this loop's: ends the loop once the handler running
    /// now returns, discards what is still queued and joins. Idempotent.
    void stop();

    /// Any thread: runs `fn` on this loop.
    void post(std::function<void()> fn);

    /// Any thread but this loop's: runs `fn` on this loop and waits for it.
    /// Runs it right here when the loop is not running (not started, stopped).
    /// Not concurrently with stop(): the loop's owner calls both.
    void run_and_wait(const std::function<void()>& fn);

    /// Runs `step` on this loop again and again until stop(); for loops
    /// built around a blocking call with a timeout (Kafka's consume()).
    void repeat(std::function<void()> step);

    /// Runs `fn` on this loop every `period` (the first time one period
    /// after start) until stop(). Call before start().
    void every(std::chrono::nanoseconds period, std::function<void()> fn);

    /// Whether the calling thread is running this loop (its own thread, or a
    /// test driving the io_context by hand).
    [[nodiscard]] bool is_current() const noexcept;
    /// Started and not yet stopped.
    [[nodiscard]] bool running() const noexcept;

    [[nodiscard]] boost::asio::io_context& context() noexcept;
    [[nodiscard]] const std::string& name() const noexcept;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace herald::base
