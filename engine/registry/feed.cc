#include "registry/feed.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <vector>

#include "base/assert.h"
#include "base/log.h"
#include "config/config.h"
#include "kafka/client_config.h"
#include "registry/subscription_codec.h"

namespace herald::registry {
namespace {

std::string header_value(RdKafka::Message& m, const char* name) {
    const RdKafka::Headers* headers = m.headers();
    if (headers == nullptr)
        return {};
    const RdKafka::Headers::Header h = headers->get_last(name);
    if (h.err() != RdKafka::ERR_NO_ERROR || h.value() == nullptr)
        return {};
    return std::string(static_cast<const char*>(h.value()), h.value_size());
}

bool is_json(const std::string& content_type) {
    return content_type.rfind("application/json", 0) == 0 || content_type.rfind("Application/JSON", 0) == 0;
}

/// Where a produced record landed, filled by the delivery report.
struct produce_wait {
    std::mutex m;
    bool done = false;
    RdKafka::ErrorCode err = RdKafka::ERR_NO_ERROR;
    std::int32_t partition = -1;
    std::int64_t offset = -1;
};

class delivery_reports : public RdKafka::DeliveryReportCb {
  public:
    void dr_cb(RdKafka::Message& m) override {
        // The waiter may have given up; the shared owner keeps `w` alive.
        std::unique_ptr<std::shared_ptr<produce_wait>> owner(
            static_cast<std::shared_ptr<produce_wait>*>(m.msg_opaque()));
        if (!owner)
            return;
        produce_wait& w = **owner;
        std::lock_guard lock(w.m);
        w.err = m.err();
        w.partition = m.partition();
        w.offset = m.offset();
        w.done = true;
    }
};

delivery_reports& reports() {
    static delivery_reports r;
    return r;
}

}  // namespace

feed_options feed_options::from(const config::config& cfg, const std::string& bootstrap_servers,
                                bool embedded_cluster) {
    feed_options o;
    o.bootstrap_servers = bootstrap_servers;
    o.topic = cfg.topic_subscriptions;
    o.dlq_topic = cfg.topic_dlq;
    o.client_id = "heraldd-" + cfg.instance_id;
    o.embedded_cluster = embedded_cluster;
    o.allow_insecure_webhooks = cfg.allow_insecure_webhooks;
    o.kafka_properties = cfg.kafka;
    return o;
}

subscription_feed::subscription_feed(feed_options options, store& store, metrics::registry& metrics,
                                     apply_handler on_apply)
    : options_(std::move(options)), store_(store), on_apply_(std::move(on_apply)) {
    auto& r = metrics.prom();
    auto& changes = prometheus::BuildCounter()
                        .Name("herald_subscription_changes_total")
                        .Help("Changes of the outbound registry applied from herald.subscriptions, by kind")
                        .Register(r);
    applied_total_ = &changes.Add({{"kind", "upsert"}});
    erased_total_ = &changes.Add({{"kind", "erase"}});
    rejected_ = &prometheus::BuildCounter()
                     .Name("herald_subscriptions_rejected_total")
                     .Help("herald.subscriptions records refused and dead-lettered, by reason")
                     .Register(r);
}

subscription_feed::~subscription_feed() {
    stop();
}

base::result<std::size_t> subscription_feed::start() {
    const auto fail = [](const std::string& what) {
        return base::failure(std::make_error_code(std::errc::invalid_argument), what);
    };
    std::size_t loaded = 0;
    {
        std::lock_guard lock(store_mutex_);
        std::size_t insecure = 0;
        auto n = store_.for_each([&](herald::v1::Subscription&& s) {
            insecure += is_insecure_webhook(s) ? 1 : 0;
            on_apply_(&s, subscriber_key(s));
        });
        if (!n)
            return base::failure(n.err());
        loaded = *n;
        // Written before the switch was turned off: kept (the registry is
        // their record), but outbound fails their deliveries visibly.
        if (insecure > 0 && !options_.allow_insecure_webhooks)
            HERALD_LOG_WARN("registry", insecure,
                            " stored subscriber(s) have a plain http:// webhook: their deliveries fail "
                            "with insecure_webhook until they re-subscribe with https:// (or "
                            "allow_insecure_webhooks is on)");
        if (options_.embedded_cluster) {
            if (auto r = store_.reset_feed_offsets(); !r)
                return base::failure(r.err());
        }
    }

    std::string error;
    auto conf = kafka::client_conf({{"bootstrap.servers", options_.bootstrap_servers},
                                    {"group.id", options_.client_id + "-registry"},  // required, never joined
                                    {"client.id", options_.client_id + "-registry"},
                                    {"enable.auto.commit", "false"},
                                    {"auto.offset.reset", "earliest"},
                                    {"fetch.wait.max.ms", options_.embedded_cluster ? "5" : "100"},
                                    {"log_level", "4"}},
                                   options_.kafka_properties);
    if (!conf)
        return base::failure(conf.err());
    consumer_.reset(RdKafka::KafkaConsumer::create(conf->get(), error));
    if (!consumer_)
        return fail("registry consumer: " + kafka::scrub(error, options_.kafka_properties));

    // One request in flight, as for receipts (outbound/receipt_writer.cc):
    // pipelined idempotent produces lost acknowledged records on the mock
    // cluster under injected errors. Batches form behind the one in
    // flight: a 1M import ran at 4,135/s with it, 4,129/s with five.
    auto pconf = kafka::client_conf({{"bootstrap.servers", options_.bootstrap_servers},
                                     {"client.id", options_.client_id + "-registry"},
                                     {"linger.ms", "0"},
                                     {"enable.idempotence", "true"},
                                     {"max.in.flight.requests.per.connection", "1"},
                                     {"log_level", "4"}},
                                    options_.kafka_properties);
    if (!pconf)
        return base::failure(pconf.err());
    if ((*pconf)->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&reports()), error) !=
        RdKafka::Conf::CONF_OK)
        return fail(error);
    producer_.reset(RdKafka::Producer::create(pconf->get(), error));
    if (!producer_)
        return fail("registry producer: " + kafka::scrub(error, options_.kafka_properties));

    // Every partition of the topic, from the stored position.
    RdKafka::Metadata* md = nullptr;
    std::unique_ptr<RdKafka::Topic> topic(
        RdKafka::Topic::create(producer_.get(), options_.topic, nullptr, error));
    const auto err = producer_->metadata(false, topic.get(), &md, 10000);
    std::unique_ptr<RdKafka::Metadata> metadata(md);
    if (err != RdKafka::ERR_NO_ERROR || metadata->topics()->empty() ||
        metadata->topics()->at(0)->partitions()->empty()) {
        return fail("cannot read the partitions of " + options_.topic + ": " + RdKafka::err2str(err));
    }
    std::map<std::int32_t, std::int64_t> stored;
    {
        std::lock_guard lock(store_mutex_);
        stored = store_.feed_offsets();
    }
    std::vector<RdKafka::TopicPartition*> parts;
    for (const auto* p : *metadata->topics()->at(0)->partitions()) {
        const auto it = stored.find(p->id());
        parts.push_back(RdKafka::TopicPartition::create(
            options_.topic, p->id(), it != stored.end() ? it->second : RdKafka::Topic::OFFSET_BEGINNING));
    }
    const auto assigned = consumer_->assign(parts);
    RdKafka::TopicPartition::destroy(parts);
    if (assigned != RdKafka::ERR_NO_ERROR)
        return fail("cannot assign " + options_.topic + ": " + RdKafka::err2str(assigned));
    loop_.repeat([this] { step(); });
    loop_.start();
    return loaded;
}

