#include "metrics/registry.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "base/assert.h"

namespace herald::metrics {

registry::registry() : registry_(std::make_shared<prometheus::Registry>()) {}

std::string registry::render() const {
    auto families = registry_->Collect();
    // HERALD_BUG reports (base has no Prometheus): one series per place.
    prometheus::MetricFamily bugs;
    bugs.name = "herald_internal_errors_total";
    bugs.help = "Internal errors (HERALD_BUG) survived in a release build, by place; each is a bug to report";
    bugs.type = prometheus::MetricType::Counter;
    for (const auto& [where, count] : base::internal_errors()) {
        prometheus::ClientMetric m;
        m.label.push_back({"where", where});
        m.counter.value = static_cast<double>(count);
        bugs.metric.push_back(std::move(m));
    }
    if (!bugs.metric.empty())
        families.push_back(std::move(bugs));
    const prometheus::TextSerializer serializer;
    return serializer.Serialize(families);
}

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
    static const prometheus::Histogram::BucketBoundaries buckets{
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};
    return buckets;
}

}  // namespace herald::metrics
