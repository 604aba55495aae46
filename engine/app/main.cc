// heraldd: wiring only. Reads the config, starts Kafka (embedded or real),
// the shards with their client listeners, the ops server and ingest, prints
// where everything listens, and on SIGTERM/SIGINT drains in order: stop
// consuming, let dispatched broadcasts finish, close clients with 1001,
// commit, exit 0.
#include <google/protobuf/util/time_util.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "app/outbound_api.h"
#include "base/clock.h"
#include "base/log.h"
#include "channels/client_listener.h"
#include "config/config.h"
#include "fanout/dispatcher.h"
#include "fanout/probe.h"
#include "fanout/shard.h"
#include "ingest/consumer.h"
#include "ingest/kafka_cluster.h"
#include "ingest/probe.h"
#include "metrics/registry.h"
#include "ops/http_server.h"
#include "outbound/checkpoints.h"
#include "outbound/outbound_shard.h"
#include "outbound/receipt_writer.h"
#include "outbound/status_board.h"
#include "registry/feed.h"
#include "registry/store.h"
#include "wire/frame_codec.h"

extern char** environ;

namespace herald::app {
namespace {

constexpr std::uint32_t reserved_descriptors = 256;  // Kafka sockets, files, ops connections

/// Raises the soft open-file limit to the hard one; returns the limit in force.
rlim_t raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return 1024;
    }
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
        ::getrlimit(RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

std::string json_string(std::string_view s) {
    std::string out;
    wire::append_json_string(out, s);
    return out;
}

int run(int argc, char** argv) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        env.emplace_back(*e);
    }
    auto loaded = config::load(argc, argv, env);
    if (!loaded) {
        if (loaded.err().code == std::errc::operation_canceled) {
            if (loaded.err().detail == "version") {
                std::cout << "heraldd " << HERALD_VERSION << "\n";
            } else {
                std::cout << config::usage("heraldd");
            }
            return 0;
        }
        std::cerr << "heraldd: config error: " << loaded.err().detail << "\n";
        return 2;
    }
    const config::config cfg = loaded->cfg;
    base::log_level level = base::log_level::info;
    if (!base::parse_log_level(cfg.log_level, level)) {
        level = base::log_level::info;  // unreachable: the loader validated log_level
    }
    base::set_log_level(level);
    HERALD_LOG_DEBUG("config", "effective configuration",
                     cfg.config_file.empty() ? std::string() : " (file " + cfg.config_file + ")", ":\n",
                     config::describe(cfg));
    for (const auto& w : loaded->warnings) {
        HERALD_LOG_WARN("config", w);
    }
    HERALD_LOG_INFO("app", "heraldd ", HERALD_VERSION, " starting: ", cfg.shards, " shard(s), instance ",
                    cfg.instance_id);

    // Signals are taken by sigwait() below; every thread started after this inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    const rlim_t fd_limit = raise_fd_limit();
    const std::uint32_t derived_max =
        fd_limit > reserved_descriptors ? static_cast<std::uint32_t>(fd_limit - reserved_descriptors) : 64;
    const std::uint32_t max_connections = cfg.max_connections != 0 ? cfg.max_connections : derived_max;
    HERALD_LOG_INFO("app", "open-file limit ", fd_limit, ": accepting at most ", max_connections,
                    " live connections");

    metrics::registry registry;

    // Kafka: the embedded mock cluster unless --brokers names a real one.
    std::unique_ptr<ingest::kafka_cluster> kafka;
    if (cfg.brokers.empty()) {
        auto started = ingest::kafka_cluster::start_embedded(
            cfg.mock_brokers, cfg.topic_partitions,
            {cfg.topic_announcements, cfg.topic_subscriptions, cfg.topic_receipts, cfg.topic_dlq});
        if (!started) {
            std::cerr << "heraldd: " << started.err().detail << "\n";
            return 1;
        }
        kafka = std::move(*started);
        HERALD_LOG_INFO("app", "embedded Kafka (librdkafka mock cluster) at ", kafka->bootstrap_servers());
    } else {
        kafka = ingest::kafka_cluster::external(cfg.brokers);
    }

