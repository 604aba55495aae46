#include "ingest/probe.h"

namespace herald::ingest {

probe::probe(metrics::registry& reg, const std::string& consumer) : consumer_(consumer) {
    auto& r = reg.prom();
    const prometheus::Labels mine{{"consumer", consumer}};
    consumed_ = &prometheus::BuildCounter()
                     .Name("herald_announcements_consumed_total")
                     .Help("Announcement records read from Kafka, by consumer (live, outbound)")
                     .Register(r)
                     .Add(mine);
    skipped_ = &prometheus::BuildCounter()
                    .Name("herald_announcements_skipped_total")
                    .Help("Refused records a consumer skipped because the other one dead-letters them")
                    .Register(r)
                    .Add(mine);
    refilled_ = &prometheus::BuildCounter()
                     .Name("herald_history_refilled_total")
                     .Help("Announcements read back from Kafka at assignment for the recovery history")
                     .Register(r)
                     .Add(mine);
    rejected_family_ = &prometheus::BuildCounter()
                            .Name("herald_announcements_rejected_total")
                            .Help("Announcement records refused and sent to the dead-letter topic, by reason")
                            .Register(r);
    // Pre-create the common reasons so dashboards see zeros, not gaps.
    if (consumer == "outbound") {  // the consumer that dead-letters
        for (const char* reason :
             {"malformed_json", "malformed_protobuf", "payload_too_large", "invalid_audience"}) {
            counter_for(reason);
        }
    }
    auto& dlq = prometheus::BuildCounter()
                    .Name("herald_dlq_records_total")
                    .Help("Records written to the dead-letter topic, by result")
                    .Register(r);
    dlq_produced_ = &dlq.Add({{"consumer", consumer}, {"result", "produced"}});
    dlq_failed_ = &dlq.Add({{"consumer", consumer}, {"result", "failed"}});
    auto& commits = prometheus::BuildCounter()
                        .Name("herald_kafka_commits_total")
                        .Help("Offset commits of the announcement consumers, by consumer and result")
                        .Register(r);
    commits_ok_ = &commits.Add({{"consumer", consumer}, {"result", "ok"}});
    commits_failed_ = &commits.Add({{"consumer", consumer}, {"result", "failed"}});
    consumer_errors_ = &prometheus::BuildCounter()
                            .Name("herald_kafka_consumer_errors_total")
                            .Help("Errors reported by the Kafka consumer")
                            .Register(r)
                            .Add(mine);
    paused_ = &prometheus::BuildGauge()
                   .Name("herald_ingest_paused")
                   .Help("1 while a consumer has paused its Kafka partitions because its side is overloaded")
                   .Register(r)
                   .Add(mine);
    pauses_ = &prometheus::BuildCounter()
                   .Name("herald_ingest_pauses_total")
                   .Help(
                       "Times a consumer paused its Kafka partitions (live: full shard queues; outbound: "
                       "backlog full; both: memory ceiling)")
                   .Register(r)
                   .Add(mine);
    lag_family_ = &prometheus::BuildGauge()
                       .Name("herald_kafka_consumer_lag")
                       .Help("Records behind the partition's high watermark, per consumer and partition")
                       .Register(r);
}

prometheus::Counter& probe::counter_for(const std::string& reason) {
    auto it = rejected_.find(reason);
    if (it == rejected_.end()) {
        it = rejected_.emplace(reason, &rejected_family_->Add({{"consumer", consumer_}, {"reason", reason}}))
                 .first;
    }
    return *it->second;
}

void probe::rejected(const std::string& reason) {
    counter_for(reason).Increment();
}

void probe::set_lag(std::int32_t partition, double lag) {
    auto it = lag_.find(partition);
    if (it == lag_.end()) {
        it = lag_.emplace(partition, &lag_family_->Add(
                                         {{"consumer", consumer_}, {"partition", std::to_string(partition)}}))
                 .first;
    }
    it->second->Set(lag);
}

}  // namespace herald::ingest
