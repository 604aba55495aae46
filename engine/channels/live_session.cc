#include "channels/live_session.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <unordered_set>

#include "base/audience_name.h"
#include "base/clock.h"
#include "channels/herald_js.h"
#include "channels/http_request.h"
#include "config/config.h"
#include "security/credentials.h"
#include "tls/server_context.h"
#include "wire/frame_codec.h"

namespace herald::channels {
namespace {

using wire::ws_opcode;
constexpr std::size_t max_iov = 64;
constexpr std::int64_t close_linger_ns = 2'000'000'000;
constexpr int send_flags = MSG_NOSIGNAL | MSG_DONTWAIT;

bool would_block(int err) {
    return err == EAGAIN || err == EWOULDBLOCK;
}

const std::string& ping_frame() {
    static const std::string frame = wire::websocket_frame(ws_opcode::ping, "herald");
    return frame;
}

constexpr std::string_view sse_keepalive = ": keep-alive\n\n";

}  // namespace

session_limits session_limits::from(const config::config& cfg) {
    session_limits l;
    l.send_queue_frames = cfg.send_queue_frames;
    l.send_queue_bytes = cfg.send_queue_bytes;
    l.close_slow_consumers = cfg.slow_consumer_policy == config::slow_consumer::close;
    l.handshake_timeout = cfg.handshake_timeout;
    l.max_audiences = cfg.max_audiences_per_connection;
    l.max_client_frame_bytes = cfg.max_client_frame_bytes;
    l.ping_interval = cfg.ping_interval;
    return l;
}

live_session::live_session(boost::asio::ip::tcp::socket socket, session_env& env,
                           std::optional<security::ip_address> counted_ip, int refuse_status)
    : socket_(std::move(socket)),
      env_(env),
      request_(std::make_unique<std::string>()),
      parser_(env.limits.max_client_frame_bytes),
      counted_ip_(counted_ip),
      refuse_status_(refuse_status) {
    accepted_mono_ns_ = base::mono_now_ns();
    last_rx_mono_ns_ = accepted_mono_ns_;
    last_keepalive_mono_ns_ = accepted_mono_ns_;
}

live_session::~live_session() {
    drop_queue();
}

void live_session::start() {
    HERALD_ASSERT(env_.ioc.get_executor().running_in_this_thread());
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) {
        finish();
        return;
    }
    // Frames are small and latency matters more than packet count. (Fails
    // harmlessly on the Unix sockets tests use.)
    socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
    if (env_.tls != nullptr) {
        tls_ = tls::connection::accept(env_.tls->current(), socket_.native_handle());
        if (!tls_) {
            finish();
            return;
        }
        tls_handshaking_ = true;
        tls_user_space_ = true;
        drive_tls_handshake();
        return;
    }
    wait_readable();
}

void live_session::drive_tls_handshake() {
    if (state_ == state::closed)
        return;
    switch (tls_->handshake()) {
        case tls::io_status::ok:
            tls_handshaking_ = false;
            tls_user_space_ = !tls_->kernel_sends();
            on_readable();  // the request may already sit decrypted in OpenSSL's buffer
            return;
        case tls::io_status::want_read:
            wait_readable();
            return;
        case tls::io_status::want_write:
            wait_writable();
            return;
        case tls::io_status::closed:
        case tls::io_status::failed:
            if (env_.on_tls_failure)
                env_.on_tls_failure(tls_->failure_reason());
            close_reason_ = close_reason::bad_request;
            finish();
            return;
    }
}

ssize_t live_session::write_bytes(const char* data, std::size_t size) {
    if (!tls_user_space_)
        return ::send(socket_.native_handle(), data, size, send_flags);
    const tls::io_result r = tls_->write(data, size);
    tls_write_blocked_ = r.pending > 0;
    tls_pending_bytes_ = static_cast<std::uint32_t>(r.pending);
    if (r.bytes > 0)
        return static_cast<ssize_t>(r.bytes);
    if (r.status == tls::io_status::want_write || r.status == tls::io_status::want_read) {
        errno = EAGAIN;
        return -1;
    }
    errno = EPIPE;
    return -1;
}

