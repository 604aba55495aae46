#include "outbound/receipt_writer.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <librdkafka/rdkafkacpp.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>

#include "base/clock.h"
#include "base/log.h"
#include "herald/v1/receipt.pb.h"
#include "kafka/client_config.h"

namespace herald::outbound {

/// Counts what the broker finally took or refused; librdkafka calls it from
/// poll() and flush(): on the writer's poller thread, or at the drain.
class receipt_writer::delivery_reports : public RdKafka::DeliveryReportCb {
  public:
    explicit delivery_reports(metrics::registry& reg) {
        auto& family = prometheus::BuildCounter()
                           .Name("herald_receipt_records_total")
                           .Help(
                               "Receipt and dead-letter records of outbound deliveries the broker "
                               "acknowledged (written) or refused for good (failed)")
                           .Register(reg.prom());
        written_ = &family.Add({{"result", "written"}});
        failed_ = &family.Add({{"result", "failed"}});
    }
    void dr_cb(RdKafka::Message& m) override {
        if (m.err() == RdKafka::ERR_NO_ERROR) {
            written_->Increment();
            return;
        }
        failed_->Increment();
        HERALD_LOG_ERROR("outbound", "receipt for ", m.key() ? *m.key() : std::string(), " not written to ",
                         m.topic_name(), ": ", m.errstr());
    }

    void refused() { failed_->Increment(); }

  private:
    prometheus::Counter* written_ = nullptr;
    prometheus::Counter* failed_ = nullptr;
};

base::result<std::unique_ptr<receipt_writer>> receipt_writer::create(
    const std::string& bootstrap_servers, const std::string& client_id, std::string receipts_topic,
    std::string dlq_topic, const kafka::properties& kafka_properties, metrics::registry& metrics) {
    std::unique_ptr<receipt_writer> w(new receipt_writer());
    w->reports_ = std::make_unique<delivery_reports>(metrics);
    w->queue_full_waits_ = &prometheus::BuildCounter()
                                .Name("herald_receipt_queue_full_waits_total")
                                .Help(
                                    "Times an outbound shard waited because the receipt producer's "
                                    "queue was full (the broker unreachable for long)")
                                .Register(metrics.prom())
                                .Add({});
    // Idempotent: a produce retried after a timeout is not written twice, and
    // receipts of one broadcast stay in order. One request in flight: with
    // pipelined requests and injected produce errors, librdkafka 2.0's mock
    // cluster acknowledged every receipt yet kept fewer (tests/integration/
    // outbound_test.cc, KafkaFailing...); batching (linger.ms) keeps the rate
    // far above any gateway's (bench/RESULTS.md). No message
    // timeout: a receipt waits for a broker that is away instead of being
    // dropped after 5 min.
    auto conf = kafka::client_conf({{"bootstrap.servers", bootstrap_servers},
                                    {"client.id", client_id + "-receipts"},
                                    {"linger.ms", "20"},
                                    {"enable.idempotence", "true"},
                                    {"max.in.flight.requests.per.connection", "1"},
                                    {"message.timeout.ms", "0"},
                                    {"log_level", "4"}},
                                   kafka_properties);
    if (!conf)
        return base::failure(conf.err());
    std::string err;
    if ((*conf)->set("dr_cb", w->reports_.get(), err) != RdKafka::Conf::CONF_OK)
        return base::failure(std::make_error_code(std::errc::invalid_argument), "dr_cb: " + err);
    w->producer_.reset(RdKafka::Producer::create(conf->get(), err));
    if (!w->producer_) {
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             "receipts producer: " + kafka::scrub(err, kafka_properties));
    }
    w->receipts_topic_ = std::move(receipts_topic);
    w->dlq_topic_ = std::move(dlq_topic);
    w->poller_.repeat([raw = w.get()] { raw->producer_->poll(100); });
    w->poller_.start();  // after stop(), the drain's flush serves what is left
    return w;
}

receipt_writer::~receipt_writer() {
    stop();
    flush(500);  // heraldd flushes (and reports what is left) during its drain
}

void receipt_writer::stop() noexcept {
    stopping_.store(true, std::memory_order_relaxed);
    poller_.stop();
}

int receipt_writer::flush(int timeout_ms) {
    if (!producer_)
        return 0;
    producer_->flush(timeout_ms);
    return producer_->outq_len();
}

void receipt_writer::write(const outcome_event& e) {
    herald::v1::Receipt r;
    r.set_announcement_id(e.broadcast.id);
    r.set_tenant(e.broadcast.tenant);
    r.set_audience(e.broadcast.audience);
    r.set_recipient_id(e.recipient_id);
    r.set_channel(e.channel == herald::v1::CHANNEL_WHATSAPP ? "whatsapp"
                  : e.channel == herald::v1::CHANNEL_SMS    ? "sms"
                                                            : "webhook");
    r.set_outcome(e.outcome);
    r.set_reason(e.reason);
    r.set_attempts(e.attempts);
    *r.mutable_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(base::wall_now_ns());
    r.set_seq(e.broadcast.seq.get());
    std::string json;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(r, &json, opts);

    const auto produce = [&](const std::string& topic, RdKafka::Headers* headers) {
        headers->add("content-type", "application/json");
        // A full queue means the broker has been away for long: wait here (the
        // outbound shard stops delivering with it) rather than lose the
        // receipt — unless heraldd is stopping.
        RdKafka::ErrorCode err = RdKafka::ERR_NO_ERROR;
        for (;;) {
            err = producer_->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                                     json.data(), json.size(), e.broadcast.id.data(), e.broadcast.id.size(),
                                     0, headers, nullptr);
            if (err != RdKafka::ERR__QUEUE_FULL || stopping_.load(std::memory_order_relaxed))
                break;
            queue_full_waits_->Increment();
            producer_->poll(100);
        }
        if (err != RdKafka::ERR_NO_ERROR) {
            delete headers;
            reports_->refused();
            HERALD_LOG_ERROR("outbound", "cannot write to ", topic, ": ", RdKafka::err2str(err));
        }
    };
    produce(receipts_topic_, RdKafka::Headers::create());
    if (e.exhausted) {
        RdKafka::Headers* h = RdKafka::Headers::create();
        h->add("herald-dlq-reason", "delivery_failed");
        h->add("herald-dlq-detail", e.reason);
        h->add("herald-dlq-source", "outbound/" + e.recipient_id);
        produce(dlq_topic_, h);
    }
}

}  // namespace herald::outbound
