#include "channels/client_listener.h"

#include <fcntl.h>
#include <prometheus/counter.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>

#include "base/clock.h"
#include "base/log.h"

namespace herald::channels {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

client_listener::client_listener(asio::io_context& ioc, connection_budget& budget, accept_handler on_accept)
    : ioc_(ioc), acceptor_(ioc), budget_(budget), on_accept_(std::move(on_accept)) {
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

client_listener::~client_listener() {
    if (reserve_fd_ >= 0) {
        ::close(reserve_fd_);
    }
}

base::result<std::uint16_t> client_listener::bind(const std::string& host, std::uint16_t port) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) {
        return base::failure(ec, "client_host \"" + host + "\" is not an IP address");
    }
    const tcp::endpoint endpoint(address, port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
        acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
        const int one = 1;
        if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
            ec = boost::system::error_code(errno, boost::system::system_category());
        }
    }
    if (!ec) {
        acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor_.listen(4096, ec);
    }
    if (ec) {
        return base::failure(ec,
                             "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
    }
    return acceptor_.local_endpoint().port();
}

void client_listener::start() {
    accept_next();
}

void client_listener::stop() {
    stopped_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
}

void client_listener::accept_next() {
    if (stopped_) {
        return;
    }
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
        if (stopped_ || ec == asio::error::operation_aborted) {
            return;
        }
        if (ec) {
            if (ec == asio::error::no_descriptors && reserve_fd_ >= 0) {
                // Out of descriptors: free the reserve, take the pending
                // connection off the backlog and close it, then re-arm.
                ::close(reserve_fd_);
                const int fd = ::accept(acceptor_.native_handle(), nullptr, nullptr);
                if (fd >= 0) {
                    ::close(fd);
                }
                reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
                budget_.rejected_fd->Increment();
                HERALD_LOG_WARN("channels", "out of file descriptors: refused a connection");
            }
            accept_next();
            return;
        }
        const std::uint32_t open_now = budget_.open.fetch_add(1, std::memory_order_relaxed) + 1;
        if (budget_.max != 0 && open_now > budget_.max) {
            budget_.open.fetch_sub(1, std::memory_order_relaxed);
            budget_.rejected_limit->Increment();
            boost::system::error_code ignored;
            socket.close(ignored);
        } else {
            budget_.accepted->Increment();
            accepted_connection c{std::move(socket), std::nullopt, 0};
            if (budget_.per_ip != nullptr) {
                boost::system::error_code ep_ec;
                const auto remote = c.socket.remote_endpoint(ep_ec);
                const auto ip =
                    ep_ec ? std::nullopt : security::ip_address::parse(remote.address().to_string());
                if (ip) {
                    switch (budget_.per_ip->admit(*ip, base::mono_now())) {
                        case per_ip_limiter::verdict::counted:
                            c.counted_ip = ip;
                            break;
                        case per_ip_limiter::verdict::exempt:
                            break;
                        case per_ip_limiter::verdict::too_many_connections:
                        case per_ip_limiter::verdict::too_many_connects:
                            c.refuse_status = 429;
                            if (budget_.rejected_per_ip != nullptr)
                                budget_.rejected_per_ip->Increment();
                            break;
                    }
                }
            }
            if (c.refuse_status != 0) {
                // A refused connection takes no slot from well-behaved
                // clients: it is answered from a small pool of its own, or,
                // when that is full (a flood), closed at once.
                budget_.open.fetch_sub(1, std::memory_order_relaxed);
                if (budget_.refusing.fetch_add(1, std::memory_order_relaxed) >=
                    connection_budget::max_refusing) {
                    budget_.refusing.fetch_sub(1, std::memory_order_relaxed);
                    boost::system::error_code ignored;
                    c.socket.close(ignored);
                    accept_next();
                    return;
                }
            }
            on_accept_(std::move(c));
        }
        accept_next();
    });
}

}  // namespace herald::channels