ssize_t live_session::write_gather(const iovec* iov, std::size_t count) {
    if (!tls_user_space_) {
        msghdr msg{};
        msg.msg_iov = const_cast<iovec*>(iov);
        msg.msg_iovlen = count;
        return ::sendmsg(socket_.native_handle(), &msg, send_flags);
    }
    if (count == 1 || iov[0].iov_len >= env_.tls_gather_buffer.size())
        return write_bytes(static_cast<const char*>(iov[0].iov_base), iov[0].iov_len);
    // Small frames: copy them into one record. After a blocked write the
    // same bytes come back here in the same order (the queue only grows at
    // its tail), which is what OpenSSL needs to finish the pending record.
    auto& gather = env_.tls_gather_buffer;
    std::size_t used = 0;
    for (std::size_t i = 0; i < count && used < gather.size(); ++i) {
        const std::size_t take = std::min(iov[i].iov_len, gather.size() - used);
        std::memcpy(gather.data() + used, iov[i].iov_base, take);
        used += take;
    }
    return write_bytes(gather.data(), used);
}

void live_session::wait_readable() {
    if (read_waiting_ || state_ == state::closed) {
        return;
    }
    read_waiting_ = true;
    socket_.async_wait(boost::asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->read_waiting_ = false;
                           if (ec) {
                               if (ec != boost::asio::error::operation_aborted) {
                                   self->finish();
                               }
                               return;
                           }
                           self->on_readable();
                       });
}

