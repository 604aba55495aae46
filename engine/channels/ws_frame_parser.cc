#include "channels/ws_frame_parser.h"

namespace herald::channels {
namespace {

thread_local std::string t_scratch;

bool valid_close_code(std::uint16_t code) {
    if (code >= 3000 && code <= 4999)
        return true;
    switch (code) {
        case 1000:
        case 1001:
        case 1002:
        case 1003:
        case 1007:
        case 1008:
        case 1009:
        case 1010:
        case 1011:
            return true;
        default:
            return false;
    }
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        const auto c = static_cast<std::uint8_t>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<std::uint8_t>(s[i + k]);
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += len;
    }
    return true;
}

std::size_t ws_frame_parser::fail(ws_event& ev, std::uint16_t code, std::string_view reason,
                                  std::size_t consumed) {
    failed_ = true;
    ev.kind = ws_event::error;
    ev.close_code = code;
    ev.reason = reason;
    return consumed == 0 ? 1 : consumed;
}

std::size_t ws_frame_parser::parse_one(std::string_view in, ws_event& ev) {
    if (in.size() < 2) {
        return 0;
    }
    const auto b0 = static_cast<std::uint8_t>(in[0]);
    const auto b1 = static_cast<std::uint8_t>(in[1]);
    const bool fin = (b0 & 0x80) != 0;
    const std::uint8_t opcode = b0 & 0x0F;
    if ((b0 & 0x70) != 0) {
        return fail(ev, 1002, "reserved bits set", in.size());
    }
    if ((b1 & 0x80) == 0) {
        return fail(ev, 1002, "client frames must be masked", in.size());
    }
    const bool control = (opcode & 0x08) != 0;
    if (control && opcode != 0x8 && opcode != 0x9 && opcode != 0xA) {
        return fail(ev, 1002, "unknown control opcode", in.size());
    }
    if (!control && opcode > 0x2) {
        return fail(ev, 1002, "unknown data opcode", in.size());
    }
    std::uint64_t len = b1 & 0x7F;
    std::size_t header = 2;
    if (len == 126) {
        if (in.size() < 4)
            return 0;
        len = (std::uint64_t(std::uint8_t(in[2])) << 8) | std::uint8_t(in[3]);
        header = 4;
    } else if (len == 127) {
        if (in.size() < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | std::uint8_t(in[2 + i]);
        if ((len >> 63) != 0) {
            return fail(ev, 1002, "invalid payload length", in.size());
        }
        header = 10;
    }
    if (control && (!fin || len > 125)) {
        return fail(ev, 1002, "control frames must be final and at most 125 bytes", in.size());
    }
    if (!control) {
        if (opcode == 0x0 && message_opcode_ == 0) {
            return fail(ev, 1002, "continuation without a message", in.size());
        }
        if (opcode != 0x0 && message_opcode_ != 0) {
            return fail(ev, 1002, "new message inside a fragmented one", in.size());
        }
        if (message_.size() + len > max_message_bytes_) {
            return fail(ev, 1009, "message too big", in.size());
        }
    }
    header += 4;  // masking key
    if (in.size() < header + len) {
        return 0;
    }
    const char* mask = in.data() + header - 4;
    std::string& payload = t_scratch;
    payload.assign(in.data() + header, static_cast<std::size_t>(len));
    for (std::size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
    }
    const std::size_t consumed = header + static_cast<std::size_t>(len);

    if (control) {
        switch (opcode) {
            case 0x9:
                ev.kind = ws_event::ping;
                ev.payload = payload;
                return consumed;
            case 0xA:
                ev.kind = ws_event::pong;
                ev.payload = payload;
                return consumed;
            default:
                break;
        }
        // Close.
        if (payload.size() == 1) {
            return fail(ev, 1002, "close payload of one byte", consumed);
        }
        ev.kind = ws_event::close;
        if (payload.size() >= 2) {
            const auto code =
                static_cast<std::uint16_t>((std::uint8_t(payload[0]) << 8) | std::uint8_t(payload[1]));
            if (!valid_close_code(code)) {
                return fail(ev, 1002, "invalid close code", consumed);
            }
            const std::string_view reason = std::string_view(payload).substr(2);
            if (!is_valid_utf8(reason)) {
                return fail(ev, 1007, "close reason is not UTF-8", consumed);
            }
            ev.close_code = code;
            ev.reason = reason;
        }
        return consumed;
    }

    // Data: whole message in one frame (the common case) or a fragment.
    if (fin && message_opcode_ == 0) {
        if (opcode == 0x1 && !is_valid_utf8(payload)) {
            return fail(ev, 1007, "text message is not UTF-8", consumed);
        }
        ev.kind = opcode == 0x1 ? ws_event::text : ws_event::binary;
        ev.payload = payload;
        return consumed;
    }
    if (opcode != 0x0) {
        message_opcode_ = opcode;
    }
    message_.append(payload);
    if (!fin) {
        return consumed;  // ev.kind stays none
    }
    payload.swap(message_);
    std::string().swap(message_);  // give the fragment buffer back: it lives in every connection
    const std::uint8_t message_opcode = message_opcode_;
    message_opcode_ = 0;
    if (message_opcode == 0x1 && !is_valid_utf8(payload)) {
        return fail(ev, 1007, "text message is not UTF-8", consumed);
    }
    ev.kind = message_opcode == 0x1 ? ws_event::text : ws_event::binary;
    ev.payload = payload;
    return consumed;
}

}  // namespace herald::channels
