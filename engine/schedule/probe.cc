#include "schedule/probe.h"

namespace herald::schedule {

probe::probe(metrics::registry& reg) {
    auto& r = reg.prom();
    scheduled_ = &prometheus::BuildGauge()
                      .Name("herald_scheduled_broadcasts")
                      .Help("Live broadcasts waiting in the schedule store for their instant")
                      .Register(r)
                      .Add({});
    released_ = &prometheus::BuildCounter()
                     .Name("herald_scheduled_released_total")
                     .Help("Scheduled live broadcasts released from the schedule store and delivered")
                     .Register(r)
                     .Add({});
    cancelled_ = &prometheus::BuildCounter()
                      .Name("herald_scheduled_cancelled_total")
                      .Help("Scheduled live broadcasts removed from the schedule store by a cancel")
                      .Register(r)
                      .Add({});
    auto& unknown = prometheus::BuildCounter()
                        .Name("herald_cancels_unknown_total")
                        .Help("Cancel records naming a broadcast this consumer does not know (ignored)")
                        .Register(r);
    unknown_live_ = &unknown.Add({{"consumer", "live"}});
    unknown_outbound_ = &unknown.Add({{"consumer", "outbound"}});
}

}  // namespace herald::schedule
