#include "ingest/probe.h"

namespace herald::ingest {

probe::probe(metrics::registry& reg) {
    auto& r = reg.prom();
    consumed_ = &prometheus::BuildCounter()
                     .Name("herald_announcements_consumed_total")
                     .Help("Announcement records read from Kafka")
                     .Register(r)
                     .Add({});
    rejected_family_ = &prometheus::BuildCounter()
                            .Name("herald_announcements_rejected_total")
                            .Help("Announcement records refused and sent to the dead-letter topic, by reason")
                            .Register(r);
    // Pre-create the common reasons so dashboards see zeros, not gaps.
    for (const char* reason :
         {"malformed_json", "malformed_protobuf", "payload_too_large", "invalid_audience"}) {
        counter_for(reason);
    }
    auto& dlq = prometheus::BuildCounter()
                    .Name("herald_dlq_records_total")
                    .Help("Records written to the dead-letter topic, by result")
                    .Register(r);
    dlq_produced_ = &dlq.Add({{"result", "produced"}});
    dlq_failed_ = &dlq.Add({{"result", "failed"}});
    auto& commits = prometheus::BuildCounter()
                        .Name("herald_kafka_commits_total")
                        .Help("Offset commits of the live consumer, by result")
                        .Register(r);
    commits_ok_ = &commits.Add({{"result", "ok"}});
    commits_failed_ = &commits.Add({{"result", "failed"}});
    consumer_errors_ = &prometheus::BuildCounter()
                            .Name("herald_kafka_consumer_errors_total")
                            .Help("Errors reported by the Kafka consumer")
                            .Register(r)
                            .Add({});
    paused_ = &prometheus::BuildGauge()
                   .Name("herald_ingest_paused")
                   .Help("1 while ingest has paused its Kafka partitions because Herald is overloaded")
                   .Register(r)
                   .Add({});
    pauses_ = &prometheus::BuildCounter()
                   .Name("herald_ingest_pauses_total")
                   .Help("Times ingest paused its Kafka partitions (full shard queues or memory ceiling)")
                   .Register(r)
                   .Add({});
    lag_family_ = &prometheus::BuildGauge()
                       .Name("herald_kafka_consumer_lag")
                       .Help("Records behind the partition's high watermark, per partition")
                       .Register(r);
}

prometheus::Counter& probe::counter_for(const std::string& reason) {
    auto it = rejected_.find(reason);
    if (it == rejected_.end()) {
        it = rejected_.emplace(reason, &rejected_family_->Add({{"reason", reason}})).first;
    }
    return *it->second;
}

void probe::rejected(const std::string& reason) {
    counter_for(reason).Increment();
}

void probe::set_lag(std::int32_t partition, double lag) {
    auto it = lag_.find(partition);
    if (it == lag_.end()) {
        it = lag_.emplace(partition, &lag_family_->Add({{"partition", std::to_string(partition)}})).first;
    }
    it->second->Set(lag);
}

}  // namespace herald::ingest
