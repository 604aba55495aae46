// herald_tls_handshake_failures_total{port, reason}: why TLS handshakes on
// the client and ops ports fail, with a bounded set of reasons so a scan of
// the port with garbage cannot grow the label space.
#pragma once

#include <prometheus/counter.h>

#include <array>
#include <string_view>

#include "metrics/registry.h"

namespace herald::tls {

inline constexpr std::array<std::string_view, 8> failure_reasons = {
    "protocol_version", "no_shared_cipher", "plaintext_http", "client_certificate",
    "peer_alert",       "peer_closed",      "timeout",        "other"};

class probe {
  public:
    explicit probe(metrics::registry& reg);

    /// Any thread. `port` is "client" or "ops"; an unknown reason counts as "other".
    void handshake_failed(std::string_view port, std::string_view reason) noexcept;

  private:
    std::array<prometheus::Counter*, failure_reasons.size()> client_{};
    std::array<prometheus::Counter*, failure_reasons.size()> ops_{};
};

}  // namespace herald::tls
