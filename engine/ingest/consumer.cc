#include "ingest/consumer.h"

#include <google/protobuf/util/time_util.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/assert.h"
#include "base/clock.h"
#include "base/log.h"
#include "config/config.h"
#include "ingest/offset_tracker.h"
#include "kafka/client_config.h"
#include "model/position.h"

namespace herald::ingest {
namespace {

constexpr int poll_timeout_ms = 20;
constexpr auto lag_period = std::chrono::seconds(1);

std::string header_value(RdKafka::Message& m, const char* name) {
    const RdKafka::Headers* headers = m.headers();
    if (headers == nullptr) {
        return {};
    }
    const RdKafka::Headers::Header h = headers->get_last(name);
    if (h.err() != RdKafka::ERR_NO_ERROR || h.value() == nullptr) {
        return {};
    }
    return std::string(static_cast<const char*>(h.value()), h.value_size());
}

}  // namespace

/// librdkafka's callbacks, invoked on the ingest thread from consume() and,
/// for dead letters, from the producer's poll() and flush() (at the very end
/// from the thread that finishes the consumer: they only count and enqueue).
class announcement_consumer::rebalancer : public RdKafka::RebalanceCb,
                                          public RdKafka::OffsetCommitCb,
                                          public RdKafka::EventCb,
                                          public RdKafka::DeliveryReportCb {
  public:
    explicit rebalancer(announcement_consumer& owner) : owner_(owner) {}

    // A dead letter counts as produced once the broker has it, and only then
    // is its record's offset finished (committable). One the broker refused
    // for good is counted and logged (HeraldDeadLetterProduceFailing) and
    // finished too: holding it would stop the partition's commits for good.
    void dr_cb(RdKafka::Message& m) override {
        if (m.err() == RdKafka::ERR_NO_ERROR) {
            owner_.probe_.dlq_produced();
        } else {
            owner_.probe_.dlq_failed();
            HERALD_LOG_ERROR(owner_.options_.name, "dead letter refused by Kafka: ", m.errstr());
        }
        owner_.finished(source_of(m.msg_opaque()));
    }

    /// The dead-lettered record's position, carried in the message's opaque
    /// pointer (no allocation): partition in the top 16 bits, offset below.
    static void* opaque_of(std::int32_t partition, std::int64_t offset) {
        return reinterpret_cast<void*>(
            (static_cast<std::uintptr_t>(partition) << 48) |
            (static_cast<std::uintptr_t>(offset) & ((std::uintptr_t{1} << 48) - 1)));
    }
    static model::kafka_position source_of(void* opaque) {
        const auto bits = reinterpret_cast<std::uintptr_t>(opaque);
        return {model::kafka_partition(static_cast<std::int32_t>(bits >> 48)),
                model::kafka_offset(static_cast<std::int64_t>(bits & ((std::uintptr_t{1} << 48) - 1)))};
    }

    void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                      std::vector<RdKafka::TopicPartition*>& partitions) override {
        if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
            resolve_start_positions(*consumer, partitions);
            plan_refill(*consumer, partitions);
            consumer->assign(partitions);
            assigned = partitions.size();
            for (const auto* p : partitions) {
                owner_.probe_.set_lag(p->partition(), 0);  // visible from the start, refined every second
            }
            HERALD_LOG_INFO(owner_.options_.name, "assigned ", partitions.size(), " partition(s) of ",
                            owner_.options_.topic);
            owner_.assigned_.store(!partitions.empty(), std::memory_order_release);
        } else {
            // Commit what is finished before the partitions go: in the shared
            // outbound group the next owner starts from here, and its own
            // checkpoint store does not know what this instance already sent.
            owner_.drain_completions();
            // Lost: another member may own them already. Closing: the final
            // commit is done, and a synchronous one here could wait for an
            // unreachable coordinator without bound.
            if (!consumer->assignment_lost() && !owner_.closing_)
                owner_.commit(true);
            for (const auto* p : partitions) {
                tracker.forget(p->partition());
                refills.erase(p->partition());
            }
            owner_.refilling_.store(0, std::memory_order_release);
            consumer->unassign();
            assigned = 0;
            owner_.assigned_.store(false, std::memory_order_release);
            HERALD_LOG_INFO(owner_.options_.name, "partitions revoked");
        }
    }

    void offset_commit_cb(RdKafka::ErrorCode err, std::vector<RdKafka::TopicPartition*>& offsets) override {
        ++owner_.commits_answered_;
        if (err == RdKafka::ERR_NO_ERROR || err == RdKafka::ERR__NO_OFFSET) {
            owner_.probe_.commit_ok();
        } else {
            owner_.probe_.commit_failed();
            HERALD_LOG_WARN(owner_.options_.name, "offset commit failed: ", RdKafka::err2str(err));
        }
    }

    void event_cb(RdKafka::Event& event) override {
        if (event.type() == RdKafka::Event::EVENT_ERROR) {
            owner_.probe_.consumer_error();
            HERALD_LOG_WARN(owner_.options_.name, "kafka: ", RdKafka::err2str(event.err()), ": ",
                            event.str());
        } else if (event.type() == RdKafka::Event::EVENT_LOG &&
                   event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
            HERALD_LOG_WARN(owner_.options_.name, "kafka: ", event.fac(), ": ", event.str());
        }
    }

    offset_tracker tracker;
    std::size_t assigned = 0;

    /// A partition reading back its history: records below live_from are
    /// remembered, not delivered.
    struct refill_window {
        std::int64_t from = 0;
        std::int64_t live_from = 0;
        bool done = false;
    };
    std::unordered_map<std::int32_t, refill_window> refills;

  private:
    /// Moves each partition's start back over its recent history (bounded by
    /// age and count) and notes where live delivery begins.
    void plan_refill(RdKafka::KafkaConsumer& consumer, std::vector<RdKafka::TopicPartition*>& parts) {
        const auto& o = owner_.options_;
        if (o.history_refill_max_records == 0 || !owner_.on_history_)
            return;
        // Bounded by count here; by age when the shards take them into their
        // history (older than history_max_age_s: evicted at once). No time
        // lookup: the mock cluster has no time index.
        std::uint32_t refilling = 0;
        for (auto* p : parts) {
            const std::int64_t live_from = p->offset();
            if (live_from <= 0)
                continue;  // nothing before it, or a symbolic start (earliest: all of it is live anyway)
            std::int64_t low = 0;
            std::int64_t high = 0;
            if (consumer.query_watermark_offsets(p->topic(), p->partition(), &low, &high, 10000) !=
                RdKafka::ERR_NO_ERROR)
                continue;
            const std::int64_t from =
                std::max(low, live_from - static_cast<std::int64_t>(o.history_refill_max_records));
            if (from >= live_from)
                continue;
            refills[p->partition()] = refill_window{from, live_from, false};
            p->set_offset(from);
            ++refilling;
            HERALD_LOG_INFO(o.name, "partition ", p->partition(), ": reading back offsets ", from, "..",
                            live_from - 1, " for the recovery history");
        }
        owner_.refilling_.store(refilling, std::memory_order_release);
    }

    /// Pins each partition's start before assigning: the committed offset, or
    /// (no commit yet) the high watermark for "latest" / the beginning for
    /// "earliest". Left to librdkafka, "latest" would be looked up after the
    /// assignment, and records produced in between — after /readyz already
    /// said ready — would be skipped.
    void resolve_start_positions(RdKafka::KafkaConsumer& consumer,
                                 std::vector<RdKafka::TopicPartition*>& parts) {
        if (consumer.committed(parts, 10000) != RdKafka::ERR_NO_ERROR) {
            for (auto* p : parts) {
                p->set_offset(RdKafka::Topic::OFFSET_INVALID);
            }
        }
        for (auto* p : parts) {
            if (p->offset() >= 0) {
                continue;
            }
            if (owner_.options_.offset_reset == "earliest") {
                p->set_offset(RdKafka::Topic::OFFSET_BEGINNING);
                continue;
            }
            std::int64_t low = 0;
            std::int64_t high = 0;
            if (consumer.query_watermark_offsets(p->topic(), p->partition(), &low, &high, 10000) ==
                RdKafka::ERR_NO_ERROR) {
                p->set_offset(high);
            } else {
                p->set_offset(RdKafka::Topic::OFFSET_END);
            }
        }
    }

  private:
    announcement_consumer& owner_;
};

