#include "outbound/receipt_writer.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <librdkafka/rdkafkacpp.h>

#include "base/clock.h"
#include "base/log.h"
#include "herald/v1/receipt.pb.h"

namespace herald::outbound {

base::result<std::unique_ptr<receipt_writer>> receipt_writer::create(const std::string& bootstrap_servers,
                                                                     const std::string& client_id,
                                                                     std::string receipts_topic,
                                                                     std::string dlq_topic) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string err;
    for (const auto& [k, v] : {std::pair<std::string, std::string>{"bootstrap.servers", bootstrap_servers},
                               {"client.id", client_id + "-receipts"},
                               {"linger.ms", "20"},
                               {"log_level", "4"}}) {
        if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
            return base::failure(std::make_error_code(std::errc::invalid_argument), k + ": " + err);
        }
    }
    std::unique_ptr<receipt_writer> w(new receipt_writer());
    w->producer_.reset(RdKafka::Producer::create(conf.get(), err));
    if (!w->producer_) {
        return base::failure(std::make_error_code(std::errc::invalid_argument), "receipts producer: " + err);
    }
    w->receipts_topic_ = std::move(receipts_topic);
    w->dlq_topic_ = std::move(dlq_topic);
    return w;
}

receipt_writer::~receipt_writer() {
    flush(2000);
}

void receipt_writer::flush(int timeout_ms) {
    if (producer_)
        producer_->flush(timeout_ms);
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
    r.set_seq(e.broadcast.seq);
    std::string json;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(r, &json, opts);

    const auto produce = [&](const std::string& topic, RdKafka::Headers* headers) {
        headers->add("content-type", "application/json");
        const auto err = producer_->produce(
            topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY, json.data(), json.size(),
            e.broadcast.id.data(), e.broadcast.id.size(), 0, headers, nullptr);
        if (err != RdKafka::ERR_NO_ERROR) {
            delete headers;
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
    producer_->poll(0);
}

}  // namespace herald::outbound
