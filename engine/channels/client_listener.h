// Accepts live connections for one shard.
//
// Every shard binds its own acceptor to the client port with SO_REUSEPORT,
// so the kernel spreads new connections across shards and a connection never
// changes threads: no hand-off queue, no lock. When the process runs out of
// file descriptors (or reaches max_connections) a connection is accepted and
// closed at once and counted, instead of spinning on EMFILE. A host over its
// per-address limits gets its handshake answered with 429 and is counted.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "base/result.h"
#include "channels/per_ip_limiter.h"
#include "security/address_guard.h"

namespace prometheus {
class Counter;
}

namespace herald::channels {

/// Connections open across all shards, against the configured ceiling.
/// Touched once per connect/disconnect, never per delivery.
struct connection_budget {
    std::atomic<std::uint32_t> open{0};
    std::uint32_t max = 0;
    /// Per-address limits (nullptr: none).
    per_ip_limiter* per_ip = nullptr;
    /// Connections refused by the per-address limits that are still being
    /// answered 429 (they hold no slot of `open`): at most max_refusing, each
    /// for at most a second; beyond that a refused connection is just closed.
    std::atomic<std::uint32_t> refusing{0};
    static constexpr std::uint32_t max_refusing = 256;
    prometheus::Counter* accepted = nullptr;
    prometheus::Counter* rejected_limit = nullptr;
    prometheus::Counter* rejected_fd = nullptr;
    prometheus::Counter* rejected_per_ip = nullptr;
};

/// A connection the acceptor took: the socket, the address the per-IP
/// limiter counted (release it at close), or the status its handshake must
/// be refused with (429: over a per-IP limit; then it counts in
/// connection_budget::refusing, not in open).
struct accepted_connection {
    boost::asio::ip::tcp::socket socket;
    std::optional<security::ip_address> counted_ip;
    int refuse_status = 0;
};

class client_listener {
  public:
    using accept_handler = std::function<void(accepted_connection)>;

    client_listener(boost::asio::io_context& ioc, connection_budget& budget, accept_handler on_accept);
    ~client_listener();

    /// Binds host:port (port 0: any free port) with SO_REUSEPORT and listens.
    /// Returns the bound port.
    base::result<std::uint16_t> bind(const std::string& host, std::uint16_t port);

    void start();
    void stop();

  private:
    void accept_next();

    boost::asio::io_context& ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    connection_budget& budget_;
    accept_handler on_accept_;
    int reserve_fd_ = -1;  // released to accept-and-close when descriptors run out
    bool stopped_ = false;
};

}  // namespace herald::channels