consumer_options consumer_options::live(const config::config& cfg, const std::string& bootstrap_servers,
                                        bool embedded_cluster) {
    consumer_options o;
    o.name = "live";
    o.dead_letter = false;  // the outbound consumer, one per cluster, dead-letters
    o.bootstrap_servers = bootstrap_servers;
    o.embedded_cluster = embedded_cluster;
    o.group_id = cfg.group_id;
    o.client_id = "heraldd-" + cfg.instance_id;
    o.topic = cfg.topic_announcements;
    o.dlq_topic = cfg.topic_dlq;
    o.offset_reset = cfg.offset_reset == config::kafka_start::earliest ? "earliest" : "latest";
    o.commit_interval = cfg.commit_interval;
    o.fetch_wait_max = cfg.fetch_wait_max;
    o.prefetch_kib = cfg.kafka_prefetch_kib;
    o.history_refill_max_records = cfg.history_refill_max_records;
    o.kafka_properties = cfg.kafka;
    o.decode_limits.max_payload_bytes = cfg.max_payload_bytes;
    o.decode_limits.max_clock_skew_ns = std::chrono::nanoseconds(cfg.max_clock_skew).count();
    o.decode_limits.max_deliver_ahead_ns = std::chrono::nanoseconds(cfg.max_deliver_ahead).count();
    return o;
}