void live_session::on_readable() {
    if (tls_handshaking_) {
        drive_tls_handshake();
        return;
    }
    auto& buf = env_.read_buffer;
    const int fd = socket_.native_handle();
    // A client that never stops sending gets a fair share of the shard:
    // after this much, the rest is read on a later turn of the loop.
    std::size_t budget = 4 * buf.size();
    for (;;) {
        if (state_ == state::closed) {
            return;
        }
        if (budget == 0) {
            boost::asio::post(env_.ioc, [self = shared_from_this()] { self->on_readable(); });
            return;
        }
        ssize_t n = 0;
        if (tls_) {
            // Read until OpenSSL wants the socket again: it may hold decrypted
            // bytes beyond what one read returns.
            const tls::io_result r = tls_->read(buf.data(), buf.size());
            if (r.status == tls::io_status::ok) {
                n = static_cast<ssize_t>(r.bytes);
            } else if (r.status == tls::io_status::want_read || r.status == tls::io_status::want_write) {
                break;
            } else if (r.status == tls::io_status::closed) {
                n = 0;
            } else {
                finish();
                return;
            }
        } else {
            n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        }
        if (n > 0) {
            budget -= std::min(budget, static_cast<std::size_t>(n));
            last_rx_mono_ns_ = base::mono_now_ns();
            const std::string_view bytes(buf.data(), static_cast<std::size_t>(n));
            if (state_ == state::handshake) {
                handle_request_bytes(bytes);
            } else if (upgraded_ && channel_ == live_channel::websocket) {
                handle_client_frames(bytes);
            }
            // SSE clients have nothing to say after the request; extra bytes are ignored.
            if (!tls_ && static_cast<std::size_t>(n) < buf.size()) {
                break;
            }
            continue;
        }
        if (n == 0) {
            finish();  // peer closed
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (would_block(errno)) {
            break;
        }
        finish();
        return;
    }
    wait_readable();
}

void live_session::handle_request_bytes(std::string_view bytes) {
    request_->append(bytes);
    const std::size_t end = request_->find("\r\n\r\n");
    if (end == std::string::npos) {
        if (request_->size() > env_.limits.max_request_bytes) {
            respond_and_close(431, "Request Header Fields Too Large", "request header too large\n");
        }
        return;
    }
    if (end + 4 > env_.limits.max_request_bytes) {
        respond_and_close(431, "Request Header Fields Too Large", "request header too large\n");
        return;
    }
    auto parsed = parse_http_request(std::string_view(*request_).substr(0, end + 4));
    const std::string leftover = request_->substr(end + 4);
    if (!parsed) {
        respond_and_close(400, "Bad Request", parsed.err().detail + "\n");
        return;
    }
    const http_request& req = *parsed;
    if (refuse_status_ == 429) {
        close_reason_ = close_reason::per_ip_limit;
        respond_and_close(429, "Too Many Requests", "too many connections from your address; retry later\n");
        return;
    }
    if (req.method != "GET") {
        respond_and_close(405, "Method Not Allowed", "only GET is served on the client port\n");
        return;
    }
    if (req.path == "/favicon.ico") {
        respond_and_close(204, "No Content", "");
        return;
    }
    if (req.path == "/" || req.path == "/demo") {
        respond_and_close(200, "OK", env_.demo_page, "text/html; charset=utf-8");
        return;
    }
    // The client library (clients/js/herald.js, embedded at build time): the
    // demo page imports it, and so can any page of the same site.
    if (req.path == "/herald.js") {
        respond_and_close(200, "OK", herald_js, "text/javascript; charset=utf-8");
        return;
    }
    const bool is_ws = req.path == "/v1/ws";
    const bool is_sse = req.path == "/v1/sse";
    if (!is_ws && !is_sse) {
        respond_and_close(404, "Not Found", "unknown path; live streams are /v1/ws and /v1/sse\n");
        return;
    }
    // Audiences: every audience= parameter, deduplicated, each validated.
    std::vector<std::string> audiences;
    for (auto& a : req.query_values("audience")) {
        if (!base::is_valid_audience(a)) {
            respond_and_close(
                400, "Bad Request",
                "audience \"" + a.substr(0, 200) +
                    "\" is invalid: 1..128 characters of [a-z0-9._:-], starting with a letter or digit\n");
            return;
        }
        if (std::find(audiences.begin(), audiences.end(), a) == audiences.end()) {
            audiences.push_back(std::move(a));
        }
    }
    if (audiences.empty()) {
        respond_and_close(400, "Bad Request", "at least one audience= query parameter is required\n");
        return;
    }
    // Recovery points: ?since=A:EPOCH:SEQ,..., or the SSE reconnect header
    // Last-Event-ID (the same list: the id of every event is the
    // connection's positions). A bare SEQ only for one audience.
    std::vector<model::audience_position> since;
    std::string since_text;
    if (auto v = req.query_values("since"); !v.empty()) {
        since_text = v.back();
    } else if (is_sse && !req.last_event_id.empty()) {
        since_text = req.last_event_id;
    }
    const bool from_last_event_id = req.query_values("since").empty();
    if (!since_text.empty()) {
        auto parsed = model::parse_positions(since_text, env_.limits.max_audiences);
        std::string refusal;
        if (!parsed) {
            refusal = parsed.err().detail;
        } else {
            since = std::move(*parsed);
            if (since.size() == 1 && since.front().audience.empty()) {
                if (audiences.size() == 1)
                    since.front().audience = audiences.front();
                else
                    refusal =
                        "since=SEQ applies to one audience; with several give AUDIENCE:EPOCH:SEQ for each, "
                        "comma-separated";
            }
            for (const auto& p : since) {
                if (refusal.empty() &&
                    std::find(audiences.begin(), audiences.end(), p.audience) == audiences.end())
                    refusal = "since names audience \"" + p.audience +
                              "\", which is not an audience= of this connection";
            }
        }
        if (!refusal.empty() && !from_last_event_id) {
            respond_and_close(400, "Bad Request", refusal + "\n");
            return;
        }
        if (!refusal.empty()) {
            // A browser's automatic reconnect with an id this connection
            // cannot use (one from before an upgrade, other audiences): a 400
            // would end its EventSource for good, so every audience is
            // resumed from nothing instead — a gap notice, then what is left.
            since.clear();
            for (const auto& a : audiences) since.push_back({a, {}, model::seq_no(0)});
        }
    }
    if (audiences.size() > env_.limits.max_audiences) {
        respond_and_close(400, "Bad Request",
                          "too many audiences: at most " + std::to_string(env_.limits.max_audiences) + "\n");
        return;
    }
    // Who may listen: origin, token, granted audiences, tenant.
    std::string token;
    if (auto v = req.query_values("token"); !v.empty())
        token = v.back();
    else if (auto bearer = security::bearer_token(req.authorization))
        token = std::string(*bearer);
    std::string tenant_param;
    if (auto v = req.query_values("tenant"); !v.empty())
        tenant_param = v.back();
    std::string tenant = "default";
    if (env_.access != nullptr) {
        const security::admission verdict =
            env_.access->admit({token, req.origin, req.host, tenant_param, audiences}, base::wall_now());
        if (verdict.status != 200) {
            close_reason_ = verdict.status == 401   ? close_reason::unauthorized
                            : verdict.status == 403 ? close_reason::forbidden
                                                    : close_reason::bad_request;
            respond_and_close(verdict.status,
                              verdict.status == 401   ? "Unauthorized"
                              : verdict.status == 403 ? "Forbidden"
                                                      : "Bad Request",
                              verdict.reason + "\n");
            return;
        }
        tenant = verdict.tenant;
        token_expires_ = verdict.expires;
    } else if (!tenant_param.empty()) {
        tenant = tenant_param;
    }
    std::string response;
    if (is_ws) {
        if (!req.upgrade_websocket) {
            respond_and_close(426, "Upgrade Required",
                              "/v1/ws speaks WebSocket: send Connection: Upgrade and Upgrade: websocket "
                              "(for a plain HTTP stream use /v1/sse)\n");
            return;
        }
        if (req.websocket_version != "13" || req.websocket_key.empty()) {
            respond_and_close(426, "Upgrade Required",
                              "WebSocket version 13 with a Sec-WebSocket-Key is required\n");
            return;
        }
        channel_ = live_channel::websocket;
        response =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " +
            websocket_accept_key(req.websocket_key) + "\r\n\r\n";
    } else {
        channel_ = live_channel::sse;
        response =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Connection: keep-alive\r\nX-Accel-Buffering: no\r\n";
        // CORS: only an origin that was allowed is echoed (never "*"), so no
        // other page can read the stream.
        if (!req.origin.empty())
            response += "Access-Control-Allow-Origin: " + req.origin + "\r\nVary: Origin\r\n";
        response += "\r\nretry: 2000\n\n";
    }
    request_.reset();
    state_ = state::open;
    upgraded_ = true;
    send_control(std::move(response));
    if (state_ != state::open) {
        return;
    }
    // Several audiences over SSE: each event carries this connection's own
    // id (all its positions), starting from the ones it resumed from.
    if (!is_ws && audiences.size() > 1) {
        positions_ = std::make_unique<std::vector<model::audience_position>>();
        for (auto& p : since) {
            if (!p.epoch.empty())
                positions_->push_back(p);
        }
    }
    env_.on_open(*this, tenant, audiences, since);
    if (is_ws && !leftover.empty()) {
        handle_client_frames(leftover);
    }
}

void live_session::send_notice(std::string_view event, std::string_view json) {
    HERALD_ASSERT(env_.ioc.get_executor().running_in_this_thread());
    if (state_ != state::open)
        return;
    if (channel_ == live_channel::websocket) {
        send_control(wire::websocket_frame(ws_opcode::text, json));
    } else {
        std::string sse = "event: ";
        sse.append(event).append("\ndata: ").append(json).append("\n\n");
        send_control(std::move(sse));
    }
}

void live_session::handle_client_frames(std::string_view bytes) {
    parser_.feed(bytes, [this](const ws_event& ev) {
        if (state_ == state::closed) {
            return;
        }
        switch (ev.kind) {
            case ws_event::ping:
                if (state_ == state::open) {
                    send_control(wire::websocket_frame(ws_opcode::pong, ev.payload));
                }
                break;
            case ws_event::close:
                if (state_ == state::closing) {
                    finish();  // the reply to our close
                } else {
                    // Echo the client's code, then let it close the TCP connection.
                    close(ev.close_code == 0 ? 1000 : ev.close_code, "");
                }
                break;
            case ws_event::error:
                close_reason_ = close_reason::protocol_error;
                close(ev.close_code, ev.reason);
                break;
            default:
                // pong, text and binary: nothing to do (client messages are not part of v1).
                break;
        }
    });
}

void live_session::respond_and_close(int status, std::string_view reason_phrase, std::string_view body,
                                     std::string_view content_type) {
    std::string response = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase) + "\r\n";
    response += "Content-Type: " + std::string(content_type) + "\r\n";
    if (status == 426) {
        response += "Sec-WebSocket-Version: 13\r\n";
    }
    response += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    response.append(body);
    if (!close_reason_ && status >= 400)
        close_reason_ = status == 408 ? close_reason::handshake_timeout : close_reason::bad_request;
    request_.reset();
    state_ = state::closing;
    closing_since_mono_ns_ = base::mono_now_ns();
    close_after_flush_ = true;
    send_control(std::move(response));
}

