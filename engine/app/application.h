// heraldd as one object: configuration in, services built and started in
// named steps, a signal awaited, then a drain and every service stopped in
// the reverse order of its start (Redpanda's application with deferred
// stops). Each step registers the stop of what it started right where it
// starts it, so shutdown order is never a hand-kept list.
//
//   start():  kafka properties -> credentials -> kafka -> ops server -> schedule store -> outbound
//             (registry, checkpoints, receipts, gateways) -> live (shards, dispatcher, scheduler)
//             -> consumers
//   wait_for_signal(): SIGTERM / SIGINT
//   drain():  /readyz 503, stop consuming, let dispatched broadcasts finish,
//             close clients with 1001 (held broadcasts stay uncommitted),
//             then the deferred stops, last started first.
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "channels/client_listener.h"
#include "channels/per_ip_limiter.h"
#include "config/config.h"
#include "herald/v1/announcement.pb.h"
#include "metrics/registry.h"
#include "model/sequencer.h"

namespace herald::ingest {
class announcement_consumer;
class kafka_cluster;
class probe;
}  // namespace herald::ingest
namespace herald::kafka {
class subscriptions_topic;
}
namespace herald::fanout {
class dispatcher;
class probe;
class shard;
}  // namespace herald::fanout
namespace herald::outbound {
class checkpoints;
class outbound_router;
class receipt_writer;
class status_board;
}  // namespace herald::outbound
namespace herald::registry {
class store;
class subscription_feed;
}  // namespace herald::registry
namespace herald::ops {
class http_server;
class router;
}  // namespace herald::ops
namespace herald::security {
class admin_keys;
class live_access;
}  // namespace herald::security
namespace herald::tls {
class probe;
class server_context;
}  // namespace herald::tls

namespace herald::schedule {
class probe;
class scheduler;
}  // namespace herald::schedule

namespace herald::app {

class cancel_writer;
class overload_monitor;

class application {
  public:
    explicit application(config::config cfg);
    ~application();
    application(const application&) = delete;
    application& operator=(const application&) = delete;

    /// Builds and starts every service; on failure what was started is
    /// stopped again and the error names the setting or service at fault.
    base::result<void> start();
    /// Blocks until SIGTERM or SIGINT; returns the signal. SIGHUP meanwhile
    /// reloads the admin keys file.
    int wait_for_signal();
    /// Stops gracefully (see above); afterwards the object may be destroyed.
    void drain();

  private:
    // The start-up steps, in order.
    base::result<void> check_kafka_properties();
    base::result<void> load_credentials();
    base::result<void> start_kafka();
    base::result<void> start_ops();
    base::result<void> open_schedules();
    base::result<void> start_outbound();
    base::result<void> start_live();
    base::result<void> start_live_access();
    base::result<void> load_tls();
    /// SIGHUP: the keys file and the TLS certificates, each kept when its new version does not load.
    void reload();
    base::result<void> start_consumers();

    /// Registers the stop of something just started: run by drain() or the
    /// destructor, last registered first.
    void on_stop(std::string what, std::function<void()> stop);
    void run_stops();
    /// Live consumer thread: a cancel record (the shards drop it if they hold it).
    void cancel_live(const herald::v1::Announcement& cancel);
    /// Outbound consumer thread: a cancel record.
    void cancel_outbound(const herald::v1::Announcement& cancel);
    /// What the live consumer does with an announcement.
    enum class live_route : std::uint8_t {
        publish,   // to the shards now (no deliver_at, or one within the horizon)
        finished,  // written to the schedule store, or released/cancelled from it before: committable
        held,      // the store failed: published with its seq, committed at its release
    };
    /// Live consumer thread.
    live_route schedule_live(const herald::v1::Announcement& a, model::kafka_position at);
    /// Why heraldd is not ready ("" when it is), for /readyz.
    [[nodiscard]] std::string not_ready() const;
    /// How long the final Kafka commits may wait.
    [[nodiscard]] std::chrono::milliseconds kafka_grace() const;

    const config::config cfg_;
    sigset_t signals_{};
    std::vector<std::pair<std::string, std::function<void()>>> stops_;
    std::atomic<bool> draining_{false};
    std::chrono::steady_clock::time_point drain_deadline_ = std::chrono::steady_clock::now();

    metrics::registry metrics_;
    std::unique_ptr<overload_monitor> overload_;
    std::unique_ptr<ingest::kafka_cluster> kafka_;
    std::unique_ptr<kafka::subscriptions_topic> subscriptions_topic_;

    /// The ops API's keys in force (swapped whole on SIGHUP).
    [[nodiscard]] std::shared_ptr<const security::admin_keys> admin_keys() const;
    base::result<void> load_admin_keys();

    mutable std::mutex keys_mutex_;
    std::shared_ptr<const security::admin_keys> admin_keys_;
    std::unique_ptr<security::live_access> live_access_;
    std::shared_ptr<tls::server_context> client_tls_;
    std::shared_ptr<tls::server_context> ops_tls_;
    std::unique_ptr<tls::probe> tls_probe_;
    std::unique_ptr<channels::per_ip_limiter> per_ip_;
    std::unique_ptr<ops::router> routes_;
    std::unique_ptr<ops::http_server> ops_server_;
    std::uint16_t ops_port_ = 0;

    std::unique_ptr<registry::store> store_;
    std::unique_ptr<outbound::checkpoints> checkpoints_;
    std::unique_ptr<outbound::receipt_writer> receipts_;
    std::unique_ptr<outbound::status_board> board_;
    std::unique_ptr<outbound::outbound_router> outbound_;
    std::unique_ptr<registry::subscription_feed> feed_;

    std::unique_ptr<schedule::probe> schedule_probe_;
    std::unique_ptr<schedule::scheduler> scheduler_;
    std::unique_ptr<cancel_writer> cancels_;

    std::unique_ptr<fanout::probe> fanout_probe_;
    channels::connection_budget budget_;
    std::vector<std::unique_ptr<fanout::shard>> shards_;
    std::unique_ptr<fanout::dispatcher> dispatcher_;
    std::atomic<std::uint16_t> client_port_{0};  // read by /v1/info during start-up

    std::unique_ptr<ingest::probe> live_probe_;
    std::unique_ptr<ingest::probe> outbound_probe_;
    std::unique_ptr<ingest::announcement_consumer> live_consumer_;
    std::unique_ptr<ingest::announcement_consumer> outbound_consumer_;
    model::audience_sequencer outbound_seq_;      // outbound consumer thread only
    std::atomic<bool> consumers_started_{false};  // both consumers exist (for /readyz)
};

}  // namespace herald::app