consumer_options consumer_options::outbound(const config::config& cfg, const std::string& bootstrap_servers,
                                            bool embedded_cluster) {
    consumer_options o = live(cfg, bootstrap_servers, embedded_cluster);
    o.name = "outbound";
    o.group_id = cfg.outbound_group_id;
    o.client_id = "heraldd-" + cfg.instance_id + "-outbound";
    o.dead_letter = true;
    o.history_refill_max_records = 0;
    // Written down means finished: commit soon, because after a crash the
    // partition's next owner may be another instance whose checkpoint store
    // does not know what this one sent (same idempotency keys, though).
    o.commit_interval =
        std::min<std::chrono::milliseconds>(cfg.commit_interval, std::chrono::milliseconds(200));
    return o;
}

announcement_consumer::announcement_consumer(consumer_options options, probe& probe)
    : options_(std::move(options)),
      probe_(probe),
      callbacks_(std::make_unique<rebalancer>(*this)),
      loop_("herald-" + options_.name) {}

announcement_consumer::~announcement_consumer() {
    finish();
}

base::result<void> announcement_consumer::start(handler on_announcement, history_handler on_history) {
    on_announcement_ = std::move(on_announcement);
    on_history_ = std::move(on_history);
    const bool mock = options_.embedded_cluster;
    // A real broker answers a long-poll fetch as soon as data arrives; the
    // mock cluster only at the deadline, so keep it short there.
    const std::string fetch_wait = options_.fetch_wait_max.count() != 0
                                       ? std::to_string(options_.fetch_wait_max.count())
                                   : mock ? "2"
                                          : "100";
    auto conf = kafka::client_conf(
        {{"bootstrap.servers", options_.bootstrap_servers},
         {"group.id", options_.group_id},
         {"client.id", options_.client_id},
         {"enable.auto.commit", "false"},
         {"enable.auto.offset.store", "false"},
         {"auto.offset.reset", options_.offset_reset},
         // The mock cluster's rebalance rounds last about session.timeout.ms.
         {"session.timeout.ms", mock ? "3000" : "10000"},
         {"heartbeat.interval.ms", mock ? "500" : "3000"},
         {"fetch.wait.max.ms", fetch_wait},
         {"socket.nagle.disable", "true"},
         // The end of a partition completes its history read-back.
         {"enable.partition.eof", options_.history_refill_max_records != 0 ? "true" : "false"},
         {"queued.max.messages.kbytes", std::to_string(options_.prefetch_kib)},
         {"log_level", "4"}},
        options_.kafka_properties);
    if (!conf)
        return base::failure(conf.err().code, "kafka consumer config: " + conf.err().detail);
    std::string errstr;
    if ((*conf)->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(callbacks_.get()), errstr) !=
            RdKafka::Conf::CONF_OK ||
        (*conf)->set("offset_commit_cb", static_cast<RdKafka::OffsetCommitCb*>(callbacks_.get()), errstr) !=
            RdKafka::Conf::CONF_OK ||
        (*conf)->set("event_cb", static_cast<RdKafka::EventCb*>(callbacks_.get()), errstr) !=
            RdKafka::Conf::CONF_OK) {
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             "kafka consumer config: " + errstr);
    }
    consumer_.reset(RdKafka::KafkaConsumer::create(conf->get(), errstr));
    if (!consumer_) {
        return base::failure(std::make_error_code(std::errc::io_error),
                             "kafka consumer: " + kafka::scrub(errstr, options_.kafka_properties));
    }

    // Never written twice by a retry, never dropped by a timeout: the
    // record's offset is not committed until its dead letter is written.
    // One request in flight, as for receipts (outbound/receipt_writer.cc).
    auto pconf = kafka::client_conf({{"bootstrap.servers", options_.bootstrap_servers},
                                     {"client.id", options_.client_id + "-dlq"},
                                     {"linger.ms", "5"},
                                     {"log_level", "4"},
                                     {"enable.idempotence", "true"},
                                     {"message.timeout.ms", "0"},
                                     {"max.in.flight.requests.per.connection", "1"}},
                                    options_.kafka_properties);
    if (!pconf)
        return base::failure(pconf.err().code, "kafka producer config: " + pconf.err().detail);
    if ((*pconf)->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(callbacks_.get()), errstr) !=
        RdKafka::Conf::CONF_OK) {
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             "kafka producer config: " + errstr);
    }
    dlq_.reset(RdKafka::Producer::create(pconf->get(), errstr));
    if (!dlq_) {
        return base::failure(std::make_error_code(std::errc::io_error),
                             "kafka producer: " + kafka::scrub(errstr, options_.kafka_properties));
    }
    const RdKafka::ErrorCode err = consumer_->subscribe({options_.topic});
    if (err != RdKafka::ERR_NO_ERROR) {
        return base::failure(std::make_error_code(std::errc::io_error),
                             "subscribe to " + options_.topic + ": " + RdKafka::err2str(err));
    }
    HERALD_LOG_INFO(options_.name, "consuming ", options_.topic, " from ", options_.bootstrap_servers,
                    " as group ", options_.group_id);
    loop_.repeat([this] { step(); });
    loop_.start();
    return {};
}