void live_session::send_control(std::string bytes) {
    if (state_ == state::closed) {
        return;
    }
    std::size_t written = 0;
    if (queue_.empty()) {
        const ssize_t n = write_bytes(bytes.data(), bytes.size());
        if (n < 0 && !would_block(errno) && errno != EINTR) {
            finish();
            return;
        }
        written = n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    if (written == bytes.size()) {
        if (close_after_flush_) {
            shutdown_socket();
        }
        return;
    }
    // Control bytes (pongs above all) count against the same bound as
    // frames: a client that floods pings and never reads is a slow consumer.
    if (state_ == state::open && (queue_.size() >= env_.limits.send_queue_frames ||
                                  queued_bytes_ + bytes.size() - written > env_.limits.send_queue_bytes)) {
        env_.stats.count(channel_, delivery_outcome::dropped_slow_consumer);
        close_reason_ = close_reason::slow_consumer;
        close(1008, "slow consumer: send queue full");
        return;
    }
    auto owned = std::make_unique<std::string>(std::move(bytes));
    const char* data = owned->data();
    const auto size = static_cast<std::uint32_t>(owned->size());
    const bool was_empty = queue_.empty();
    enqueue(data, size, nullptr, std::move(owned));
    if (was_empty) {
        head_offset_ = static_cast<std::uint32_t>(written);
    }
    wait_writable();
}

delivery_outcome live_session::deliver(std::string_view frame, frame_hold& hold) {
    if (state_ != state::open) {
        return delivery_outcome::failed;
    }
    auto& stats = env_.stats;
    if (queue_.empty()) {
        const ssize_t n = write_bytes(frame.data(), frame.size());
        if (n == static_cast<ssize_t>(frame.size())) {
            stats.count(channel_, delivery_outcome::sent);
            if (hold.measure_latency)
                stats.observe_latency_ns((base::mono_now() - hold.release_at).count());
            return delivery_outcome::sent;
        }
        if (n < 0 && !would_block(errno) && errno != EINTR) {
            stats.count(channel_, delivery_outcome::failed);
            finish();
            return delivery_outcome::failed;
        }
        hold.ref();
        enqueue(frame.data(), static_cast<std::uint32_t>(frame.size()), &hold, nullptr);
        head_offset_ = n > 0 ? static_cast<std::uint32_t>(n) : 0;
        wait_writable();
        return delivery_outcome::sent;  // counted when the last byte leaves
    }
    const auto& limits = env_.limits;
    if (queue_.size() >= limits.send_queue_frames || queued_bytes_ + frame.size() > limits.send_queue_bytes) {
        stats.count(channel_, delivery_outcome::dropped_slow_consumer);
        if (limits.close_slow_consumers) {
            close_reason_ = close_reason::slow_consumer;
            close(1008, "slow consumer: send queue full");
        }
        return delivery_outcome::dropped_slow_consumer;
    }
    hold.ref();
    enqueue(frame.data(), static_cast<std::uint32_t>(frame.size()), &hold, nullptr);
    return delivery_outcome::sent;
}

delivery_outcome live_session::deliver_positioned(std::string_view audience, std::string_view epoch,
                                                  model::seq_no seq, std::string_view sse_body,
                                                  frame_hold& hold) {
    if (state_ != state::open)
        return delivery_outcome::failed;
    // The id line and the body are one event: both are queued or neither
    // (an id line without its body would claim a position never received).
    std::string id = "id: ";
    append_positions(id, audience, epoch, seq);
    id.push_back('\n');
    const auto& limits = env_.limits;
    if (!queue_.empty() && (queue_.size() + 2 > limits.send_queue_frames ||
                            queued_bytes_ + id.size() + sse_body.size() > limits.send_queue_bytes)) {
        env_.stats.count(channel_, delivery_outcome::dropped_slow_consumer);
        if (limits.close_slow_consumers) {
            close_reason_ = close_reason::slow_consumer;
            close(1008, "slow consumer: send queue full");
        }
        return delivery_outcome::dropped_slow_consumer;
    }
    note_position(audience, epoch, seq);
    send_control(std::move(id));
    return deliver(sse_body, hold);
}

void live_session::append_positions(std::string& out, std::string_view audience, std::string_view epoch,
                                    model::seq_no seq) const {
    bool first = true;
    bool seen = audience.empty();
    for (const auto& p : *positions_) {
        if (!first)
            out.push_back(',');
        first = false;
        if (p.audience == audience) {
            model::append_position(out, audience, epoch, seq);
            seen = true;
        } else {
            model::append_position(out, p.audience, p.epoch, p.seq);
        }
    }
    if (!seen) {
        if (!first)
            out.push_back(',');
        model::append_position(out, audience, epoch, seq);
    }
}

void live_session::note_position(std::string_view audience, std::string_view epoch, model::seq_no seq) {
    auto it = std::find_if(positions_->begin(), positions_->end(),
                           [&](const model::audience_position& p) { return p.audience == audience; });
    if (it == positions_->end()) {
        positions_->push_back({std::string(audience), std::string(epoch), seq});
    } else {
        it->epoch.assign(epoch);
        it->seq = seq;
    }
}

void live_session::start_positions(const std::vector<model::audience_position>& current) {
    if (positions_ == nullptr || state_ != state::open)
        return;
    bool added = false;
    for (const auto& p : current) {
        const bool known =
            std::any_of(positions_->begin(), positions_->end(),
                        [&](const model::audience_position& q) { return q.audience == p.audience; });
        if (!known) {
            positions_->push_back(p);
            added = true;
        }
    }
    if (!added)
        return;
    // An id-only block: sets the browser's Last-Event-ID, fires no event.
    std::string id = "id: ";
    append_positions(id, {}, {}, model::seq_no(0));
    id.append("\n\n");
    send_control(std::move(id));
}

void live_session::deliver_merged(std::span<const std::string_view> frames,
                                  std::span<frame_hold* const> holds) {
    const std::size_t k = frames.size();
    if (k == 1 || !queue_.empty() || state_ != state::open) {
        for (std::size_t i = 0; i < k; ++i) {
            deliver(frames[i], *holds[i]);
        }
        return;
    }
    iovec iov[max_merged_frames]{};
    for (std::size_t i = 0; i < k; ++i) {
        iov[i].iov_base = const_cast<char*>(frames[i].data());
        iov[i].iov_len = frames[i].size();
    }
    ssize_t n = write_gather(iov, k);
    auto& stats = env_.stats;
    if (n < 0) {
        if (!would_block(errno) && errno != EINTR) {
            for (std::size_t i = 0; i < k; ++i) {
                stats.count(channel_, delivery_outcome::failed);
            }
            finish();
            return;
        }
        n = 0;
    }
    const std::int64_t now = base::mono_now_ns();
    auto remaining = static_cast<std::size_t>(n);
    std::size_t i = 0;
    for (; i < k && remaining >= frames[i].size(); ++i) {
        remaining -= frames[i].size();
        stats.count(channel_, delivery_outcome::sent);
        if (holds[i]->measure_latency)
            stats.observe_latency_ns(now - base::to_ns(holds[i]->release_at));
    }
    if (i == k) {
        return;
    }
    // The kernel buffer filled mid-burst: queue the rest (at most k frames,
    // far below the queue bound); counted when their last byte leaves.
    for (std::size_t j = i; j < k; ++j) {
        holds[j]->ref();
        enqueue(frames[j].data(), static_cast<std::uint32_t>(frames[j].size()), holds[j], nullptr);
    }
    head_offset_ = static_cast<std::uint32_t>(remaining);
    wait_writable();
}

void live_session::enqueue(const char* data, std::uint32_t size, frame_hold* hold,
                           std::unique_ptr<std::string> owned) {
    queue_.push_back(pending_write{data, size, hold, std::move(owned)});
    queued_bytes_ += size;
}

void live_session::wait_writable() {
    if (write_waiting_ || state_ == state::closed) {
        return;
    }
    write_waiting_ = true;
    socket_.async_wait(boost::asio::ip::tcp::socket::wait_write,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->write_waiting_ = false;
                           if (ec) {
                               return;
                           }
                           if (self->tls_handshaking_) {
                               self->drive_tls_handshake();
                           } else {
                               self->flush();
                           }
                       });
}

