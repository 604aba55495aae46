// One live connection (WebSocket or Server-Sent Events) owned by one shard.
//
// The problem it solves: write one shared, pre-encoded frame to tens of
// thousands of sockets without a per-recipient copy, allocation or async
// operation, while a connection that stops reading affects only itself.
//
// How: after the HTTP handshake the connection is a raw non-blocking socket.
// deliver() tries one send(2) of the shared frame bytes; on loopback and
// healthy networks that is the whole story. Only if the kernel buffer is full
// does the frame go to a bounded per-connection queue (a pointer into the
// shared frame plus a shard-local hold, no copy), drained by gathered
// sendmsg(2) calls when the socket becomes writable. When the queue bound is
// reached the slow-consumer policy applies: "close" ends the connection with
// 1008 "slow consumer" (the client reconnects and recovers), "drop" discards
// the new frame and counts it. Everything here runs on the owning shard's
// thread only.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "audience/live_index.h"
#include "base/assert.h"
#include "base/clock.h"
#include "channels/delivery_stats.h"
#include "channels/ws_frame_parser.h"
#include "model/fundamental.h"
#include "model/position.h"
#include "security/address_guard.h"
#include "security/live_access.h"
#include "tls/connection.h"

namespace herald::config {
struct config;
}
namespace herald::tls {
class server_context;
}

namespace herald::channels {

/// Keeps a frame shared by many connections of one shard alive. Counted
/// without atomics: only the shard thread touches it.
struct frame_hold {
    std::uint32_t refs = 0;
    /// When the frame was due: latency is measured from here...
    base::mono_time release_at;
    /// ...unless it is a recovery replay (counted apart, never as latency).
    bool measure_latency = true;
    void (*on_unused)(frame_hold*) = nullptr;

    void ref() noexcept { ++refs; }
    void unref() noexcept {
        HERALD_ASSERT(refs > 0);
        if (--refs == 0 && on_unused != nullptr) {
            on_unused(this);
        }
    }
};

/// Limits and policy for live connections (from config).
struct session_limits {
    std::uint32_t send_queue_frames = 1024;
    std::uint32_t send_queue_bytes = 4u << 20;
    bool close_slow_consumers = true;
    std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);
    std::uint32_t max_request_bytes = 8192;
    std::uint32_t max_audiences = 16;
    std::uint32_t max_client_frame_bytes = 4096;
    std::chrono::nanoseconds ping_interval = std::chrono::seconds(20);

    /// The live-connection settings of a heraldd configuration.
    [[nodiscard]] static session_limits from(const config::config& cfg);
};

class live_session;

/// What a shard provides to its sessions: the executor, limits, tallies and
/// the callbacks through which a session joins and leaves the shard.
struct session_env {
    boost::asio::io_context& ioc;
    session_limits limits;
    delivery_stats& stats;
    /// Who may connect (tokens, audiences, origins); nullptr: everyone, every audience public.
    const security::live_access* access = nullptr;
    /// Handshake done: join these audiences of `tenant`; `since` (from
    /// ?since= or SSE's Last-Event-ID, each naming one of the audiences) asks
    /// for what each audience released after its position first.
    std::function<void(live_session&, const std::string& tenant, const std::vector<std::string>&,
                       const std::vector<model::audience_position>& since)>
        on_open;
    /// Connection gone: leave every audience, drop the shard's reference.
    std::function<void(live_session&)> on_closed;
    /// Served on GET / and GET /demo: a small page that subscribes over WebSocket.
    std::string demo_page;
    /// Shared read buffer: reads are synchronous on readiness, so one per shard suffices.
    std::vector<char> read_buffer = std::vector<char>(64 * 1024);
    /// TLS on the client port (nullptr: plaintext). Each connection takes the
    /// context current at its accept, so a reload never touches open ones.
    const tls::server_context* tls = nullptr;
    /// A TLS handshake failed (reason: tls::connection::failure_reason, or "timeout").
    std::function<void(std::string_view reason)> on_tls_failure = {};
    /// Shard-local buffer that gathers several small frames into one TLS
    /// record (one encryption and one syscall per connection for a burst).
    std::vector<char> tls_gather_buffer = std::vector<char>(16 * 1024);
};

class live_session : public std::enable_shared_from_this<live_session> {
  public:
    enum class state : std::uint8_t { handshake, open, closing, closed };

    /// `refuse_status` (429) answers the handshake with that status at once;
    /// `counted_ip` is the address the per-IP limiter counted for it.
    live_session(boost::asio::ip::tcp::socket socket, session_env& env,
                 std::optional<security::ip_address> counted_ip = std::nullopt, int refuse_status = 0);
    ~live_session();
    live_session(const live_session&) = delete;
    live_session& operator=(const live_session&) = delete;

    /// Begins reading the HTTP request.
    void start();

    /// Hot path: hands one shared frame to this connection. `frame` must stay
    /// valid while `hold` has references. Counts the outcome in env.stats.
    delivery_outcome deliver(std::string_view frame, frame_hold& hold);

    /// Hot path for several broadcasts that became due together: writes all
    /// of `frames` (frames[i] kept alive by holds[i]) with one gathered
    /// sendmsg(2), so a burst of tickers costs one syscall per connection
    /// instead of one per frame. At most max_merged_frames frames.
    void deliver_merged(std::span<const std::string_view> frames, std::span<frame_hold* const> holds);
    static constexpr std::size_t max_merged_frames = 32;