void subscription_feed::stop() {
    {
        // Writers waiting for their change to be applied give up now.
        std::lock_guard lock(applied_mutex_);
        stopping_ = true;
    }
    applied_cv_.notify_all();
    loop_.stop();
    if (producer_)
        producer_->flush(2000);
    if (consumer_) {
        consumer_->unassign();
    }
}

void subscription_feed::step() {
    HERALD_ASSERT(loop_.is_current());
    struct applied_change {
        std::string key;
        std::optional<herald::v1::Subscription> sub;  // nullopt: forget
    };
    {
        std::vector<applied_change> batch;
        std::map<std::int32_t, std::int64_t> next;
        int wait_ms = 100;
        while (batch.size() < 1000) {
            std::unique_ptr<RdKafka::Message> m(consumer_->consume(wait_ms));
            if (m->err() == RdKafka::ERR__TIMED_OUT || m->err() == RdKafka::ERR__PARTITION_EOF)
                break;
            if (m->err() != RdKafka::ERR_NO_ERROR) {
                HERALD_LOG_WARN("registry", "consume ", options_.topic, ": ", m->errstr());
                break;
            }
            wait_ms = 0;  // drain what is there, then apply it in one transaction
            next[m->partition()] = m->offset() + 1;
            const std::string key = m->key() != nullptr ? *m->key() : std::string();
            if (m->len() == 0) {
                const auto who = parse_subscriber_key(key);
                if (!who) {
                    dead_letter(*m, {}, "invalid_recipient_id",
                                "a tombstone's key must be tenant/recipient_id");
                    continue;
                }
                if (key.find('/') != std::string::npos) {
                    batch.push_back({key, std::nullopt});
                    continue;
                }
                // A bare recipient id, as written before subscribers were
                // keyed by tenant: it erased that id everywhere, and still does.
                std::vector<std::string> tenants;
                {
                    std::lock_guard lock(store_mutex_);
                    tenants = store_.tenants_of(who->recipient_id);
                }
                for (const auto& tenant : tenants)
                    batch.push_back({subscriber_key(tenant, who->recipient_id), std::nullopt});
                continue;
            }
            const std::string value(static_cast<const char*>(m->payload()), m->len());
            const bool json = is_json(header_value(*m, "content-type"));
            auto s = decode_subscription(value, json);
            if (s) {
                if (auto secure = check_webhook_transport(*s, options_.allow_insecure_webhooks); !secure)
                    s = base::failure(secure.err());
            }
            if (!s) {
                const auto named = parse_subscriber_key(key);
                const auto who = named ? named : identify(value, json);
                dead_letter(*m, who ? subscriber_key(who->tenant, who->recipient_id) : std::string(),
                            s.err().code.message(), public_detail(s.err()));
                continue;
            }
            // The key is tenant/recipient_id; a bare recipient_id is a record
            // written before subscribers were keyed by tenant (any tenant).
            const std::string expected = subscriber_key(*s);
            if (!key.empty() && key != expected && key != s->recipient_id()) {
                const auto named = parse_subscriber_key(key);
                dead_letter(*m, named ? subscriber_key(named->tenant, named->recipient_id) : expected,
                            "invalid_field", "record key is not tenant/recipient_id of its value");
                continue;
            }
            batch.push_back({expected, std::move(*s)});
        }
        producer_->poll(0);
        if (next.empty())
            return;
        {
            std::lock_guard lock(store_mutex_);
            bool ok = static_cast<bool>(store_.begin());
            for (const auto& c : batch) {
                if (c.sub) {
                    ok = ok && static_cast<bool>(store_.put(*c.sub));
                } else {
                    const auto who = parse_subscriber_key(c.key);
                    ok = ok && who && static_cast<bool>(store_.erase(who->tenant, who->recipient_id));
                }
            }
            for (const auto& [p, o] : next) ok = ok && static_cast<bool>(store_.set_feed_offset(p, o));
            if (!ok || !store_.commit()) {
                HERALD_LOG_ERROR("registry", "cannot write ", store_.path(), "; changes stay in memory only");
            }
            const bool erased =
                std::any_of(batch.begin(), batch.end(), [](const applied_change& c) { return !c.sub; });
            if (erased && !store_.checkpoint()) {
                HERALD_LOG_ERROR("registry", "cannot checkpoint ", store_.path(), " after an erase");
            }
        }
        for (const auto& c : batch) {
            on_apply_(c.sub ? &*c.sub : nullptr, c.key);
            (c.sub ? applied_total_ : erased_total_)->Increment();
        }
        {
            std::lock_guard lock(applied_mutex_);
            for (const auto& [p, o] : next) applied_[p] = o;
        }
        applied_cv_.notify_all();
    }
}