    // Shards, each with its own acceptor on the client port.
    fanout::probe fanout_probe(registry, cfg.shards);
    ingest::probe ingest_probe(registry, "live");
    ingest::probe outbound_ingest_probe(registry, "outbound");
    channels::connection_budget budget;
    budget.max = max_connections;
    auto& accepted = prometheus::BuildCounter()
                         .Name("herald_connections_accepted_total")
                         .Help("Live connections accepted on the client port")
                         .Register(registry.prom());
    budget.accepted = &accepted.Add({});
    auto& rejected = prometheus::BuildCounter()
                         .Name("herald_connections_rejected_total")
                         .Help("Live connections refused at accept, by reason")
                         .Register(registry.prom());
    budget.rejected_limit = &rejected.Add({{"reason", "max_connections"}});
    budget.rejected_fd = &rejected.Add({{"reason", "out_of_descriptors"}});

    fanout::shard_options shard_opts;
    shard_opts.queue_capacity = cfg.shard_queue_capacity;
    shard_opts.session.send_queue_frames = cfg.send_queue_frames;
    shard_opts.session.send_queue_bytes = cfg.send_queue_bytes;
    shard_opts.session.close_slow_consumers = cfg.slow_consumer_policy == "close";
    shard_opts.session.handshake_timeout_ms = cfg.handshake_timeout_ms;
    shard_opts.session.max_audiences = cfg.max_audiences_per_connection;
    shard_opts.session.max_client_frame_bytes = cfg.max_client_frame_bytes;
    shard_opts.session.ping_interval_ms = cfg.ping_interval_ms;
    shard_opts.history_max_per_audience = cfg.history_max_per_audience;
    shard_opts.history_max_age_ns = static_cast<std::int64_t>(cfg.history_max_age_s) * 1'000'000'000;

    ingest::consumer_options ingest_opts;
    ingest_opts.name = "live";
    ingest_opts.dead_letter = false;  // the outbound consumer, one per cluster, dead-letters
    ingest_opts.bootstrap_servers = kafka->bootstrap_servers();
    ingest_opts.group_id = cfg.group_id;
    ingest_opts.client_id = "heraldd-" + cfg.instance_id;
    ingest_opts.topic = cfg.topic_announcements;
    ingest_opts.dlq_topic = cfg.topic_dlq;
    ingest_opts.offset_reset = cfg.offset_reset;
    ingest_opts.embedded_cluster = kafka->embedded();
    ingest_opts.commit_interval_ms = cfg.commit_interval_ms;
    ingest_opts.fetch_wait_max_ms = cfg.fetch_wait_max_ms;
    ingest_opts.prefetch_kib = cfg.kafka_prefetch_kib;
    ingest_opts.decode_limits.max_payload_bytes = cfg.max_payload_bytes;
    ingest_opts.decode_limits.max_clock_skew_ns =
        static_cast<std::int64_t>(cfg.max_clock_skew_s) * 1'000'000'000;
    ingest_opts.decode_limits.max_deliver_ahead_ns =
        static_cast<std::int64_t>(cfg.max_deliver_ahead_s) * 1'000'000'000;
    // Backpressure: each consumer pauses its Kafka partitions while its side is
    // overloaded — live: a shard queue three quarters full; outbound: too many
    // broadcasts waiting for the backlog — or while the process is above its
    // memory ceiling; it resumes below a quarter / 90 %.
    auto& rss_gauge = prometheus::BuildGauge()
                          .Name("herald_memory_rss_bytes")
                          .Help("Resident memory of heraldd, as checked against memory_limit_mb")
                          .Register(registry.prom())
                          .Add({});
    std::vector<fanout::shard*> overload_shards;             // filled once the shards exist
    outbound::outbound_router* overload_outbound = nullptr;  // likewise
    std::atomic<std::int64_t> next_rss_check{0};
    std::atomic<std::int64_t> rss_bytes{0};
    const std::int64_t memory_limit = static_cast<std::int64_t>(cfg.memory_limit_mb) * 1024 * 1024;
    // Consumer threads only (each its own hysteresis state).
    const auto memory_state = [&, page = ::sysconf(_SC_PAGESIZE)](bool& high) {
        const std::int64_t now = base::mono_now_ns();
        if (std::int64_t due = next_rss_check.load(std::memory_order_relaxed);
            now >= due && next_rss_check.compare_exchange_strong(due, now + 50'000'000)) {
            long pages_total = 0;
            long pages_resident = 0;
            if (FILE* f = std::fopen("/proc/self/statm", "r")) {
                if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
                    pages_resident = 0;
                std::fclose(f);
            }
            rss_bytes.store(static_cast<std::int64_t>(pages_resident) * page, std::memory_order_relaxed);
            rss_gauge.Set(static_cast<double>(rss_bytes.load(std::memory_order_relaxed)));
        }
        const std::int64_t rss = rss_bytes.load(std::memory_order_relaxed);
        if (memory_limit > 0 && rss > memory_limit)
            high = true;
        else if (memory_limit == 0 || rss < memory_limit / 10 * 9)
            high = false;
        return high;
    };
    ingest_opts.overloaded = [&, overloaded_now = false, memory_high = false]() mutable {
        const bool memory = memory_state(memory_high);
        std::uint32_t deepest = 0;
        for (auto* s : overload_shards) deepest = std::max(deepest, s->queue_depth());
        if (!overloaded_now && (deepest >= cfg.shard_queue_capacity / 4 * 3 || memory)) {
            overloaded_now = true;
        } else if (overloaded_now && deepest <= cfg.shard_queue_capacity / 4 && !memory) {
            overloaded_now = false;
        }
        return overloaded_now;
    };
    ingest::consumer_options outbound_ingest_opts = ingest_opts;
    ingest_opts.history_refill_max_records = cfg.history_refill_max_records;
    outbound_ingest_opts.name = "outbound";
    outbound_ingest_opts.group_id = cfg.outbound_group_id;
    outbound_ingest_opts.client_id = "heraldd-" + cfg.instance_id + "-outbound";
    outbound_ingest_opts.dead_letter = true;
    // Written down means finished: commit soon, because after a crash the
    // partition's next owner may be another instance whose checkpoint store
    // does not know what this one sent (same idempotency keys, though).
    outbound_ingest_opts.commit_interval_ms = std::min<std::uint32_t>(cfg.commit_interval_ms, 200);
    outbound_ingest_opts.overloaded = [&, overloaded_now = false, memory_high = false]() mutable {
        const bool memory = memory_state(memory_high);
        const std::uint64_t waiting = overload_outbound != nullptr ? overload_outbound->waiting() : 0;
        if (!overloaded_now && (waiting >= cfg.outbound_max_waiting || memory)) {
            overloaded_now = true;
        } else if (overloaded_now && waiting <= cfg.outbound_max_waiting / 4 && !memory) {
            overloaded_now = false;
        }
        return overloaded_now;
    };
    ingest::announcement_consumer ingest(ingest_opts, ingest_probe);
    ingest::announcement_consumer outbound_ingest(outbound_ingest_opts, outbound_ingest_probe);

