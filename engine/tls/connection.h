// One server-side TLS connection over a non-blocking socket its owner polls.
//
// The problem it solves: the live path writes one shared, pre-encoded frame
// to many sockets from a shard's thread without async operations. Under TLS
// every connection must encrypt its own records, but the frame bytes stay
// shared: write() encrypts straight from the caller's buffer into OpenSSL's
// per-connection record buffer (allocated once, at the first write), so a
// delivery still costs no allocation. Every call returns at once; "want
// read / want write" tells the owner what readiness to wait for. When the
// kernel took over record encryption (kTLS), kernel_sends() says so and the
// owner may use plain send(2) on the socket, the same path as plaintext.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

struct ssl_st;
struct ssl_ctx_st;

namespace herald::tls {

enum class io_status : std::uint8_t { ok, want_read, want_write, closed, failed };

struct io_result {
    io_status status;
    std::size_t bytes = 0;
    /// After a write that wanted the socket: how many bytes after `bytes`
    /// OpenSSL already sealed into its pending record (they must be offered again first).
    std::size_t pending = 0;
};

class connection {
  public:
    /// A server connection on `fd` (not owned) with context `ctx`; nullptr if
    /// OpenSSL cannot allocate one.
    [[nodiscard]] static std::unique_ptr<connection> accept(const std::shared_ptr<ssl_ctx_st>& ctx, int fd);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Drives the handshake; ok when it is complete.
    [[nodiscard]] io_status handshake();
    /// Why the handshake failed: a short, bounded label for metrics
    /// (protocol_version, no_shared_cipher, plaintext_http, client_certificate,
    /// peer_alert, peer_closed, other).
    [[nodiscard]] std::string_view failure_reason() const noexcept { return failure_; }

    /// Decrypted bytes into `buf`; closed when the peer ended the stream.
    [[nodiscard]] io_result read(char* buf, std::size_t size);
    /// Encrypts and sends as much of `data` as the socket takes. After
    /// want_write the next write must offer the same bytes again (they may
    /// have moved: a queued copy is fine).
    [[nodiscard]] io_result write(const char* data, std::size_t size);
    /// Whether record encryption for sending is in the kernel (kTLS).
    [[nodiscard]] bool kernel_sends() const noexcept;
    /// Best effort close_notify; never blocks.
    void shutdown() noexcept;

  private:
    explicit connection(ssl_st* ssl, std::shared_ptr<ssl_ctx_st> ctx) : ssl_(ssl), ctx_(std::move(ctx)) {}
    [[nodiscard]] io_status classify(int ret, bool in_handshake);

    ssl_st* ssl_;
    std::shared_ptr<ssl_ctx_st> ctx_;  // keeps the context of this connection alive across reloads
    std::string_view failure_ = "other";
};

/// The metric label for the OpenSSL error at the head of this thread's queue.
[[nodiscard]] std::string_view failure_label(unsigned long openssl_error) noexcept;

}  // namespace herald::tls