void live_session::flush() {
    while (!queue_.empty() && state_ != state::closed) {
        iovec iov[max_iov];
        std::size_t count = 0;
        for (; count < queue_.size() && count < max_iov; ++count) {
            const auto& w = queue_[count];
            const std::uint32_t skip = count == 0 ? head_offset_ : 0;
            iov[count].iov_base = const_cast<char*>(w.data + skip);
            iov[count].iov_len = w.size - skip;
        }
        ssize_t n = write_gather(iov, count);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (would_block(errno)) {
                wait_writable();
                return;
            }
            for (const auto& w : queue_) {
                if (w.hold != nullptr) {
                    env_.stats.count(channel_, delivery_outcome::failed);
                }
            }
            finish();
            return;
        }
        // Retire every fully written entry; remember how far into the next we got.
        const std::int64_t now = base::mono_now_ns();
        std::size_t done = 0;
        auto remaining = static_cast<std::size_t>(n);
        while (done < queue_.size() && remaining > 0) {
            auto& w = queue_[done];
            const std::size_t left = w.size - head_offset_;
            if (remaining < left) {
                head_offset_ += static_cast<std::uint32_t>(remaining);
                remaining = 0;
                break;
            }
            remaining -= left;
            head_offset_ = 0;
            queued_bytes_ -= w.size;
            if (w.hold != nullptr) {
                env_.stats.count(channel_, delivery_outcome::sent);
                if (w.hold->measure_latency)
                    env_.stats.observe_latency_ns(now - base::to_ns(w.hold->release_at));
                w.hold->unref();
                w.hold = nullptr;
            }
            ++done;
        }
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(done));
        if (!queue_.empty() && (done < count || tls_write_blocked_)) {
            wait_writable();  // the kernel took less than offered: wait for room
            return;
        }
    }
    if (queue_.empty() && close_after_flush_) {
        shutdown_socket();
    }
}

