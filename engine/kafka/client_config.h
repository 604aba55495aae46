// An operator's Kafka needs more than bootstrap servers: TLS, SASL, quotas'
// client ids. Those settings must reach every librdkafka client Herald
// creates — a producer left on plaintext would fail, or worse, leak — so
// every client configuration is made here and nowhere else:
//
//   Herald's own settings for that client (group, timeouts, idempotence)
//   then the operator's properties (--kafka-property KEY=VALUE).
//
// The operator may tune what Herald tunes (client.id, session.timeout.ms,
// linger.ms, ...), but not the few settings at-least-once delivery and the
// dead-letter guarantees rest on: validate() refuses those before anything
// starts, as it refuses a property librdkafka does not accept. Credentials
// (keys containing password, secret, key or token) never appear in what
// this file returns: errors are scrubbed, descriptions masked.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "config/config.h"

namespace RdKafka {
class Conf;
}

namespace herald::kafka {

/// KEY=VALUE pairs in the order librdkafka gets them.
using properties = config::kafka_properties;

/// A setting Herald makes itself and an operator may not override, and why.
struct owned_key {
    std::string_view key;
    std::string_view why;
};

/// What heraldd's clients set themselves (bootstrap.servers, group.id,
/// offset handling, idempotence, message timeouts, ...).
[[nodiscard]] std::span<const owned_key> daemon_owned_keys() noexcept;

/// Checks an operator's properties before any client exists: none is in
/// `owned`, librdkafka accepts each one (rd_kafka_conf_set), and a producer
/// and a consumer can be created with all of them together (librdkafka
/// checks some only then: an unreadable ssl.ca.location, a SASL mechanism
/// without its settings). The error names the property; it is an
/// invalid_argument (a configuration error: heraldd exits 2).
[[nodiscard]] base::result<void> validate(const properties& operator_properties,
                                          std::span<const owned_key> owned);

/// A client's configuration: `herald` settings first, then the operator's
/// properties (validated before, so they apply; an error names the one that
/// did not). Callers add their callbacks (dr_cb, rebalance_cb, event_cb).
[[nodiscard]] base::result<std::unique_ptr<RdKafka::Conf>> client_conf(const properties& herald,
                                                                       const properties& operator_properties);

/// `text` with the value of every credential in `props` replaced by ***
/// (librdkafka quotes values in some of its messages).
[[nodiscard]] std::string scrub(std::string text, const properties& props);

}  // namespace herald::kafka
