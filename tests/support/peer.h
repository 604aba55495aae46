// A minimal blocking client for tests: raw sockets, WebSocket and SSE
// framing written from the RFC, no Boost. Independent of the server's code on
// purpose, so a test using it checks Herald against the protocol, not against
// itself. Every read takes a timeout so a broken server fails a test instead
// of hanging it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace herald::testing {

inline int connect_tcp(const std::string& host, std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

struct ws_frame {
    std::uint8_t opcode = 0;
    bool fin = false;
    std::string payload;
    [[nodiscard]] std::uint16_t close_code() const {
        return payload.size() >= 2
                   ? static_cast<std::uint16_t>((std::uint8_t(payload[0]) << 8) | std::uint8_t(payload[1]))
                   : 0;
    }
};

/// One connection with a read buffer.
class peer {
  public:
    peer() = default;
    explicit peer(int fd) : fd_(fd) {}
    peer(peer&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)) { o.fd_ = -1; }
    peer& operator=(peer&& o) noexcept {
        if (this != &o) {
            close();
            fd_ = o.fd_;
            buf_ = std::move(o.buf_);
            o.fd_ = -1;
        }
        return *this;
    }
    ~peer() { close(); }

    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    void close() {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

    bool send_all(std::string_view data) {
        while (!data.empty()) {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0)
                return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    /// Reads more bytes into the buffer; false on EOF, error or timeout.
    bool fill(int timeout_ms) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0)
            return false;
        char tmp[65536];
        const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0)
            return false;
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }

    /// Reads until `delim` is buffered; returns everything up to and including it.
    std::optional<std::string> read_until(std::string_view delim, int timeout_ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            const auto pos = buf_.find(delim);
            if (pos != std::string::npos) {
                std::string out = buf_.substr(0, pos + delim.size());
                buf_.erase(0, pos + delim.size());
                return out;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0 || !fill(static_cast<int>(left)))
                return std::nullopt;
        }
    }

    /// Sends the upgrade request; returns the response head ("HTTP/1.1 101 ...").
    std::optional<std::string> websocket_handshake(const std::string& target, int timeout_ms = 5000) {
        const std::string req =
            "GET " + target +
            " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        if (!send_all(req))
            return std::nullopt;
        return read_until("\r\n\r\n", timeout_ms);
    }

    std::optional<std::string> sse_handshake(const std::string& target, const std::string& extra_headers = "",
                                             int timeout_ms = 5000) {
        const std::string req = "GET " + target +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" +
                                extra_headers + "\r\n";
        if (!send_all(req))
            return std::nullopt;
        return read_until("\r\n\r\n", timeout_ms);
    }

    /// One server->client frame (unmasked, as RFC 6455 requires of servers).
    std::optional<ws_frame> read_frame(int timeout_ms = 5000) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            if (auto f = try_parse())
                return f;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0 || !fill(static_cast<int>(left)))
                return std::nullopt;
        }
    }

    /// Next data frame, answering nothing and skipping pings.
    std::optional<ws_frame> read_data_frame(int timeout_ms = 5000) {
        for (;;) {
            auto f = read_frame(timeout_ms);
            if (!f || (f->opcode != 0x9 && f->opcode != 0xA))
                return f;
        }
    }

    /// Next SSE event block ("id: ..\ndata: ..\n\n"), skipping comments and retry lines.
    std::optional<std::string> read_sse_event(int timeout_ms = 5000) {
        for (;;) {
            auto block = read_until("\n\n", timeout_ms);
            if (!block)
                return std::nullopt;
            if (block->find("data:") != std::string::npos)
                return block;
        }
    }

    /// A masked client frame.
    bool send_frame(std::uint8_t opcode, std::string_view payload, bool fin = true) {
        std::string out;
        out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
        if (payload.size() < 126) {
            out.push_back(static_cast<char>(0x80 | payload.size()));
        } else if (payload.size() <= 0xFFFF) {
            out.push_back(static_cast<char>(0x80 | 126));
            out.push_back(static_cast<char>(payload.size() >> 8));
            out.push_back(static_cast<char>(payload.size() & 0xFF));
        } else {
            out.push_back(static_cast<char>(0x80 | 127));
            for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xFF));
        }
        const char mask[4] = {0x12, 0x34, 0x56, 0x78};
        out.append(mask, 4);
        for (std::size_t i = 0; i < payload.size(); ++i)
            out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
        return send_all(out);
    }

    /// True when the server closed the TCP connection within the timeout.
    bool wait_eof(int timeout_ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0)
                return false;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0)
                return false;
            char tmp[4096];
            const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0)
                return true;
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
    }

    std::string& buffer() { return buf_; }

  private:
    std::optional<ws_frame> try_parse() {
        if (buf_.size() < 2)
            return std::nullopt;
        const auto b0 = static_cast<std::uint8_t>(buf_[0]);
        const auto b1 = static_cast<std::uint8_t>(buf_[1]);
        std::size_t len = b1 & 0x7F;
        std::size_t header = 2;
        if (len == 126) {
            if (buf_.size() < 4)
                return std::nullopt;
            len = (std::size_t(std::uint8_t(buf_[2])) << 8) | std::uint8_t(buf_[3]);
            header = 4;
        } else if (len == 127) {
            if (buf_.size() < 10)
                return std::nullopt;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | std::uint8_t(buf_[2 + i]);
            header = 10;
        }
        if (buf_.size() < header + len)
            return std::nullopt;
        ws_frame f;
        f.fin = (b0 & 0x80) != 0;
        f.opcode = b0 & 0x0F;
        f.payload = buf_.substr(header, len);
        raw_last_ = buf_.substr(0, header + len);
        buf_.erase(0, header + len);
        return f;
    }

  public:
    /// The exact bytes of the last frame read (for identical-bytes checks).
    std::string raw_last_;

  private:
    int fd_ = -1;
    std::string buf_;
};

}  // namespace herald::testing