void subscription_feed::dead_letter(const RdKafka::Message& m, const std::string& who,
                                    const std::string& reason, const std::string& detail) {
    // A dead letter says which record, whose and why: never the record
    // itself, which holds the person's address. The record stays on the
    // compacted topic until the person's next change or tombstone replaces it.
    rejected_->Add({{"reason", reason}}).Increment();
    const std::string source =
        options_.topic + "/" + std::to_string(m.partition()) + "@" + std::to_string(m.offset());
    HERALD_LOG_WARN("registry", "dead-lettered ", source, who.empty() ? std::string() : " (" + who + ")",
                    ": ", reason);
    google::protobuf::Struct letter;
    auto& f = *letter.mutable_fields();
    f["source"].set_string_value(source);
    f["reason"].set_string_value(reason);
    f["detail"].set_string_value(detail);
    if (const auto named = parse_subscriber_key(who)) {
        f["tenant"].set_string_value(named->tenant);
        f["recipient_id"].set_string_value(named->recipient_id);
    }
    std::string value;
    (void)google::protobuf::util::MessageToJsonString(letter, &value);
    RdKafka::Headers* headers = RdKafka::Headers::create();
    headers->add("herald-dlq-reason", reason);
    headers->add("herald-dlq-detail", detail.substr(0, 1024));
    headers->add("herald-dlq-source", source);
    headers->add("content-type", "application/json");
    const auto err = producer_->produce(options_.dlq_topic, RdKafka::Topic::PARTITION_UA,
                                        RdKafka::Producer::RK_MSG_COPY, value.data(), value.size(),
                                        who.empty() ? nullptr : who.data(), who.size(), 0, headers, nullptr);
    if (err != RdKafka::ERR_NO_ERROR) {
        delete headers;
        HERALD_LOG_ERROR("registry", "cannot dead-letter: ", RdKafka::err2str(err));
    }
}

