#include "tls/probe.h"

#include <string>

namespace herald::tls {

probe::probe(metrics::registry& reg) {
    auto& family = prometheus::BuildCounter()
                       .Name("herald_tls_handshake_failures_total")
                       .Help("TLS handshakes that failed on the client and ops ports, by reason")
                       .Register(reg.prom());
    for (std::size_t i = 0; i < failure_reasons.size(); ++i) {
        const std::string reason(failure_reasons[i]);
        client_[i] = &family.Add({{"port", "client"}, {"reason", reason}});
        ops_[i] = &family.Add({{"port", "ops"}, {"reason", reason}});
    }
}

void probe::handshake_failed(std::string_view port, std::string_view reason) noexcept {
    std::size_t i = failure_reasons.size() - 1;  // "other"
    for (std::size_t j = 0; j < failure_reasons.size(); ++j) {
        if (failure_reasons[j] == reason) {
            i = j;
            break;
        }
    }
    (port == "ops" ? ops_ : client_)[i]->Increment();
}

}  // namespace herald::tls
