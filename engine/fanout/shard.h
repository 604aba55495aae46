// A shard: one thread, one io_context, its own live connections and its own
// slice of every audience. Shared-nothing: the only thing other threads do to
// a shard is put a Broadcast in its lock-free queue and ring its doorbell.
//
// A broadcast arriving here is either released at once or, if its deliver_at
// lies ahead, staged on the shard's timer so every shard releases it at the
// same instant. Release walks the audience's members from a rotating start
// and writes the shared frame to each; per-recipient figures go into
// shard-local tallies that are folded into Prometheus once per broadcast.
// Within a batch taken from the queue, higher priority goes first — across
// audiences only: within one audience the order is always seq order.
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "audience/live_index.h"
#include "base/loop_thread.h"
#include "base/result.h"
#include "base/strong_id.h"
#include "channels/client_listener.h"
#include "channels/live_session.h"
#include "fanout/probe.h"
#include "model/broadcast.h"

namespace herald::config {
struct config;
}
namespace herald::tls {
class server_context;
}

namespace herald::fanout {

struct shard_options {
    std::uint32_t queue_capacity = 65536;
    channels::session_limits session;
    /// Recovery history per audience: at most this many broadcasts (0 = none)...
    std::uint32_t history_max_per_audience = 1000;
    /// ...and none older than this since their release.
    std::chrono::nanoseconds history_max_age = std::chrono::hours(1);
    /// Who may connect (shared by every shard; nullptr: everyone, all public).
    const security::live_access* access = nullptr;
    /// TLS on the client port (shared by every shard; nullptr: plaintext).
    const tls::server_context* tls = nullptr;
    /// Any shard thread: a TLS handshake failed for this reason.
    std::function<void(std::string_view reason)> on_tls_failure;

    /// The shard settings of a heraldd configuration.
    [[nodiscard]] static shard_options from(const config::config& cfg);
};

class shard {
  public:
    /// Called on the shard thread that finishes a broadcast last.
    using done_handler = std::function<void(const model::broadcast_ptr&)>;

    shard(base::shard_id id, const shard_options& options, probe& probe, channels::connection_budget& budget,
          done_handler on_done);
    ~shard();
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    /// Binds this shard's client acceptor (before start()).
    base::result<std::uint16_t> listen(const std::string& host, std::uint16_t port);

    /// Starts the shard thread.
    void start();

    /// Any thread: queues a broadcast; false when the queue is at capacity.
    [[nodiscard]] bool try_enqueue(model::broadcast_ptr b);
    [[nodiscard]] std::uint32_t queue_depth() const noexcept {
        return depth_.load(std::memory_order_relaxed);
    }

    /// Any thread but the shard's: stop accepting, close every connection
    /// with `code`, cancel held broadcasts, then stop the thread once sockets
    /// drained or `deadline` passed. Blocks until the thread has exited.
    void shutdown(std::uint16_t code, std::string_view reason, std::chrono::milliseconds deadline);

    [[nodiscard]] base::shard_id id() const noexcept { return id_; }

    /// The shard's event loop (tests post to it to adopt sockets).
    [[nodiscard]] base::loop_thread& loop() noexcept { return loop_; }
    [[nodiscard]] boost::asio::io_context& io_context() noexcept { return loop_.context(); }

    /// Shard thread only: adopts an accepted connection as a new live session.
    void adopt(channels::accepted_connection c);

  private:
    struct staged : channels::frame_hold {
        model::broadcast_ptr b;
        shard* owner = nullptr;
        std::multimap<base::mono_time, staged*>::iterator pending_it;
        bool pending = false;
    };
    static void release_staged(channels::frame_hold* hold);

    void ring_doorbell();
    void drain();
    /// Stages `b`; returns it when due now (the caller releases it).
    staged* accept(model::broadcast_ptr b);
    void release(staged* s);
    /// Releases broadcasts that became due together, merging the frames of
    /// each audience's run into one write per connection.
    void release_due(staged** due, std::size_t n);
    void release_merged(staged** run, std::size_t n);
    void supersede_pending(const model::broadcast& b);
    void arm_release_timer();
    void on_release_timer();
    void finish(const model::broadcast_ptr& b, model::broadcast_fate fate, std::int64_t first_write,
                std::int64_t last_write, std::uint64_t recipients);
    void on_session_open(channels::live_session& s, const std::string& tenant,
                         const std::vector<std::string>& audiences,
                         const std::vector<model::audience_position>& since);
    /// Keeps a released broadcast for clients that reconnect with ?since=.
    void remember(const model::broadcast_ptr& b);
    /// Keeps one read back from Kafka at start-up, in seq order, once.
    void remember_past(const model::broadcast_ptr& b);
    /// Sends `s` what its audience released after `since`, or says it cannot.
    void recover(channels::live_session& s, const std::string& scope, const model::audience_position& since);
    /// Writes one broadcast's frame to one member (its channel's frame; an
    /// SSE connection of several audiences adds its own id line).
    static void deliver_to(channels::live_session& member, const model::broadcast& b,
                           channels::frame_hold& hold);

    /// What one audience released recently, in release order (a scheduled
    /// one keeps its seq but comes at its instant), and from where it is complete.
    struct audience_history {
        std::deque<model::broadcast_ptr> items;
        /// Every broadcast with seq > complete_after is in `items` (or was
        /// released after the client's since): the highest evicted seq, or,
        /// before any eviction, the seq just below the first one this
        /// process released (what came before the process started is unknown).
        model::seq_no complete_after;
        /// complete_after was raised by an eviction (a refill may not lower it then).
        bool evicted = false;
        /// The sequence space of the newest one (kept when age empties `items`).
        std::string epoch;
    };
    void evict_old(audience_history& h, base::mono_time now);
    void on_session_closed(channels::live_session& s);
    void arm_tick();
    void publish_gauges();

    base::shard_id id_;
    shard_options options_;
    probe& probe_;
    channels::connection_budget& budget_;
    done_handler on_done_;

    base::loop_thread loop_;

    moodycamel::ConcurrentQueue<model::broadcast_ptr> queue_;
    std::atomic<std::uint32_t> depth_{0};
    std::atomic<bool> doorbell_{false};

    // Shard-thread state below.
    channels::delivery_stats stats_;
    channels::session_env env_;
    std::unique_ptr<channels::client_listener> listener_;
    std::vector<std::shared_ptr<channels::live_session>> sessions_;
    audience::live_index<channels::live_session> index_;
    std::unordered_map<std::string, audience_history> history_;
    std::multimap<base::mono_time, staged*> pending_;  // release instant -> staged broadcast
    std::unordered_map<std::string, staged*> pending_by_collapse_key_;
    boost::asio::steady_timer release_timer_;
    boost::asio::steady_timer tick_timer_;
    bool stopping_ = false;

  public:
    /// Any thread: drops the held (not yet released) broadcast `id` of
    /// `tenant`, if this shard holds it, marked cancelled so its offset is
    /// committed and nobody receives it (a cancel record). Asynchronous.
    void cancel_held(std::string tenant, std::string id);
};

}  // namespace herald::fanout