const std::string& announcement_consumer::epoch_of(model::kafka_partition partition) {
    HERALD_ASSERT(loop_.is_current());
    const auto p = static_cast<std::size_t>(std::max(partition.get(), 0));
    if (p >= epochs_.size())
        epochs_.resize(p + 1);
    if (epochs_[p].empty())
        epochs_[p] = epoch_of_any_thread(partition);
    return epochs_[p];
}

std::string announcement_consumer::epoch_of_any_thread(model::kafka_partition partition) {
    std::lock_guard lock(cluster_id_mutex_);
    if (cluster_id_.empty()) {
        // Asked once, when a record arrived (or a stored broadcast is
        // released): the metadata with the cluster id is known by then.
        if (consumer_)
            cluster_id_ = consumer_->clusterid(5000);
        if (cluster_id_.empty()) {
            // Without it, numbers from this start must never be compared with
            // another start's: an id of this process alone (clients get `gap`).
            std::random_device random;
            cluster_id_ = "unknown-" + std::to_string(random()) + "-" + std::to_string(random());
            HERALD_LOG_WARN(options_.name,
                            "Kafka reported no cluster id; epochs are this process's own (clients resuming "
                            "across a restart are told gap)");
        } else {
            HERALD_LOG_INFO(options_.name, "Kafka cluster id ", cluster_id_);
        }
    }
    return model::epoch_of(cluster_id_, options_.topic, partition.get());
}