void live_session::drop_queue() {
    for (auto& w : queue_) {
        if (w.hold != nullptr) {
            w.hold->unref();
        }
    }
    queue_.clear();
    queued_bytes_ = 0;
    head_offset_ = 0;
}

void live_session::tick(std::int64_t now_mono_ns, base::wall_time now_wall) {
    HERALD_ASSERT(env_.ioc.get_executor().running_in_this_thread());
    const std::int64_t ping_interval_ns = env_.limits.ping_interval.count();
    switch (state_) {
        case state::handshake:
            if (tls_handshaking_ && now_mono_ns - accepted_mono_ns_ >
                                        (refuse_status_ != 0 ? std::int64_t{1'000'000'000}
                                                             : env_.limits.handshake_timeout.count())) {
                if (env_.on_tls_failure)
                    env_.on_tls_failure("timeout");
                close_reason_ = close_reason::handshake_timeout;
                finish();
                return;
            }
            // A connection being refused gets a second to send its request.
            if (now_mono_ns - accepted_mono_ns_ >
                (refuse_status_ != 0 ? std::int64_t{1'000'000'000} : env_.limits.handshake_timeout.count())) {
                respond_and_close(408, "Request Timeout", "request not received in time\n");
            }
            break;
        case state::open:
            if (token_expires_ != base::wall_time{} && now_wall >= token_expires_) {
                // The client reconnects with a fresh token and since= / Last-Event-ID.
                close_reason_ = close_reason::token_expired;
                close(1008, "token expired");
                return;
            }
            if (channel_ == live_channel::websocket &&
                now_mono_ns - last_rx_mono_ns_ > 3 * ping_interval_ns) {
                close_reason_ = close_reason::dead_peer;
                finish();  // three pings without a pong: the peer is gone
                return;
            }
            if (now_mono_ns - last_keepalive_mono_ns_ >= ping_interval_ns) {
                last_keepalive_mono_ns_ = now_mono_ns;
                if (queue_.empty()) {  // a busy connection needs no keep-alive
                    send_control(channel_ == live_channel::websocket ? ping_frame()
                                                                     : std::string(sse_keepalive));
                }
            }
            break;
        case state::closing:
            if (now_mono_ns - closing_since_mono_ns_ > close_linger_ns) {
                finish();
            }
            break;
        case state::closed:
            break;
    }
}

void live_session::close(std::uint16_t code, std::string_view reason) {
    HERALD_ASSERT(env_.ioc.get_executor().running_in_this_thread());
    if (state_ == state::closed || state_ == state::closing) {
        return;
    }
    if (!close_reason_ && code == 1001)
        close_reason_ = close_reason::shutdown;
    if (!upgraded_ || channel_ == live_channel::sse) {
        finish();
        return;
    }
    // Unsent frames are abandoned; a partially written one must be completed
    // first or the close frame would land inside it.
    // Under TLS a blocked write has already sealed the queue's first unsent
    // bytes (up to one record) into OpenSSL's pending record: the entries
    // holding them must go out unchanged, the rest may be dropped.
    if (!queue_.empty()) {
        std::size_t first = head_offset_ != 0 ? 1 : 0;
        if (tls_write_blocked_) {
            std::size_t covered = 0;
            first = 0;
            while (first < queue_.size() && covered < tls_pending_bytes_) {
                covered += queue_[first].size - (first == 0 ? head_offset_ : 0);
                ++first;
            }
        }
        for (std::size_t i = first; i < queue_.size(); ++i) {
            queued_bytes_ -= queue_[i].size;
            if (queue_[i].hold != nullptr) {
                queue_[i].hold->unref();
            }
        }
        queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(first), queue_.end());
    }
    state_ = state::closing;
    closing_since_mono_ns_ = base::mono_now_ns();
    close_after_flush_ = true;
    send_control(wire::websocket_close_frame(code, reason));
}

void live_session::shutdown_socket() {
    // Half-close: the peer reads everything we sent, then closes; the read
    // side sees EOF and finish() releases the socket (or tick() does after a linger).
    if (tls_ && !tls_handshaking_)
        tls_->shutdown();  // close_notify, so the client sees a clean end of the stream
    boost::system::error_code ec;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    wait_readable();
}

void live_session::finish() {
    if (state_ == state::closed) {
        return;
    }
    state_ = state::closed;
    env_.stats.closed(close_reason_.value_or(close_reason::peer_closed));
    drop_queue();
    boost::system::error_code ec;
    socket_.close(ec);
    if (env_.on_closed) {
        env_.on_closed(*this);
    }
}

}  // namespace herald::channels
