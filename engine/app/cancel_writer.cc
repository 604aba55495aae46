#include "app/cancel_writer.h"

#include <librdkafka/rdkafkacpp.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace herald::app {

/// The delivery report of the one record in flight.
class cancel_writer::reports : public RdKafka::DeliveryReportCb {
  public:
    void dr_cb(RdKafka::Message& m) override {
        error = m.err() == RdKafka::ERR_NO_ERROR ? std::string() : m.errstr();
        answered = true;
    }
    bool answered = false;
    std::string error;
};

base::result<std::unique_ptr<cancel_writer>> cancel_writer::create(
    const std::string& bootstrap_servers, const std::string& client_id, std::string topic,
    const kafka::properties& kafka_properties) {
    std::unique_ptr<cancel_writer> w(new cancel_writer());
    w->reports_ = std::make_unique<reports>();
    auto conf = kafka::client_conf({{"bootstrap.servers", bootstrap_servers},
                                    {"client.id", client_id + "-cancel"},
                                    {"enable.idempotence", "true"},
                                    {"message.timeout.ms", "15000"},
                                    {"log_level", "4"}},
                                   kafka_properties);
    if (!conf)
        return base::failure(conf.err());
    std::string err;
    if ((*conf)->set("dr_cb", w->reports_.get(), err) != RdKafka::Conf::CONF_OK)
        return base::failure(std::make_error_code(std::errc::invalid_argument), "dr_cb: " + err);
    w->producer_.reset(RdKafka::Producer::create(conf->get(), err));
    if (!w->producer_)
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             "cancel producer: " + kafka::scrub(err, kafka_properties));
    w->topic_ = std::move(topic);
    w->kafka_properties_ = kafka_properties;
    return w;
}

cancel_writer::~cancel_writer() {
    if (producer_)
        producer_->flush(1000);
}

base::result<void> cancel_writer::write(const std::string& audience, const std::string& tenant,
                                        const std::string& id, std::chrono::milliseconds timeout) {
    const std::string value = boost::json::serialize(boost::json::object{{"cancel", id}, {"tenant", tenant}});
    std::lock_guard lock(mutex_);
    reports_->answered = false;
    reports_->error.clear();
    RdKafka::Headers* headers = RdKafka::Headers::create();
    headers->add("content-type", "application/json");
    const auto err = producer_->produce(topic_, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                                        const_cast<char*>(value.data()), value.size(), audience.data(),
                                        audience.size(), 0, headers, nullptr);
    if (err != RdKafka::ERR_NO_ERROR) {
        delete headers;  // owned by the producer only when produce() succeeds
        return base::failure(std::make_error_code(std::errc::io_error),
                             "cannot write the cancel record: " + RdKafka::err2str(err));
    }
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!reports_->answered && std::chrono::steady_clock::now() < until) producer_->poll(50);
    if (!reports_->answered)
        return base::failure(std::make_error_code(std::errc::timed_out),
                             "Kafka did not acknowledge the cancel record in time");
    if (!reports_->error.empty())
        return base::failure(
            std::make_error_code(std::errc::io_error),
            "Kafka refused the cancel record: " + kafka::scrub(reports_->error, kafka_properties_));
    return {};
}

}  // namespace herald::app