void announcement_consumer::end_refill(std::int32_t partition) {
    if (auto it = callbacks_->refills.find(partition); it != callbacks_->refills.end() && !it->second.done) {
        it->second.done = true;
        refilling_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void announcement_consumer::handle(RdKafka::Message& m) {
    switch (m.err()) {
        case RdKafka::ERR_NO_ERROR:
            process(m);
            break;
        case RdKafka::ERR__TIMED_OUT:
            break;
        case RdKafka::ERR__PARTITION_EOF:
            // A read-back that found fewer records than its window (a gap in
            // the offsets) is complete at the end of the log.
            end_refill(m.partition());
            break;
        case RdKafka::ERR__AUTO_OFFSET_RESET:
            // The read-back started where retention has just deleted records,
            // and the reset jumped to the end: live delivery must still begin
            // at the committed position.
            if (auto it = callbacks_->refills.find(m.partition()); it != callbacks_->refills.end()) {
                HERALD_LOG_WARN(options_.name, "partition ", m.partition(),
                                ": history read-back fell off the log; live from offset ",
                                it->second.live_from);
                std::unique_ptr<RdKafka::TopicPartition> at(
                    RdKafka::TopicPartition::create(options_.topic, m.partition(), it->second.live_from));
                (void)consumer_->seek(*at, 5000);
                end_refill(m.partition());
                callbacks_->refills.erase(it);
                break;
            }
            [[fallthrough]];
        default:
            probe_.consumer_error();
            HERALD_LOG_WARN(options_.name, "consume: ", m.errstr());
            break;
    }
}

void announcement_consumer::set_paused(bool pause) {
    std::vector<RdKafka::TopicPartition*> parts;
    if (consumer_->assignment(parts) == RdKafka::ERR_NO_ERROR && !parts.empty()) {
        (void)(pause ? consumer_->pause(parts) : consumer_->resume(parts));
    }
    RdKafka::TopicPartition::destroy(parts);
    if (paused_ != pause) {
        probe_.set_paused(pause);
        HERALD_LOG_INFO(options_.name, pause ? "overloaded: pausing " : "resuming ", options_.topic);
    }
    paused_ = pause;
}

void announcement_consumer::step() {
    HERALD_ASSERT(loop_.is_current());
    if (closed_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // until finish() stops the loop
        return;
    }
    if (options_.overloaded) {
        const bool over = options_.overloaded();
        if (over != paused_)
            set_paused(over);
    }
    if (paused_) {
        // Partitions assigned after the pause (start-up, rebalance) arrive unpaused.
        if (++paused_polls_ % 20 == 0)
            set_paused(true);
        // Keep librdkafka's group session alive while nothing is fetched.
        std::unique_ptr<RdKafka::Message> m(consumer_->consume(0));
        handle(*m);  // fetched before the pause took effect, or an event
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    } else if (consuming_.load(std::memory_order_acquire)) {
        std::unique_ptr<RdKafka::Message> m(consumer_->consume(poll_timeout_ms));
        handle(*m);
    } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    drain_completions();
    dlq_->poll(0);
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_commit_) {
        commit(false);
        next_commit_ = now + options_.commit_interval;
    }
    if (now >= next_lag_) {
        update_lag(paused_);
        next_lag_ = now + lag_period;
    }
}

bool announcement_consumer::refill(RdKafka::Message& m) {
    auto it = callbacks_->refills.find(m.partition());
    if (it == callbacks_->refills.end())
        return false;
    auto& w = it->second;
    const auto finish_window = [&] {
        if (!w.done) {
            w.done = true;
            refilling_.fetch_sub(1, std::memory_order_acq_rel);
        }
    };
    if (m.offset() >= w.live_from) {
        finish_window();
        callbacks_->refills.erase(it);
        return false;
    }
    const std::string_view value(static_cast<const char*>(m.payload()), m.len());
    const bool json = is_json_content_type(header_value(m, "content-type"));
    auto decoded = decode_announcement(value, json, options_.decode_limits, base::wall_now_ns());
    if (decoded) {
        if (!decoded->has_created_at() &&
            m.timestamp().type != RdKafka::MessageTimestamp::MSG_TIMESTAMP_NOT_AVAILABLE)
            *decoded->mutable_created_at() =
                google::protobuf::util::TimeUtil::MillisecondsToTimestamp(m.timestamp().timestamp);
        on_history_(
            *decoded,
            model::kafka_position{model::kafka_partition(m.partition()), model::kafka_offset(m.offset())},
            model::kafka_offset(w.from));
        probe_.refilled();
    }
    if (m.offset() + 1 >= w.live_from)
        finish_window();
    return true;
}

void announcement_consumer::process(RdKafka::Message& m) {
    if (refill(m))
        return;
    probe_.consumed();
    const std::int32_t partition = m.partition();
    const std::int64_t offset = m.offset();
    callbacks_->tracker.started(partition, offset);
    const std::string_view value(static_cast<const char*>(m.payload()), m.len());
    const bool json = is_json_content_type(header_value(m, "content-type"));
    auto decoded = decode_announcement(value, json, options_.decode_limits, base::wall_now_ns());
    if (!decoded) {
        // A queued dead letter finishes its offset once Kafka acknowledges it.
        if (options_.dead_letter && dead_letter(m, decoded.err()))
            return;
        if (!options_.dead_letter)
            probe_.skipped();
        callbacks_->tracker.finished(partition, offset);
        return;
    }
    if (!decoded->has_created_at()) {
        // Documented default: the Kafka record's timestamp (else now).
        const auto ts = m.timestamp();
        const std::int64_t ms = ts.type == RdKafka::MessageTimestamp::MSG_TIMESTAMP_NOT_AVAILABLE
                                    ? base::wall_now_ns() / 1'000'000
                                    : ts.timestamp;
        *decoded->mutable_created_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(ms);
    }
    if (on_announcement_(
            *decoded, model::kafka_position{model::kafka_partition(partition), model::kafka_offset(offset)}))
        callbacks_->tracker.finished(partition, offset);
}

bool announcement_consumer::dead_letter(RdKafka::Message& m, const base::error& why) {
    const std::string reason = why.code.message();
    probe_.rejected(reason);
    HERALD_LOG_WARN(options_.name, "dead-lettered ", options_.topic, "/", m.partition(), "@", m.offset(),
                    ": ", why.describe());
    RdKafka::Headers* headers = RdKafka::Headers::create();
    const std::string detail = why.detail.substr(0, 1024);
    const std::string source =
        options_.topic + "/" + std::to_string(m.partition()) + "@" + std::to_string(m.offset());
    headers->add("herald-dlq-reason", reason);
    headers->add("herald-dlq-detail", detail);
    headers->add("herald-dlq-source", source);
    const std::string content_type = header_value(m, "content-type");
    if (!content_type.empty()) {
        headers->add("content-type", content_type);
    }
    const RdKafka::ErrorCode err =
        dlq_->produce(options_.dlq_topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                      const_cast<void*>(m.payload()), m.len(), m.key_pointer(), m.key_len(), 0, headers,
                      rebalancer::opaque_of(m.partition(), m.offset()));
    if (err != RdKafka::ERR_NO_ERROR) {
        delete headers;  // ownership passes to librdkafka only on success
        probe_.dlq_failed();
        HERALD_LOG_ERROR(options_.name, "cannot dead-letter record: ", RdKafka::err2str(err));
        return false;
    }
    return true;
}

void announcement_consumer::finished(model::kafka_position p) {
    done_.enqueue(p);
}

void announcement_consumer::drain_completions() {
    model::kafka_position batch[128];
    std::size_t n;
    while ((n = done_.try_dequeue_bulk(batch, 128)) != 0) {
        for (std::size_t i = 0; i < n; ++i) {
            callbacks_->tracker.finished(batch[i].partition.get(), batch[i].offset.get());
        }
    }
}

bool announcement_consumer::commit(bool synchronous) {
    // A dead-lettered record's offset is finished only once Kafka has its
    // dead letter (see dr_cb); the final commit waits a little for them.
    if (synchronous && dlq_->outq_len() > 0) {
        dlq_->flush(1000);
        drain_completions();
    }
    auto positions = callbacks_->tracker.take_committable();
    if (positions.empty()) {
        return false;
    }
    std::vector<RdKafka::TopicPartition*> parts;
    parts.reserve(positions.size());
    for (const auto& [partition, position] : positions) {
        parts.push_back(RdKafka::TopicPartition::create(options_.topic, partition, position));
    }
    const RdKafka::ErrorCode err = synchronous ? consumer_->commitSync(parts) : consumer_->commitAsync(parts);
    // offset_commit_cb answers synchronous commits too.
    if (err == RdKafka::ERR_NO_ERROR)
        ++commits_sent_;
    if (synchronous) {
        if (err == RdKafka::ERR_NO_ERROR) {
            probe_.commit_ok();
        } else {
            probe_.commit_failed();
            HERALD_LOG_WARN(options_.name, "final commit failed: ", RdKafka::err2str(err));
        }
    }
    RdKafka::TopicPartition::destroy(parts);
    return err == RdKafka::ERR_NO_ERROR;
}

void announcement_consumer::update_lag(bool paused) {
    std::vector<RdKafka::TopicPartition*> parts;
    if (consumer_->assignment(parts) != RdKafka::ERR_NO_ERROR || parts.empty()) {
        RdKafka::TopicPartition::destroy(parts);
        return;
    }
    consumer_->position(parts);
    for (auto* p : parts) {
        std::int64_t low = 0;
        std::int64_t high = 0;
        // A paused partition fetches nothing, so its cached high watermark
        // stands still: ask the broker (the consumer is idle anyway).
        const RdKafka::ErrorCode got =
            paused ? consumer_->query_watermark_offsets(p->topic(), p->partition(), &low, &high, 200)
                   : consumer_->get_watermark_offsets(p->topic(), p->partition(), &low, &high);
        if (got == RdKafka::ERR_NO_ERROR && high >= 0) {
            const std::int64_t position = p->offset() >= 0 ? p->offset() : low;
            probe_.set_lag(p->partition(), static_cast<double>(std::max<std::int64_t>(0, high - position)));
        }
    }
    RdKafka::TopicPartition::destroy(parts);
}

void announcement_consumer::finish(std::chrono::milliseconds deadline) {
    consuming_.store(false, std::memory_order_release);
    if (!loop_.running())
        return;
    const auto until = std::chrono::steady_clock::now() + deadline;
    loop_.run_and_wait([this, until] {
        // From here a revocation commits nothing itself: that could wait for
        // an unreachable coordinator without bound.
        closing_ = true;
        // What the shards finished (and dead letters Kafka acknowledged) up
        // to now, committed; waiting at most until `until` for the answer.
        if (dlq_->outq_len() > 0)
            dlq_->flush(static_cast<int>(std::max<std::int64_t>(
                0, std::chrono::duration_cast<std::chrono::milliseconds>(until -
                                                                         std::chrono::steady_clock::now())
                           .count() /
                       2)));
        drain_completions();
        set_paused(true);  // from here consume() only serves callbacks
        (void)commit(false);
        // Wait for the answers to every commit still in flight (this one and
        // periodic ones), so the next instance starts where this one ended.
        while (commits_answered_ < commits_sent_ && std::chrono::steady_clock::now() < until) {
            std::unique_ptr<RdKafka::Message> m(consumer_->consume(20));
        }
        if (commits_answered_ < commits_sent_)
            HERALD_LOG_WARN(options_.name,
                            "Kafka did not answer the final commit in time; the records "
                            "since the last commit will be consumed again");
        // Leaving the group is bounded by librdkafka (about session.timeout.ms).
        consumer_->close();
        closed_ = true;
        assigned_.store(false, std::memory_order_release);
    });
    loop_.stop();
    if (dlq_) {
        dlq_->flush(1000);
    }
}

}  // namespace herald::ingest
