// The bytes a live recipient receives, encoded once per broadcast: the live
// JSON object, its WebSocket frame and its Server-Sent Event. Also the few
// server control frames (ping, pong, close). Deterministic key order so the
// same announcement always yields the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "herald/v1/announcement.pb.h"

namespace herald::wire {

/// {"id":..,"audience":..,"seq":N,"epoch":"E"?,"tenant":..,"priority":..,"created_at":..,
///  "deliver_at":..?,"expires_at":..?,"collapse_key":..?,"labels":{..}?,
///  then one of "text":"..." | "json":{...} | "binary":"<base64>","content_type":".."}
/// `epoch` (model/position.h) is left out when empty (outbound payloads).
[[nodiscard]] std::string encode_live_json(const herald::v1::Announcement& a, std::uint64_t seq,
                                           std::string_view epoch = {});

/// RFC 8259 string (with quotes) appended to `out`.
void append_json_string(std::string& out, std::string_view s);

enum class ws_opcode : std::uint8_t { text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA };

/// Unmasked server->client frame with FIN set.
[[nodiscard]] std::string websocket_frame(ws_opcode op, std::string_view payload);

/// Close frame; the reason is cut to 123 bytes (control frames carry at most 125).
[[nodiscard]] std::string websocket_close_frame(std::uint16_t code, std::string_view reason);

/// "id: <id>\n" + one "data: " line per line of `json` + "\n".
[[nodiscard]] std::string sse_event(std::string_view id, std::string_view json);

}  // namespace herald::wire
