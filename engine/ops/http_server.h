// A small HTTP/1.1 server for the ops port: /metrics, /healthz, /readyz and
// the admin API under /v1/. Traffic here is scrapes and operators, so one
// thread and Boost.Beast's plain request/response model are plenty; Beast
// stays inside http_server.cc so no other translation unit pays for it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace herald::ops {

struct http_request {
    std::string method;
    std::string path;
    std::string query;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
};

struct http_response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

using router = std::function<http_response(const http_request&)>;

class http_server {
  public:
    explicit http_server(router route);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// Binds host:port (0: any free port); returns the bound port.
    base::result<std::uint16_t> listen(const std::string& host, std::uint16_t port);
    /// Serves on a thread of its own.
    void start();
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace herald::ops