    /// Whether this connection writes its own SSE event ids (several
    /// audiences over SSE): then the shard calls deliver_positioned().
    [[nodiscard]] bool writes_own_ids() const noexcept { return positions_ != nullptr; }
    /// For such a connection: the event of `audience` at `seq`, with an id
    /// line naming all of the connection's positions before the shared
    /// `sse_body` (the broadcast's data lines), so a browser's automatic
    /// Last-Event-ID reconnect resumes every audience.
    delivery_outcome deliver_positioned(std::string_view audience, std::string_view epoch, model::seq_no seq,
                                        std::string_view sse_body, frame_hold& hold);
    /// For such a connection, once its audiences are joined: the audiences'
    /// current positions it has none for yet, sent as an id-only block (no
    /// event fires), so a reconnect before their first event still resumes them.
    void start_positions(const std::vector<model::audience_position>& current);

    /// A control message that is not an announcement (e.g. a recovery gap):
    /// a WebSocket text frame, or an SSE event of type `event`.
    void send_notice(std::string_view event, std::string_view json);

    /// The frame this connection's channel takes from a broadcast.
    [[nodiscard]] live_channel channel() const noexcept { return channel_; }

    /// Periodic upkeep from the shard: handshake timeout, ping / keep-alive,
    /// dead-peer detection, token expiry. The times are the shard's readings.
    void tick(std::int64_t now_mono_ns, base::wall_time now_wall);

    /// Whether this connection is only being answered 429 (per-IP limits).
    [[nodiscard]] bool refused() const noexcept { return refuse_status_ != 0; }

    /// The address the per-IP limiter counted for this connection, if any.
    [[nodiscard]] const std::optional<security::ip_address>& counted_ip() const noexcept {
        return counted_ip_;
    }

    /// Ends the connection: a WebSocket gets a close frame with `code`.
    void close(std::uint16_t code, std::string_view reason);

    /// Slots in the shard's audience index (maintained by the index).
    std::vector<audience::audience_slot<live_session>>& audience_slots() noexcept { return slots_; }

    /// Position in the owning shard's session table (maintained by the shard).
    std::uint32_t table_index = 0;

  private:
    struct pending_write {
        const char* data;
        std::uint32_t size;
        frame_hold* hold;  // nullptr: owned control bytes in `owned`
        std::unique_ptr<std::string> owned;
    };

    void wait_readable();
    void on_readable();
    void handle_request_bytes(std::string_view bytes);
    void handle_client_frames(std::string_view bytes);
    void respond_and_close(int status, std::string_view reason_phrase, std::string_view body,
                           std::string_view content_type = "text/plain; charset=utf-8");
    void send_control(std::string bytes);
    void enqueue(const char* data, std::uint32_t size, frame_hold* hold, std::unique_ptr<std::string> owned);
    void flush();
    void wait_writable();
    void complete_front(std::int64_t now_mono_ns);
    void drop_queue();
    void shutdown_socket();
    void finish();
    void drive_tls_handshake();
    /// The connection's positions with `audience` at `seq` (added if new).
    void append_positions(std::string& out, std::string_view audience, std::string_view epoch,
                          model::seq_no seq) const;
    void note_position(std::string_view audience, std::string_view epoch, model::seq_no seq);
    /// One write of `size` bytes: bytes taken, or -1 with errno (EAGAIN: wait
    /// for writability). Plaintext and kernel TLS use send(2); TLS encrypts here.
    ssize_t write_bytes(const char* data, std::size_t size);
    /// The same for a gather list (sendmsg(2), or one TLS record for small frames).
    ssize_t write_gather(const struct iovec* iov, std::size_t count);

    boost::asio::ip::tcp::socket socket_;
    session_env& env_;
    std::unique_ptr<std::string> request_;  // only during the handshake
    std::unique_ptr<tls::connection> tls_;  // nullptr: plaintext
    ws_frame_parser parser_;
    std::vector<pending_write> queue_;  // front at index 0; completed entries erased in batches
    std::vector<audience::audience_slot<live_session>> slots_;
    std::size_t queued_bytes_ = 0;
    std::uint32_t head_offset_ = 0;  // bytes of queue_.front() already written
    std::int64_t accepted_mono_ns_ = 0;
    std::int64_t last_rx_mono_ns_ = 0;
    std::int64_t last_keepalive_mono_ns_ = 0;
    std::int64_t closing_since_mono_ns_ = 0;
    live_channel channel_ = live_channel::websocket;
    state state_ = state::handshake;
    bool read_waiting_ = false;
    bool write_waiting_ = false;
    bool close_after_flush_ = false;
    bool upgraded_ = false;
    bool tls_handshaking_ = false;
    /// TLS records are encrypted by SSL_write (not plaintext, not kernel TLS).
    bool tls_user_space_ = false;
    /// The last TLS write wanted writability: OpenSSL holds an encrypted record
    /// of the queue's head bytes, so those bytes must be offered again unchanged.
    bool tls_write_blocked_ = false;
    std::uint32_t tls_pending_bytes_ = 0;       // how many of those bytes, from the queue's first unsent one
    std::optional<close_reason> close_reason_;  // why we end it; unset: the peer did
    std::optional<security::ip_address> counted_ip_;
    int refuse_status_ = 0;
    base::wall_time token_expires_{};  // epoch: no token, never expires
    /// SSE with several audiences only: the last position sent per audience.
    std::unique_ptr<std::vector<model::audience_position>> positions_;
};

}  // namespace herald::channels