base::result<void> subscription_feed::publish(const std::vector<change>& changes,
                                              std::chrono::milliseconds timeout) {
    const auto fail = [](const std::string& what) {
        return base::failure(std::make_error_code(std::errc::timed_out), what);
    };
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<std::shared_ptr<produce_wait>> waits;
    waits.reserve(changes.size());
    for (const auto& c : changes) {
        auto waiter = std::make_shared<produce_wait>();
        auto* opaque = new std::shared_ptr<produce_wait>(waiter);
        RdKafka::Headers* headers = RdKafka::Headers::create();
        if (c.json)
            headers->add("content-type", "application/json");
        for (;;) {
            const auto err = producer_->produce(
                options_.topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                c.json ? const_cast<char*>(c.json->data()) : nullptr, c.json ? c.json->size() : 0,
                c.key.data(), c.key.size(), 0, headers, opaque);
            if (err == RdKafka::ERR_NO_ERROR)
                break;
            if (err == RdKafka::ERR__QUEUE_FULL && std::chrono::steady_clock::now() < deadline) {
                producer_->poll(10);
                continue;
            }
            delete headers;
            delete opaque;
            return fail("cannot write to " + options_.topic + ": " + RdKafka::err2str(err));
        }
        waits.push_back(std::move(waiter));
    }
    std::map<std::int32_t, std::int64_t> last;  // highest offset written per partition
    for (const auto& w : waits) {
        for (;;) {
            {
                std::lock_guard lock(w->m);
                if (w->done)
                    break;
            }
            if (std::chrono::steady_clock::now() > deadline)
                return fail("Kafka did not acknowledge the changes to " + options_.topic + " in time");
            if (stopped())
                return fail("heraldd is shutting down");
            producer_->poll(5);
        }
        if (w->err != RdKafka::ERR_NO_ERROR)
            return fail("Kafka refused a change: " + RdKafka::err2str(w->err));
        last[w->partition] = std::max(last[w->partition], w->offset);
    }
    std::unique_lock lock(applied_mutex_);
    const bool applied = applied_cv_.wait_until(lock, deadline, [&] {
        if (stopping_)
            return true;
        for (const auto& [p, o] : last) {
            const auto it = applied_.find(p);
            if (it == applied_.end() || it->second <= o)
                return false;
        }
        return true;
    });
    if (stopping_)
        return fail("the changes were written to " + options_.topic + ", but heraldd is shutting down");
    if (!applied)
        return fail("the changes were written to " + options_.topic + " but not applied here in time");
    return {};
}

base::result<void> subscription_feed::publish(const herald::v1::Subscription& s,
                                              std::chrono::milliseconds timeout) {
    return publish(std::vector<change>{{subscriber_key(s), to_json(s)}}, timeout);
}

base::result<void> subscription_feed::publish_tombstone(const std::string& tenant,
                                                        const std::string& recipient_id,
                                                        std::chrono::milliseconds timeout) {
    return publish(std::vector<change>{{subscriber_key(tenant, recipient_id), std::nullopt}}, timeout);
}

std::optional<herald::v1::Subscription> subscription_feed::get(const std::string& tenant,
                                                               const std::string& recipient_id) {
    std::lock_guard lock(store_mutex_);
    return store_.get(tenant, recipient_id);
}

}  // namespace herald::registry
