// A small HTTP/1.1 server for the ops port: /metrics, /healthz, /readyz and
// the admin API under /v1/. Traffic here is scrapes and operators, so one
// loop thread and Boost.Beast's plain request/response model are plenty;
// Beast stays inside http_server.cc so no other translation unit pays for it.
// What to answer is the router's business (ops/router.h).
//
// Abuse limits: at most `max_connections` open connections (more are
// closed at once and counted), request bodies up to `max_body_bytes` (413),
// headers up to 16 KiB, 30 s to send a request. Requests whose handler may
// wait on Kafka (registry writes) run on a second loop thread, so a slow
// broker never holds up /metrics or /readyz.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "ops/http.h"

namespace herald::tls {
class server_context;
}

namespace herald::ops {

struct http_server_options {
    std::function<http_response(const http_request&)> handle;
    /// True for requests to run on the worker thread (they may block).
    std::function<bool(const http_request&)> blocking;
    std::uint32_t max_body_bytes = 16u << 20;
    std::uint32_t max_connections = 256;
    /// TLS (and mutual TLS when the context asks for client certificates);
    /// nullptr: plaintext.
    std::shared_ptr<tls::server_context> tls;
    /// A TLS handshake failed, with a bounded reason label.
    std::function<void(std::string_view reason)> on_tls_failure;
};

class http_server {
  public:
    explicit http_server(http_server_options options);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Binds host:port (0: any free port); returns the bound port.
    base::result<std::uint16_t> listen(const std::string& host, std::uint16_t port);
    /// Serves on a loop thread of its own (and a worker for blocking requests).
    void start();
    /// Closes the listener and ends the threads (open connections are dropped). Idempotent.
    void stop();

    /// Connections refused because max_connections were open.
    [[nodiscard]] std::uint64_t refused() const noexcept;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace herald::ops
