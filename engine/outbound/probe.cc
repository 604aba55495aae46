#include "outbound/probe.h"

namespace herald::outbound {

probe::probe(metrics::registry& reg) {
    auto& r = reg.prom();
    auto& deliveries = prometheus::BuildCounter()
                           .Name("herald_outbound_deliveries_total")
                           .Help("Final outcomes of outbound deliveries, by channel and outcome")
                           .Register(r);
    const char* channels[] = {"webhook", "whatsapp", "sms"};
    const char* outcomes[] = {"sent", "failed", "suppressed", "unknown"};
    for (std::size_t c = 0; c < 3; ++c) {
        for (std::size_t o = 0; o < 4; ++o)
            outcomes_[c][o] = &deliveries.Add({{"channel", channels[c]}, {"outcome", outcomes[o]}});
    }
    auto& attempts = prometheus::BuildCounter()
                         .Name("herald_outbound_attempts_total")
                         .Help("HTTP attempts to outbound gateways, by what the answer meant")
                         .Register(r);
    const char* verdicts[] = {"sent", "retry", "throttled", "pair_limited", "sender_paused", "failed"};
    for (std::size_t i = 0; i < attempts_.size(); ++i)
        attempts_[i] = &attempts.Add({{"result", verdicts[i]}});
    paused_ = &prometheus::BuildCounter()
                   .Name("herald_outbound_sender_paused_total")
                   .Help("Times a sender was paused after a spam-class refusal (WhatsApp 131048)")
                   .Register(r)
                   .Add({});
    start_batches_ = &prometheus::BuildCounter()
                          .Name("herald_outbound_start_batches_total")
                          .Help(
                              "Transactions marking WhatsApp/SMS deliveries started before their requests "
                              "(one per batch a shard sends)")
                          .Register(r)
                          .Add({});
    start_marks_ = &prometheus::BuildCounter()
                        .Name("herald_outbound_start_marks_total")
                        .Help("Deliveries marked started before their requests (at-most-once channels)")
                        .Register(r)
                        .Add({});
    request_seconds_ = &prometheus::BuildHistogram()
                            .Name("herald_outbound_request_seconds")
                            .Help("Time from request to gateway answer")
                            .Register(r)
                            .Add({}, metrics::latency_buckets());
    pending_ = &prometheus::BuildGauge()
                    .Name("herald_outbound_pending")
                    .Help("Outbound deliveries queued, waiting to retry or in flight")
                    .Register(r)
                    .Add({});
    waiting_ = &prometheus::BuildGauge()
                    .Name("herald_outbound_waiting_broadcasts")
                    .Help(
                        "Outbound broadcasts waiting for the in-memory backlog to make room, per "
                        "outbound shard (a broadcast waits on every shard)")
                    .Register(r);
    subscribers_ = &prometheus::BuildGauge()
                        .Name("herald_outbound_subscribers")
                        .Help("Outbound subscribers in the in-memory registry index")
                        .Register(r)
                        .Add({});
}

}  // namespace herald::outbound