    std::unique_ptr<fanout::dispatcher> dispatcher;
    std::vector<std::unique_ptr<fanout::shard>> shards;
    std::vector<fanout::shard*> shard_ptrs;
    std::uint16_t client_port = cfg.client_port;
    for (std::uint32_t i = 0; i < cfg.shards; ++i) {
        shards.push_back(std::make_unique<fanout::shard>(
            base::shard_id(i), shard_opts, fanout_probe, budget,
            [&dispatcher](const fanout::broadcast_ptr& b) { dispatcher->on_shard_done(b); }));
        auto port = shards.back()->listen(cfg.client_host, client_port);
        if (!port) {
            std::cerr << "heraldd: client_port: " << port.err().detail << "\n";
            return 1;
        }
        client_port = *port;  // port 0: every later shard joins the port the first one got
        shard_ptrs.push_back(shards.back().get());
    }
    // Outbound: the durable registry, its change feed, gateway delivery, receipts.
    auto store = registry::store::open(cfg.data_dir);
    if (!store) {
        std::cerr << "heraldd: data_dir: " << store.err().describe() << "\n";
        return 1;
    }
    auto progress =
        outbound::checkpoints::open(cfg.data_dir, std::chrono::milliseconds(cfg.checkpoint_interval_ms));
    if (!progress) {
        std::cerr << "heraldd: data_dir: " << progress.err().describe() << "\n";
        return 1;
    }
    outbound::checkpoints& checkpoints = **progress;
    auto receipts = outbound::receipt_writer::create(kafka->bootstrap_servers(), "heraldd-" + cfg.instance_id,
                                                     cfg.topic_receipts, cfg.topic_dlq, registry);
    if (!receipts) {
        std::cerr << "heraldd: " << receipts.err().detail << "\n";
        return 1;
    }
    outbound::gateway_options gateways;
    gateways.shards = cfg.outbound_shards;
    gateways.webhook_rate = cfg.webhook_rate;
    gateways.webhook_burst = cfg.webhook_burst;
    for (std::size_t pos = 0; !cfg.webhook_secrets.empty() && pos <= cfg.webhook_secrets.size();) {
        const std::size_t end = std::min(cfg.webhook_secrets.find(',', pos), cfg.webhook_secrets.size());
        auto secret = outbound::parse_webhook_secret(cfg.webhook_secrets.substr(pos, end - pos));
        if (!secret) {
            std::cerr << "heraldd: config error: webhook_secrets: " << secret.err().detail << "\n";
            return 2;
        }
        gateways.webhook_secrets.push_back(std::move(*secret));
        pos = end + 1;
    }
    gateways.whatsapp_base_url = cfg.whatsapp_base_url;
    gateways.whatsapp_api_version = cfg.whatsapp_api_version;
    gateways.whatsapp_phone_number_id = cfg.whatsapp_phone_number_id;
    gateways.whatsapp_token = cfg.whatsapp_token;
    gateways.whatsapp_template = cfg.whatsapp_template;
    gateways.whatsapp_language = cfg.whatsapp_language;
    gateways.whatsapp_rate = cfg.whatsapp_rate;
    gateways.whatsapp_burst = cfg.whatsapp_burst;
    gateways.sms_gateway_url = cfg.sms_gateway_url;
    gateways.sms_rate = cfg.sms_rate;
    gateways.sms_burst = cfg.sms_burst;
    gateways.connections_per_endpoint = cfg.outbound_connections;
    gateways.max_pending = cfg.outbound_max_pending;
    gateways.recipient_min_interval_ns = static_cast<std::int64_t>(cfg.recipient_min_interval_ms) * 1'000'000;
    gateways.tenant_rate = cfg.tenant_rate;
    gateways.tenant_burst = cfg.tenant_burst;
    gateways.sender_pause_ns = static_cast<std::int64_t>(cfg.sender_pause_s) * 1'000'000'000;
    gateways.connect_timeout_ns = static_cast<std::int64_t>(cfg.outbound_connect_timeout_ms) * 1'000'000;
    gateways.response_timeout_ns = static_cast<std::int64_t>(cfg.outbound_response_timeout_ms) * 1'000'000;
    gateways.verify_tls = cfg.outbound_tls_verify == "on";
    gateways.retry.max_attempts = cfg.retry_max_attempts;
    gateways.retry.base_ns = static_cast<std::int64_t>(cfg.retry_base_ms) * 1'000'000;
    gateways.retry.max_age_ns = static_cast<std::int64_t>(cfg.retry_max_age_s) * 1'000'000'000;
    outbound::status_board board;
    outbound::receipt_writer& receipt_out = **receipts;
    outbound::outbound_router outbound(
        gateways, board, registry, [&receipt_out](const outbound::outcome_event& e) { receipt_out.write(e); },
        &checkpoints);
    registry::feed_options feed_opts;
    feed_opts.bootstrap_servers = kafka->bootstrap_servers();
    feed_opts.topic = cfg.topic_subscriptions;
    feed_opts.dlq_topic = cfg.topic_dlq;
    feed_opts.client_id = "heraldd-" + cfg.instance_id;
    feed_opts.embedded_cluster = kafka->embedded();
    registry::subscription_feed feed(
        feed_opts, **store, registry,
        [&outbound, &checkpoints](const herald::v1::Subscription* s, const std::string& id) {
            if (s != nullptr) {
                outbound.apply(*s);
            } else {
                outbound.forget(id);
                checkpoints.forget(id);
            }
        });
    outbound.start();
    const auto load_started = std::chrono::steady_clock::now();
    auto loaded_subs = feed.start();
    if (!loaded_subs) {
        std::cerr << "heraldd: outbound registry: " << loaded_subs.err().detail << "\n";
        return 1;
    }
    HERALD_LOG_INFO(
        "app", "outbound registry ", (*store)->path(), ": ", *loaded_subs, " subscriber(s) loaded in ",
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - load_started)
            .count(),
        " ms");

    // Outbound broadcasts a crash or a stop interrupted: continue them for
    // everyone not checkpointed as finished. One scheduled for later keeps
    // its instant; one whose instant passed goes now.
    const auto interrupted = checkpoints.load_unfinished();
    for (const auto& u : interrupted) {
        herald::v1::Announcement a;
        if (!a.ParseFromString(u.announcement))
            continue;
        if (a.has_deliver_at() &&
            google::protobuf::util::TimeUtil::TimestampToNanoseconds(a.deliver_at()) <= base::wall_now_ns())
            a.clear_deliver_at();
        outbound.resume(fanout::dispatcher::build(a, u.seq, {}), u.done);
    }
    if (!interrupted.empty()) {
        HERALD_LOG_INFO("app", "resuming ", interrupted.size(), " interrupted outbound broadcast(s)");
    }
    checkpoints.start([&board](const std::string& key) {
        const auto p = board.get(outbound::checkpoints::id_of(key), outbound::checkpoints::tenant_of(key));
        return !p || p->done();
    });

    overload_shards = shard_ptrs;
    overload_outbound = &outbound;
    dispatcher = std::make_unique<fanout::dispatcher>(
        shard_ptrs, fanout_probe, [&ingest, &board](const fanout::broadcast_ptr& b) {
            board.live_delivered(b->id, b->tenant, b->audience,
                                 b->recipients.load(std::memory_order_relaxed));
            if (static_cast<fanout::broadcast_fate>(b->fate.load(std::memory_order_relaxed)) !=
                fanout::broadcast_fate::cancelled)
                ingest.finished(b->source);  // a cancelled one stays uncommitted: delivered after a restart
        });
    // Outbound: its own consumer (shared group) hands each announcement to the
    // router, which writes it down before returning; then its offset may be
    // committed. Sequence numbers follow the same rule as the dispatcher's.
    fanout::audience_sequencer outbound_seq;
    const auto on_outbound = [&outbound, &outbound_seq, &board](const herald::v1::Announcement& a,
                                                                fanout::kafka_position at) {
        const std::uint64_t seq = outbound_seq.next(a.audience(), at.offset, at.partition);
        // Nobody behind a gateway ever subscribed to it, or it expired: its
        // outbound part is done here, with nobody targeted.
        if (!outbound.interested(a.audience()) ||
            (a.has_expires_at() && google::protobuf::util::TimeUtil::TimestampToNanoseconds(a.expires_at()) <=
                                       base::wall_now_ns())) {
            board.started(a.id(), a.tenant(), a.audience(), 0, 0);
            return true;
        }
        // Not durable (the checkpoint store failed): sent, but left uncommitted.
        return outbound.deliver(fanout::dispatcher::build(a, seq, at)) !=
               outbound::deliver_result::not_durable;
    };

    // Ops API.
    std::atomic<bool> shutting_down{false};
    std::uint16_t ops_port = 0;
    ops::http_server ops_server([&](const ops::http_request& req) -> ops::http_response {
        if (auto answer = outbound_api(req, feed, board)) {
            return std::move(*answer);
        }
        if (req.method != "GET" && req.method != "HEAD") {
            return {405, "text/plain; charset=utf-8", "method not allowed\n"};
        }
        if (req.path == "/metrics") {
            return {200, "text/plain; version=0.0.4; charset=utf-8", registry.render()};
        }
        if (req.path == "/healthz") {
            return {200, "text/plain; charset=utf-8", "ok\n"};
        }
        if (req.path == "/readyz") {
            if (shutting_down.load()) {
                return {503, "text/plain; charset=utf-8", "not ready: shutting down\n"};
            }
            if (!ingest.ready()) {
                return {503, "text/plain; charset=utf-8",
                        "not ready: waiting for the Kafka partition assignment (live)\n"};
            }
            if (!outbound_ingest.ready()) {
                return {503, "text/plain; charset=utf-8",
                        "not ready: waiting for the Kafka partition assignment (outbound)\n"};
            }
            return {200, "text/plain; charset=utf-8", "ready\n"};
        }
        if (req.path == "/v1/info") {
            std::string body =
                "{\"version\":" + json_string(HERALD_VERSION) +
                ",\"instance_id\":" + json_string(cfg.instance_id) +
                ",\"shards\":" + std::to_string(cfg.shards) +
                ",\"client_port\":" + std::to_string(client_port) +
                ",\"ops_port\":" + std::to_string(ops_port) +
                ",\"ready\":" + (ingest.ready() && outbound_ingest.ready() ? "true" : "false") +
                ",\"kafka\":{\"bootstrap_servers\":" + json_string(kafka->bootstrap_servers()) +
                ",\"embedded\":" + (kafka->embedded() ? "true" : "false") +
                ",\"group_id\":" + json_string(cfg.group_id) +
                ",\"outbound_group_id\":" + json_string(cfg.outbound_group_id) + "}" +
                ",\"topics\":{\"announcements\":" + json_string(cfg.topic_announcements) +
                ",\"subscriptions\":" + json_string(cfg.topic_subscriptions) +
                ",\"receipts\":" + json_string(cfg.topic_receipts) +
                ",\"dlq\":" + json_string(cfg.topic_dlq) + "}}\n";
            return {200, "application/json", std::move(body)};
        }
        return {404, "text/plain; charset=utf-8", "not found\n"};
    });
    auto bound_ops = ops_server.listen(cfg.ops_host, cfg.ops_port);
    if (!bound_ops) {
        std::cerr << "heraldd: ops_port: " << bound_ops.err().detail << "\n";
        return 1;
    }
    ops_port = *bound_ops;

    for (auto& s : shards) {
        s->start();
    }
    ops_server.start();
    if (auto started = outbound_ingest.start(on_outbound); !started) {
        std::cerr << "heraldd: " << started.err().detail << "\n";
        return 1;
    }
    if (auto started = ingest.start(
            [&dispatcher](const herald::v1::Announcement& a, fanout::kafka_position at) {
                dispatcher->publish(a, at);
                return false;  // finished when every shard is done with it
            },
            [&dispatcher](const herald::v1::Announcement& a, fanout::kafka_position at, std::int64_t from) {
                dispatcher->remember(a, at, from);  // read back for the recovery history
            });
        !started) {
        std::cerr << "heraldd: " << started.err().detail << "\n";
        outbound_ingest.finish();  // its thread uses what returning destroys
        return 1;
    }

    // One machine-readable line on stdout: tests, tools/run and people read it.
    std::printf("heraldd listening client=%s:%u ops=%s:%u brokers=%s\n", cfg.client_host.c_str(), client_port,
                cfg.ops_host.c_str(), ops_port, kafka->bootstrap_servers().c_str());
    std::fflush(stdout);
    HERALD_LOG_INFO("app", "live clients: ws://", cfg.client_host, ":", client_port,
                    "/v1/ws?audience=...  sse: /v1/sse");
    HERALD_LOG_INFO("app", "ops: http://", cfg.ops_host, ":", ops_port, "/metrics /healthz /readyz /v1/info");

    int signal_number = 0;
    sigwait(&signals, &signal_number);
    HERALD_LOG_INFO("app", "received ", signal_number == SIGTERM ? "SIGTERM" : "SIGINT", ": draining");
    shutting_down.store(true);

    // 1. Stop reading Kafka. 2. Let what was dispatched finish, within the deadline.
    ingest.stop_consuming();
    outbound_ingest.stop_consuming();
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.shutdown_deadline_ms);
    auto queues_empty = [&] {
        for (auto* s : shard_ptrs) {
            if (s->queue_depth() != 0)
                return false;
        }
        return true;
    };
    while (!queues_empty() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    dispatcher->stop();
    // 3. Close clients with 1001 (held broadcasts are cancelled, left uncommitted).
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    for (auto& s : shards) {
        s->shutdown(1001, "server shutting down",
                    static_cast<std::uint32_t>(std::max<std::int64_t>(left.count(), 200)));
    }
    // Outbound work still queued stays written down and resumes at the next start.
    feed.stop();
    receipt_out.stop();  // a shard waiting for room in the receipt queue gives up
    outbound.stop();
    checkpoints.stop();  // what finished is written down; the rest resumes at the next start
    if (const int unwritten = receipt_out.flush(2000); unwritten > 0)
        HERALD_LOG_ERROR("app", unwritten, " receipt(s) not acknowledged by Kafka at exit");
    // 4. Final commit and leave the group. librdkafka waits for an unreachable
    // coordinator without bound, so this step gets what is left of the deadline
    // (at least 2 s); past it Herald exits without the commit and the records
    // since the last periodic commit are consumed again by the next instance.
    const auto kafka_grace = std::max(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()),
        std::chrono::milliseconds(2000));
    std::promise<void> finished;
    auto finished_future = finished.get_future();
    std::thread([&ingest, &outbound_ingest, &finished] {
        std::thread other([&outbound_ingest] { outbound_ingest.finish(); });
        ingest.finish();
        other.join();
        finished.set_value();
    }).detach();
    if (finished_future.wait_for(kafka_grace) == std::future_status::timeout) {
        HERALD_LOG_WARN("app", "Kafka did not answer the final commit and group leave within ",
                        kafka_grace.count(), " ms; exiting without them");
        ops_server.stop();
        std::_Exit(0);
    }
    ops_server.stop();
    HERALD_LOG_INFO("app", "stopped cleanly");
    return 0;
}

}  // namespace
}  // namespace herald::app

int main(int argc, char** argv) {
    return herald::app::run(argc, argv);
}
