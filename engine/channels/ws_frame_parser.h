// Incremental parser of the frames a WebSocket client sends to the server
// (RFC 6455 section 5). It is the only code that reads bytes a client
// controls after the handshake, so it is strict: unmasked frames, reserved
// bits, unknown opcodes, oversized or fragmented control frames are protocol
// errors (1002); invalid UTF-8 text is 1007; a message over the configured
// limit is 1009 — reported as an error event with the close code to send.
//
// It lives in every connection, so its state is small: two strings that are
// empty unless a frame arrives split across reads or a message is
// fragmented. Payloads are unmasked into a per-thread scratch buffer; the
// views handed to the callback are valid only during the callback.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald::channels {

struct ws_event {
    enum kind_t : std::uint8_t { none, text, binary, ping, pong, close, error };
    kind_t kind = none;
    std::string_view payload;
    /// close: the client's code (0 if it sent none); error: the code to close with.
    std::uint16_t close_code = 0;
    std::string_view reason;
};

/// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
[[nodiscard]] bool is_valid_utf8(std::string_view s) noexcept;

class ws_frame_parser {
  public:
    explicit ws_frame_parser(std::uint32_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

    /// Feeds bytes as they arrive; calls `on_event(const ws_event&)` for each
    /// complete frame or message. Returns false once an error was reported
    /// (the caller closes the connection with the error's code).
    template <class F>
    bool feed(std::string_view bytes, F&& on_event) {
        if (failed_) {
            return false;
        }
        const bool from_pending = !pending_.empty();
        if (from_pending) {
            pending_.append(bytes);
            bytes = pending_;
        }
        std::size_t consumed = 0;
        for (;;) {
            ws_event ev;
            const std::size_t n = parse_one(bytes.substr(consumed), ev);
            if (n == 0) {
                break;  // need more bytes
            }
            consumed += n;
            if (ev.kind != ws_event::none) {
                on_event(static_cast<const ws_event&>(ev));
            }
            if (failed_) {
                pending_.clear();
                return false;
            }
        }
        if (from_pending) {
            pending_.erase(0, consumed);
            if (pending_.empty()) {
                std::string().swap(pending_);  // idle connections hold no buffer
            }
        } else {
            pending_.assign(bytes.substr(consumed));
        }
        return true;
    }

  private:
    /// Parses one frame from the front of `in`. Returns bytes consumed (0 =
    /// incomplete) and fills `ev` (kind none for a non-final fragment).
    std::size_t parse_one(std::string_view in, ws_event& ev);
    std::size_t fail(ws_event& ev, std::uint16_t code, std::string_view reason, std::size_t consumed);

    std::string pending_;  // bytes of an incomplete frame
    std::string message_;  // fragments of an unfinished message
    std::uint32_t max_message_bytes_;
    std::uint8_t message_opcode_ = 0;  // opcode of the unfinished message, 0 = none
    bool failed_ = false;
};

}  // namespace herald::channels
