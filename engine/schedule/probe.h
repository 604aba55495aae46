// The schedule's metrics in one place: what waits in the store, what was
// released from it or cancelled, and cancels that named nothing known.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "metrics/registry.h"

namespace herald::schedule {

class probe {
  public:
    explicit probe(metrics::registry& reg);

    void set_scheduled(double n) { scheduled_->Set(n); }
    void released() { released_->Increment(); }
    void cancelled() { cancelled_->Increment(); }
    /// A cancel record for an id this consumer ("live" or "outbound") does not know.
    void cancel_unknown(bool live) { (live ? unknown_live_ : unknown_outbound_)->Increment(); }

  private:
    prometheus::Gauge* scheduled_;
    prometheus::Counter* released_;
    prometheus::Counter* cancelled_;
    prometheus::Counter* unknown_live_;
    prometheus::Counter* unknown_outbound_;
};

}  // namespace herald::schedule
