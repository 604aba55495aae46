// A small HTTP/1.1 server for the ops port: /metrics, /healthz, /readyz and
// the admin API under /v1/. Traffic here is scrapes and operators, so one
// loop thread and Boost.Beast's plain request/response model are plenty;
// Beast stays inside http_server.cc so no other translation unit pays for it.
// What to answer is the router's business (ops/router.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "ops/http.h"

namespace herald::ops {

class http_server {
  public:
    using handler = std::function<http_response(const http_request&)>;

    explicit http_server(handler on_request);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Binds host:port (0: any free port); returns the bound port.
    base::result<std::uint16_t> listen(const std::string& host, std::uint16_t port);
    /// Serves on a loop thread of its own.
    void start();
    /// Closes the listener and ends the thread (open connections are dropped). Idempotent.
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace herald::ops
