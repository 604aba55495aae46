#include "app/application.h"

#include <google/protobuf/util/time_util.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/cancel_writer.h"
#include "app/ops_api.h"
#include "app/overload.h"
#include "base/clock.h"
#include "base/log.h"
#include "fanout/dispatcher.h"
#include "fanout/probe.h"
#include "fanout/shard.h"
#include "ingest/consumer.h"
#include "ingest/kafka_cluster.h"
#include "ingest/probe.h"
#include "kafka/client_config.h"
#include "kafka/subscriptions_topic.h"
#include "model/build.h"
#include "ops/http_server.h"
#include "ops/router.h"
#include "outbound/checkpoints.h"
#include "outbound/options.h"
#include "outbound/receipt_writer.h"
#include "outbound/router.h"
#include "outbound/status_board.h"
#include "registry/feed.h"
#include "registry/store.h"
#include "schedule/probe.h"
#include "schedule/scheduler.h"
#include "security/admin_keys.h"
#include "security/live_access.h"
#include "tls/probe.h"
#include "tls/server_context.h"

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

/// librdkafka's security.protocol names are case-insensitive.
bool is_plaintext(std::string_view protocol) {
    constexpr std::string_view plaintext = "plaintext";
    return protocol.size() == plaintext.size() &&
           std::equal(protocol.begin(), protocol.end(), plaintext.begin(),
                      [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

/// The operator's Kafka properties for /v1/info, credentials as ***.
boost::json::object kafka_properties_json(const config::kafka_properties& props) {
    boost::json::object out;
    for (const auto& [key, value] : props) out[key] = config::shown_kafka_value(key, value);
    return out;
}

base::failure start_error(std::string what) {
    return base::failure(std::make_error_code(std::errc::io_error), std::move(what));
}

}  // namespace

application::application(config::config cfg) : cfg_(std::move(cfg)) {
    // Signals are taken by sigwait(); every thread started after this inherits the mask.
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    // Everything heraldd writes into its data directory (the registry, the
    // checkpoint store, the admin key) is nobody else's to read.
    ::umask(0077);
    overload_ =
        std::make_unique<overload_monitor>(metrics_, std::uint64_t{cfg_.memory_limit_mb} * 1024 * 1024);
}

application::~application() {
    run_stops();
}

void application::on_stop(std::string what, std::function<void()> stop) {
    stops_.emplace_back(std::move(what), std::move(stop));
}

void application::run_stops() {
    while (!stops_.empty()) {
        auto [what, stop] = std::move(stops_.back());
        stops_.pop_back();
        HERALD_LOG_DEBUG("app", "stopping ", what);
        stop();
    }
}

base::result<void> application::start() {
    HERALD_LOG_INFO("app", "heraldd ", HERALD_VERSION, " starting: ", cfg_.shards, " shard(s), instance ",
                    cfg_.instance_id);
    for (auto step :
         {&application::check_kafka_properties, &application::load_credentials, &application::start_kafka,
          &application::start_ops, &application::open_schedules, &application::start_outbound,
          &application::start_live, &application::start_consumers}) {
        if (auto ok = (this->*step)(); !ok) {
            run_stops();
            return ok;
        }
    }
    // One machine-readable line on stdout: tests, tools/run and people read it.
    std::printf("heraldd listening client=%s:%u ops=%s:%u brokers=%s\n", cfg_.client_host.c_str(),
                client_port_.load(), cfg_.ops_host.c_str(), ops_port_, kafka_->bootstrap_servers().c_str());
    std::fflush(stdout);
    HERALD_LOG_INFO("app", "live clients: ", client_tls_ ? "wss://" : "ws://", cfg_.client_host, ":",
                    client_port_.load(), "/v1/ws?audience=...  sse: /v1/sse");
    HERALD_LOG_INFO("app", "ops: ", ops_tls_ ? "https://" : "http://", cfg_.ops_host, ":", ops_port_,
                    "/metrics /healthz /readyz /v1/info");
    return {};
}

// The operator's librdkafka properties, before anything starts: one
// librdkafka refuses (or a key heraldd sets itself) is a configuration
// error naming the property (exit 2), not a client failing later.
base::result<void> application::check_kafka_properties() {
    if (auto ok = kafka::validate(cfg_.kafka, kafka::daemon_owned_keys()); !ok)
        return ok;
    if (cfg_.kafka.empty())
        return {};
    HERALD_LOG_INFO("app",
                    "kafka properties for every client: ", config::describe_kafka_properties(cfg_.kafka));
    if (cfg_.brokers.empty()) {
        for (const auto& [key, value] : cfg_.kafka) {
            if (key == "security.protocol" && !is_plaintext(value)) {
                HERALD_LOG_WARN("app", "the embedded Kafka speaks plaintext only: security.protocol=", value,
                                " will not connect to it (use --brokers for a cluster with TLS or SASL)");
            }
        }
    }
    return {};
}

// Kafka: the embedded mock cluster unless --brokers names a real one.
base::result<void> application::start_kafka() {
    kafka::subscriptions_topic::options topic;
    topic.bootstrap_servers = cfg_.brokers;
    topic.kafka_properties = cfg_.kafka;
    topic.client_id = "heraldd-" + cfg_.instance_id;
    topic.topic = cfg_.topic_subscriptions;
    topic.partitions = cfg_.topic_partitions;
    topic.max_compaction_lag = cfg_.subscriptions_max_compaction_lag;
    subscriptions_topic_ = std::make_unique<kafka::subscriptions_topic>(std::move(topic), metrics_);
    if (!cfg_.brokers.empty()) {
        kafka_ = ingest::kafka_cluster::external(cfg_.brokers);
        // Before the registry feed asks for the topic (which may auto-create
        // it with the broker's defaults): created compacted if missing.
        if (auto started = subscriptions_topic_->start(); !started)
            return started;
        on_stop("subscriptions topic check", [this] { subscriptions_topic_->stop(); });
        return {};
    }
    auto started = ingest::kafka_cluster::start_embedded(
        cfg_.mock_brokers, cfg_.topic_partitions,
        {cfg_.topic_announcements, cfg_.topic_subscriptions, cfg_.topic_receipts, cfg_.topic_dlq});
    if (!started)
        return base::failure(started.err());
    // No stop of its own: it lives until the application is destroyed,
    // after every Kafka client (declared after it) is gone.
    kafka_ = std::move(*started);
    HERALD_LOG_INFO("app", "embedded Kafka (librdkafka mock cluster, plaintext) at ",
                    kafka_->bootstrap_servers());
    subscriptions_topic_->embedded();
    return {};
}

base::result<void> application::load_admin_keys() {
    if (!cfg_.admin_keys_file.empty()) {
        auto keys = security::admin_keys::load_file(cfg_.admin_keys_file);
        if (!keys)
            return base::failure(std::make_error_code(std::errc::invalid_argument),
                                 "admin_keys_file: " + keys.err().detail);
        HERALD_LOG_INFO("app", "ops API keys: ", keys->size(), " from ", cfg_.admin_keys_file);
        std::lock_guard lock(keys_mutex_);
        admin_keys_ = std::make_shared<const security::admin_keys>(std::move(*keys));
        return {};
    }
    bool created = false;
    auto keys = security::admin_keys::generated(cfg_.data_dir, created);
    if (!keys)
        return start_error("data_dir: " + keys.err().detail);
    // The key's file, never the key: logs are read by more people than the data directory.
    HERALD_LOG_INFO("app", created ? "generated an admin key for the ops API in " : "ops API admin key in ",
                    cfg_.data_dir, "/admin.key (the herald CLI reads it; or set --admin-keys-file)");
    std::lock_guard lock(keys_mutex_);
    admin_keys_ = std::make_shared<const security::admin_keys>(std::move(*keys));
    return {};
}

std::shared_ptr<const security::admin_keys> application::admin_keys() const {
    std::lock_guard lock(keys_mutex_);
    return admin_keys_;
}

// The ops port first: /healthz answers while the registry loads, /readyz says why it is not ready yet.
// Keys, token settings and trusted CAs first: a keys file, JWT key or CA
// file that does not parse stops start-up before anything runs (exit 2, like
// any bad setting).
// The outbound secrets (whatsapp_token_file, webhook_secrets_file,
// sms_gateway_token_file) were read by config::load: a bad one already
// stopped start-up there; what is left here is to say what is weak.
base::result<void> application::load_credentials() {
    if (!cfg_.outbound_ca_file.empty()) {
        if (auto ok = outbound::check_ca_file(cfg_.outbound_ca_file); !ok)
            return ok;
    }
    if (auto loaded = load_admin_keys(); !loaded)
        return loaded;
    if (auto loaded = load_tls(); !loaded)
        return loaded;
    if (cfg_.allow_insecure_webhooks)
        HERALD_LOG_WARN("app",
                        "allow_insecure_webhooks is on: plain http:// webhooks are accepted and their "
                        "announcements and signatures cross the network unencrypted");
    if (!cfg_.sms_gateway_url.empty() && cfg_.sms_gateway_token.empty())
        HERALD_LOG_WARN("app", "the SMS gateway gets no credential (set sms_gateway_token_file)");
    return start_live_access();
}

// Certificates are read before anything listens: a bad file stops start-up naming the setting.
base::result<void> application::load_tls() {
    tls_probe_ = std::make_unique<tls::probe>(metrics_);
    const bool ktls = cfg_.tls_kernel_offload && tls::probe_ktls().available;
    if (!cfg_.tls_cert_file.empty()) {
        auto ctx = tls::server_context::load({cfg_.tls_cert_file, cfg_.tls_key_file, {}}, ktls);
        if (!ctx)
            return base::failure(ctx.err());
        client_tls_ = std::move(*ctx);
        HERALD_LOG_INFO("app", "TLS on the client port: ", client_tls_->describe());
        if (!cfg_.tls_kernel_offload)
            HERALD_LOG_INFO("app", "kernel TLS: off (tls_kernel_offload=off)");
        else
            HERALD_LOG_INFO("app", "kernel TLS: ", ktls ? "on, " : "not used, ", tls::probe_ktls().detail);
    }
    const bool ops_own = !cfg_.ops_tls_cert_file.empty();
    if (ops_own || !cfg_.tls_cert_file.empty()) {
        tls::server_files files{ops_own ? cfg_.ops_tls_cert_file : cfg_.tls_cert_file,
                                ops_own ? cfg_.ops_tls_key_file : cfg_.tls_key_file, cfg_.tls_client_ca_file};
        if (ops_own) {
            files.cert_setting = "ops_tls_cert_file";
            files.key_setting = "ops_tls_key_file";
        }
        // The ops port serves scrapes and operators: no kernel offload needed there.
        auto ctx = tls::server_context::load(std::move(files), false);
        if (!ctx)
            return base::failure(ctx.err());
        ops_tls_ = std::move(*ctx);
        HERALD_LOG_INFO("app", "TLS on the ops port: ", ops_tls_->describe(),
                        ops_tls_->mutual() ? "; client certificates required (tls_client_ca_file)" : "");
    } else {
        HERALD_LOG_WARN("app",
                        "no tls_cert_file: the client and ops ports speak plaintext (put a TLS "
                        "proxy in front, or see docs/SECURITY.md)");
    }
    return {};
}

base::result<void> application::start_ops() {
    routes_ = std::make_unique<ops::router>();
    add_authentication(
        *routes_, metrics_, [this] { return admin_keys(); }, cfg_.metrics_require_key);
    // Draining: what would wait on Kafka or the registry is refused at once,
    // so no request holds the drain up (the feed stops before the ops server).
    routes_->use([this](const ops::http_request&, ops::route_match& m) -> std::optional<ops::http_response> {
        if (m.blocking && draining_.load()) {
            auto out = ops::http_response::error(503, "heraldd is shutting down");
            out.headers.emplace_back("Retry-After", "5");
            return out;
        }
        return std::nullopt;
    });
    add_health_routes(*routes_, metrics_, [this] { return not_ready(); });
    add_info_route(*routes_, [this] {
        return boost::json::object{{"version", HERALD_VERSION},
                                   {"instance_id", cfg_.instance_id},
                                   {"shards", cfg_.shards},
                                   {"client_port", client_port_.load()},
                                   {"ops_port", ops_port_},
                                   {"ready", not_ready().empty()},
                                   {"kafka",
                                    {{"bootstrap_servers", kafka_->bootstrap_servers()},
                                     {"embedded", kafka_->embedded()},
                                     {"properties", kafka_properties_json(cfg_.kafka)},
                                     {"group_id", cfg_.group_id},
                                     {"outbound_group_id", cfg_.outbound_group_id}}},
                                   {"tls",
                                    {{"client", client_tls_ != nullptr},
                                     {"ops", ops_tls_ != nullptr},
                                     {"ops_client_certificates", ops_tls_ != nullptr && ops_tls_->mutual()},
                                     {"kernel_offload", client_tls_ != nullptr && client_tls_->ktls()},
                                     {"kernel_tls_available", tls::probe_ktls().available},
                                     {"kernel_tls_detail", tls::probe_ktls().detail},
                                     {"certificate", client_tls_ ? client_tls_->describe()
                                                     : ops_tls_  ? ops_tls_->describe()
                                                                 : std::string()}}},
                                   {"topics",
                                    {{"announcements", cfg_.topic_announcements},
                                     {"subscriptions", cfg_.topic_subscriptions},
                                     {"receipts", cfg_.topic_receipts},
                                     {"dlq", cfg_.topic_dlq}}}};
    });
    ops::http_server_options server;
    server.handle = [this](const ops::http_request& req) { return routes_->handle(req); };
    server.blocking = [this](const ops::http_request& req) { return routes_->blocking(req); };
    server.max_body_bytes = cfg_.ops_max_body_bytes;
    server.max_connections = cfg_.ops_max_connections;
    server.tls = ops_tls_;
    server.on_tls_failure = [this](std::string_view reason) { tls_probe_->handshake_failed("ops", reason); };
    ops_server_ = std::make_unique<ops::http_server>(std::move(server));
    auto bound = ops_server_->listen(cfg_.ops_host, cfg_.ops_port);
    if (!bound)
        return start_error("ops_port: " + bound.err().detail);
    ops_port_ = *bound;
    ops_server_->start();
    on_stop("ops server", [this] { ops_server_->stop(); });
    return {};
}

// The live schedule store, before outbound: a broadcast cancelled before a
// crash is not resumed there. Its thread starts with the shards (start_live).
base::result<void> application::open_schedules() {
    auto opened = schedule::store::open(cfg_.data_dir);
    if (!opened)
        return start_error("data_dir: " + opened.err().describe());
    schedule_probe_ = std::make_unique<schedule::probe>(metrics_);
    // Released this long before the instant (the shards hold it the rest of
    // the way): the horizon, and never less than a second, so a release is
    // not late because the scheduler's thread waited for a core.
    const auto lead = std::max<std::chrono::nanoseconds>(cfg_.schedule_horizon, std::chrono::seconds(1));
    scheduler_ = std::make_unique<schedule::scheduler>(std::move(*opened), *schedule_probe_, lead);
    HERALD_LOG_INFO("app", "live schedule store ", scheduler_->path(), ": ", scheduler_->size(),
                    " broadcast(s) scheduled; beyond ", cfg_.schedule_horizon.count(),
                    " s ahead a broadcast waits there");
    auto cancels = cancel_writer::create(kafka_->bootstrap_servers(), "heraldd-" + cfg_.instance_id,
                                         cfg_.topic_announcements, cfg_.kafka);
    if (!cancels)
        return base::failure(cancels.err());
    cancels_ = std::move(*cancels);
    return {};
}

// Outbound: the durable registry, its change feed, gateway delivery, receipts.
base::result<void> application::start_outbound() {
    auto store = registry::store::open(cfg_.data_dir);
    if (!store)
        return start_error("data_dir: " + store.err().describe());
    store_ = std::move(*store);
    auto progress = outbound::checkpoints::open(cfg_.data_dir, cfg_.checkpoint_interval);
    if (!progress)
        return start_error("data_dir: " + progress.err().describe());
    checkpoints_ = std::move(*progress);
    // Last of the outbound side: what finished is written down, the rest
    // resumes at the next start.
    on_stop("checkpoints", [this] { checkpoints_->stop(); });
    auto receipts =
        outbound::receipt_writer::create(kafka_->bootstrap_servers(), "heraldd-" + cfg_.instance_id,
                                         cfg_.topic_receipts, cfg_.topic_dlq, cfg_.kafka, metrics_);
    if (!receipts)
        return base::failure(receipts.err());
    receipts_ = std::move(*receipts);
    on_stop("receipt writer", [this] {
        if (const int unwritten = receipts_->flush(2000); unwritten > 0)
            HERALD_LOG_ERROR("app", unwritten, " receipt(s) not acknowledged by Kafka at exit");
    });

    board_ = std::make_unique<outbound::status_board>();
    outbound_ = std::make_unique<outbound::outbound_router>(
        outbound::gateway_options::from(cfg_), *board_, metrics_,
        [this](const outbound::outcome_event& e) { receipts_->write(e); }, checkpoints_.get());
    outbound_->start();
    on_stop("outbound delivery", [this] {
        receipts_->stop();  // a shard waiting for room in the receipt queue gives up
        outbound_->stop();  // what is still queued stays written down and resumes at the next start
    });

    feed_ = std::make_unique<registry::subscription_feed>(
        registry::feed_options::from(cfg_, kafka_->bootstrap_servers(), kafka_->embedded()), *store_,
        metrics_, [this](const herald::v1::Subscription* s, const std::string& id) {
            if (s != nullptr) {
                outbound_->apply(*s);
            } else {
                outbound_->forget(id);
                checkpoints_->forget(id);
            }
        });
    const auto load_started = std::chrono::steady_clock::now();
    auto loaded = feed_->start();
    if (!loaded)
        return start_error("outbound registry: " + loaded.err().detail);
    on_stop("registry feed", [this] { feed_->stop(); });
    HERALD_LOG_INFO(
        "app", "outbound registry ", store_->path(), ": ", *loaded, " subscriber(s) loaded in ",
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - load_started)
            .count(),
        " ms");

    // Outbound broadcasts a crash or a stop interrupted: continue them for
    // everyone not checkpointed as finished. One scheduled for later keeps
    // its instant; one whose instant passed goes now.
    // A WhatsApp or SMS request that may have left before the crash is not
    // sent again (those gateways do not de-duplicate): receipt `unknown`.
    const auto interrupted = checkpoints_->load_unfinished();
    const auto gateways = outbound::gateway_options::from(cfg_);
    std::size_t unknown = 0;
    std::size_t resent = 0;
    for (const auto& u : interrupted) {
        herald::v1::Announcement a;
        if (!a.ParseFromString(u.announcement))
            continue;
        // Cancelled before the crash (its cancel record may be committed):
        // left off the board, so the flusher finishes its checkpoint.
        if (scheduler_->ended(a.tenant().empty() ? "default" : a.tenant(), a.id()) ==
            schedule::ending::cancelled) {
            HERALD_LOG_INFO("app", "not resuming cancelled outbound broadcast ", a.id());
            continue;
        }
        if (a.has_deliver_at() && model::wall_of(a.deliver_at()) <= base::wall_now())
            a.clear_deliver_at();
        auto settled = std::make_shared<const std::unordered_set<std::string>>(
            outbound::unknown_after_crash(*u.interrupted, gateways));
        unknown += settled->size();
        resent += u.interrupted->size() - settled->size();
        outbound_->resume(model::build_broadcast(a, u.seq, {}), u.done, std::move(settled));
    }
    if (unknown + resent > 0)
        HERALD_LOG_INFO("app", unknown + resent, " delivery(ies) were in flight at the crash: ", unknown,
                        " on WhatsApp/SMS settle as unknown (not sent again), ", resent,
                        " go again (webhooks, resend_unknown_channels)");
    if (!interrupted.empty())
        HERALD_LOG_INFO("app", "resuming ", interrupted.size(), " interrupted outbound broadcast(s)");
    // Only now: a broadcast the flusher cannot find on the board counts as done.
    checkpoints_->start([this](const std::string& key) {
        const auto p = board_->get(outbound::checkpoints::id_of(key), outbound::checkpoints::tenant_of(key));
        return !p || p->done();
    });
    add_registry_routes(*routes_, *feed_, outbound::gateway_options::from(cfg_).guard,
                        cfg_.allow_insecure_webhooks);
    add_broadcast_routes(*routes_, *board_);
    add_schedule_routes(*routes_, *scheduler_, *board_, *cancels_);
    return {};
}

// Live fan-out: shards, each with its own acceptor on the client port, and the dispatcher.
base::result<void> application::start_live() {
    const rlim_t fd_limit = raise_fd_limit();
    const std::uint32_t derived_max =
        fd_limit > reserved_descriptors ? static_cast<std::uint32_t>(fd_limit - reserved_descriptors) : 64;
    budget_.max = cfg_.max_connections != 0 ? cfg_.max_connections : derived_max;
    HERALD_LOG_INFO("app", "open-file limit ", fd_limit, ": accepting at most ", budget_.max,
                    " live connections");
    fanout_probe_ = std::make_unique<fanout::probe>(metrics_, cfg_.shards);
    fanout_probe_->attach(budget_);
    std::vector<security::ip_network> exempt;
    for (const auto& item : config::list(cfg_.connection_limit_exempt)) {
        if (auto n = security::ip_network::parse(item))
            exempt.push_back(*n);
    }
    per_ip_ = std::make_unique<channels::per_ip_limiter>(cfg_.max_connections_per_ip,
                                                         cfg_.max_connects_per_ip_per_s, std::move(exempt));
    budget_.per_ip = per_ip_.get();

    auto shard_opts = fanout::shard_options::from(cfg_);
    shard_opts.access = live_access_.get();
    shard_opts.tls = client_tls_.get();
    shard_opts.on_tls_failure = [this](std::string_view reason) {
        tls_probe_->handshake_failed("client", reason);
    };
    std::vector<fanout::shard*> shards;
    std::uint16_t port = cfg_.client_port;
    for (std::uint32_t i = 0; i < cfg_.shards; ++i) {
        shards_.push_back(std::make_unique<fanout::shard>(
            base::shard_id(i), shard_opts, *fanout_probe_, budget_,
            [this](const model::broadcast_ptr& b) { dispatcher_->on_shard_done(b); }));
        auto bound = shards_.back()->listen(cfg_.client_host, port);
        if (!bound)
            return start_error("client_port: " + bound.err().detail);
        port = *bound;  // port 0: every later shard joins the port the first one got
        shards.push_back(shards_.back().get());
    }
    client_port_ = port;
    dispatcher_ =
        std::make_unique<fanout::dispatcher>(shards, *fanout_probe_, [this](const model::broadcast_ptr& b) {
            const model::live_progress& live = b->live;
            board_->live_delivered(b->id, b->tenant, b->audience,
                                   live.recipients.load(std::memory_order_relaxed));
            // Dropped by a cancel record: done for good. Dropped by a drain:
            // not done (uncommitted, or kept in the schedule store), so it is
            // delivered after the restart.
            const bool cancel_record = b->cancelled.load(std::memory_order_relaxed);
            if (cancel_record)
                (void)board_->cancel(b->id, b->tenant);
            const bool done = live.final_fate() != model::broadcast_fate::cancelled || cancel_record;
            if (b->from_schedule)
                scheduler_->done(b->tenant, b->id, done);
            else if (done)
                live_consumer_->finished(b->source);
        });
    for (auto& s : shards_) s->start();
    // Scheduled broadcasts go to the shards shortly before their instant,
    // with the seq they got when they were consumed.
    scheduler_->start([this](const schedule::entry& e) {
        herald::v1::Announcement a;
        if (!a.ParseFromString(e.announcement)) {
            HERALD_LOG_ERROR("app", "scheduled broadcast ", e.id, " is unreadable in ", scheduler_->path(),
                             "; dropped");
            scheduler_->done(e.tenant, e.id, true);
            return;
        }
        auto b = model::build_broadcast(a, e.seq, e.source,
                                        live_consumer_->epoch_of_any_thread(e.source.partition));
        b->from_schedule = true;
        (void)dispatcher_->release(std::move(b));
    });
    on_stop("scheduler", [this] { scheduler_->stop(); });
    // Drained (1001) by drain(); this only ends threads a failed start left running.
    on_stop("shards", [this] {
        for (auto& s : shards_) s->shutdown(1001, "server shutting down", std::chrono::milliseconds(200));
    });
    return {};
}

// Kafka in: the outbound consumer (shared group) first, then the live one.
base::result<void> application::start_consumers() {
    live_probe_ = std::make_unique<ingest::probe>(metrics_, "live");
    outbound_probe_ = std::make_unique<ingest::probe>(metrics_, "outbound");
    auto live = ingest::consumer_options::live(cfg_, kafka_->bootstrap_servers(), kafka_->embedded());
    std::vector<fanout::shard*> shards;
    for (auto& s : shards_) shards.push_back(s.get());
    live.overloaded = overload_->live(shards, cfg_.shard_queue_capacity);
    auto outbound = ingest::consumer_options::outbound(cfg_, kafka_->bootstrap_servers(), kafka_->embedded());
    outbound.overloaded = overload_->outbound(*outbound_, cfg_.outbound_max_waiting);
    live_consumer_ = std::make_unique<ingest::announcement_consumer>(std::move(live), *live_probe_);
    outbound_consumer_ =
        std::make_unique<ingest::announcement_consumer>(std::move(outbound), *outbound_probe_);

    // Outbound: the router writes each announcement down before returning;
    // then its offset may be committed.
    const auto on_outbound = [this](const herald::v1::Announcement& a, model::kafka_position at) {
        if (!a.cancel().empty()) {
            cancel_outbound(a);
            return true;
        }
        const model::seq_no seq = outbound_seq_.next(a.audience(), at);
        // Nobody behind a gateway ever subscribed to it, or it expired: its
        // outbound part is done here, with nobody targeted.
        if (!outbound_->interested(
                model::scope_of(a.tenant().empty() ? "default" : a.tenant(), a.audience())) ||
            (a.has_expires_at() && model::wall_of(a.expires_at()) <= base::wall_now())) {
            board_->started(a.id(), a.tenant(), a.audience(), 0, 0);
            return true;
        }
        // Not durable (the checkpoint store failed): sent, but left uncommitted.
        return outbound_->deliver(model::build_broadcast(a, seq, at)) !=
               outbound::deliver_result::not_durable;
    };
    if (auto started = outbound_consumer_->start(on_outbound); !started)
        return base::failure(started.err());
    on_stop("outbound consumer", [this] { outbound_consumer_->finish(kafka_grace()); });
    auto started = live_consumer_->start(
        [this](const herald::v1::Announcement& a, model::kafka_position at) {
            if (!a.cancel().empty()) {
                cancel_live(a);
                return true;
            }
            switch (schedule_live(a, at)) {
                case live_route::finished:
                    return true;  // written to the schedule store (or ended before): committable now
                case live_route::held:
                    return false;
                case live_route::publish:
                    break;
            }
            dispatcher_->publish(a, at, live_consumer_->epoch_of(at.partition));
            return false;  // finished when every shard is done with it
        },
        [this](const herald::v1::Announcement& a, model::kafka_position at, model::kafka_offset from) {
            // Read back for the recovery history: never a cancel, nor what one cancelled.
            if (!a.cancel().empty() || scheduler_->ended(a.tenant(), a.id()) == schedule::ending::cancelled)
                return;
            dispatcher_->remember(a, at, from, live_consumer_->epoch_of(at.partition));
        });
    if (!started)
        return base::failure(started.err());
    on_stop("live consumer", [this] { live_consumer_->finish(kafka_grace()); });
    consumers_started_.store(true);
    return {};
}

application::live_route application::schedule_live(const herald::v1::Announcement& a,
                                                   model::kafka_position at) {
    if (!a.has_deliver_at())
        return live_route::publish;
    // Released or cancelled from the store before: this record was consumed
    // again (its commit had not landed before a crash).
    if (scheduler_->ended(a.tenant(), a.id()))
        return live_route::finished;
    const base::wall_time when = model::wall_of(a.deliver_at());
    if (when <= base::wall_now() + cfg_.schedule_horizon)
        return live_route::publish;  // near: the shards hold it, as any deliver_at
    schedule::entry e;
    e.tenant = a.tenant();
    e.id = a.id();
    e.audience = a.audience();
    e.deliver_at_ns = when.time_since_epoch().count();
    e.created_at_ns =
        a.has_created_at() ? model::wall_of(a.created_at()).time_since_epoch().count() : base::wall_now_ns();
    e.seq = dispatcher_->next_seq(a, at);
    e.source = at;
    e.announcement = a.SerializeAsString();
    switch (scheduler_->add(e)) {
        case schedule::scheduler::added::scheduled:
        case schedule::scheduler::added::known:
            return live_route::finished;
        case schedule::scheduler::added::failed:
            break;
    }
    // The store failed: held in the shards (with the seq it got), its offset
    // uncommitted until its release, as before the store existed.
    (void)dispatcher_->publish(a, at, e.seq, live_consumer_->epoch_of(at.partition));
    return live_route::held;
}

void application::cancel_live(const herald::v1::Announcement& c) {
    std::string audience;
    const auto r = scheduler_->cancel(c.tenant(), c.cancel(), &audience);
    if (r == schedule::scheduler::cancel_result::waiting || r == schedule::scheduler::cancel_result::released)
        board_->cancelled(c.cancel(), c.tenant(), audience);
    // Held in the shards: under the horizon, or released from the store already.
    for (auto& s : shards_) s->cancel_held(c.tenant(), c.cancel());
    // Unknown to the store and the board. (One held in the shards under the
    // horizon is not on the board yet and counts here too.)
    if (r == schedule::scheduler::cancel_result::unknown && !board_->get(c.cancel(), c.tenant()))
        schedule_probe_->cancel_unknown(true);
    HERALD_LOG_INFO("app", "cancel of ", c.cancel(), " (tenant ", c.tenant(), ") applied to live delivery");
}

void application::cancel_outbound(const herald::v1::Announcement& c) {
    // Durable first: a broadcast cancelled here is not resumed after a crash.
    std::string audience;
    const auto r = scheduler_->cancel(c.tenant(), c.cancel(), &audience);
    if (r == schedule::scheduler::cancel_result::waiting || r == schedule::scheduler::cancel_result::released)
        board_->cancelled(c.cancel(), c.tenant(), audience);
    const auto stopped = outbound_->cancel(c.tenant(), c.cancel());
    // (The live consumer may have met the same record first: "already" then
    // only says that it remembered the cancel.)
    if (stopped == outbound::outbound_router::cancel_result::unknown &&
        r != schedule::scheduler::cancel_result::waiting && r != schedule::scheduler::cancel_result::released)
        schedule_probe_->cancel_unknown(false);
    if (stopped == outbound::outbound_router::cancel_result::stopped)
        HERALD_LOG_INFO("app", "outbound broadcast ", c.cancel(), " (tenant ", c.tenant(), ") cancelled");
}

std::string application::not_ready() const {
    if (draining_.load())
        return "shutting down";
    if (!consumers_started_.load())
        return "starting";
    if (!live_consumer_->ready())
        return "waiting for the Kafka partition assignment (live)";
    if (!outbound_consumer_->ready())
        return "waiting for the Kafka partition assignment (outbound)";
    return {};
}

base::result<void> application::start_live_access() {
    const auto read = [](const std::string& path, const char* setting) -> base::result<std::string> {
        std::ifstream in(path, std::ios::binary);
        if (!in)
            return base::failure(std::make_error_code(std::errc::invalid_argument),
                                 std::string(setting) + ": cannot read \"" + path + "\"");
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    };
    security::live_access_options opts;
    security::jwt_options jwt;
    jwt.issuer = cfg_.jwt_issuer;
    jwt.audience = cfg_.jwt_audience;
    if (!cfg_.jwt_hs256_secret_file.empty()) {
        auto secret = read(cfg_.jwt_hs256_secret_file, "jwt_hs256_secret_file");
        if (!secret)
            return base::failure(secret.err());
        jwt.hs256_secret = std::move(*secret);
        while (!jwt.hs256_secret.empty() &&
               (jwt.hs256_secret.back() == '\n' || jwt.hs256_secret.back() == '\r'))
            jwt.hs256_secret.pop_back();
    }
    if (!cfg_.jwt_public_key_file.empty()) {
        auto pem = read(cfg_.jwt_public_key_file, "jwt_public_key_file");
        if (!pem)
            return base::failure(pem.err());
        jwt.public_key_pem = std::move(*pem);
    }
    if (!cfg_.jwks_file.empty()) {
        auto jwks = read(cfg_.jwks_file, "jwks_file");
        if (!jwks)
            return base::failure(jwks.err());
        jwt.jwks_json = std::move(*jwks);
    }
    if (jwt.any_key()) {
        auto verifier = security::jwt_verifier::create(std::move(jwt));
        if (!verifier)
            return base::failure(std::make_error_code(std::errc::invalid_argument), verifier.err().detail);
        opts.verifier = std::move(*verifier);
        HERALD_LOG_INFO("app", "live clients need a token for every audience but: ",
                        cfg_.public_audiences.empty() ? std::string("(none)") : cfg_.public_audiences);
    } else {
        HERALD_LOG_WARN("app",
                        "no JWT key configured (jwt_hs256_secret_file, jwt_public_key_file or jwks_file): "
                        "every audience is public on the client port");
    }
    opts.public_audiences = config::list(cfg_.public_audiences);
    opts.allowed_origins = config::list(cfg_.allowed_origins);
    live_access_ = std::make_unique<security::live_access>(std::move(opts));
    return {};
}

int application::wait_for_signal() {
    int signal_number = 0;
    for (;;) {
        sigwait(&signals_, &signal_number);
        if (signal_number != SIGHUP)
            break;
        reload();
    }
    HERALD_LOG_INFO("app", "received ", signal_number == SIGTERM ? "SIGTERM" : "SIGINT", ": draining");
    return signal_number;
}

void application::reload() {
    if (cfg_.admin_keys_file.empty() && !client_tls_ && !ops_tls_) {
        HERALD_LOG_INFO("app", "SIGHUP: nothing to reload (no admin_keys_file, no TLS certificate)");
        return;
    }
    // A file that no longer parses keeps what is in force.
    if (!cfg_.admin_keys_file.empty()) {
        if (auto reloaded = load_admin_keys(); !reloaded)
            HERALD_LOG_ERROR("app", "SIGHUP: keeping the current ops API keys: ", reloaded.err().detail);
    }
    for (auto* ctx : {client_tls_.get(), ops_tls_.get()}) {
        if (ctx == nullptr)
            continue;
        const char* port = ctx == client_tls_.get() ? "client" : "ops";
        if (auto reloaded = ctx->reload(); !reloaded)
            HERALD_LOG_ERROR("app", "SIGHUP: keeping the current ", port,
                             " port certificate: ", reloaded.err().detail);
        else
            HERALD_LOG_INFO("app", "SIGHUP: ", port, " port certificate reloaded: ", ctx->describe(),
                            " (open connections keep theirs)");
    }
}

void application::drain() {
    draining_.store(true);
    drain_deadline_ = std::chrono::steady_clock::now() + cfg_.shutdown_deadline;
    // 1. Stop reading Kafka. 2. Let what was dispatched finish, within the deadline.
    if (live_consumer_)
        live_consumer_->stop_consuming();
    if (outbound_consumer_)
        outbound_consumer_->stop_consuming();
    // Nothing more leaves the schedule store: what the shards hold of it is
    // cancelled by their shutdown and stays in the store for the next start.
    if (scheduler_)
        scheduler_->stop();
    if (dispatcher_) {
        while (!dispatcher_->queues_empty() && std::chrono::steady_clock::now() < drain_deadline_)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        dispatcher_->stop();
    }
    // 3. Close clients with 1001 (held broadcasts are cancelled, left uncommitted).
    const auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   drain_deadline_ - std::chrono::steady_clock::now()),
                               std::chrono::milliseconds(200));
    for (auto& s : shards_) s->shutdown(1001, "server shutting down", left);
    // 4. Everything else, last started first: final commits and group leave,
    // the registry feed, outbound delivery, checkpoints, receipts, ops, Kafka.
    run_stops();
    HERALD_LOG_INFO("app", "stopped cleanly");
}

std::chrono::milliseconds application::kafka_grace() const {
    // What is left of the shutdown deadline, at least 2 s: past it the
    // records since the last periodic commit are consumed again.
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline_ -
                                                                          std::chrono::steady_clock::now()),
                    std::chrono::milliseconds(2000));
}

}  // namespace herald::app
