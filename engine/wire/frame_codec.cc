#include "wire/frame_codec.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

namespace herald::wire {
namespace {

const char* priority_name(herald::v1::Priority p) {
    switch (p) {
        case herald::v1::PRIORITY_LOW:
            return "low";
        case herald::v1::PRIORITY_HIGH:
            return "high";
        case herald::v1::PRIORITY_CRITICAL:
            return "critical";
        default:
            return "normal";
    }
}

/// RFC 3339 UTC with milliseconds, e.g. 2026-11-24T21:00:00.000Z.
void append_timestamp(std::string& out, const google::protobuf::Timestamp& t) {
    const std::int64_t ms = google::protobuf::util::TimeUtil::TimestampToMilliseconds(t);
    const std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    const int millis = static_cast<int>(ms - static_cast<std::int64_t>(secs) * 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    out.append(buf);
}

void append_base64(std::string& out, std::string_view in) {
    static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const std::uint32_t v =
            (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
        out.push_back(table[(v >> 18) & 63]);
        out.push_back(table[(v >> 12) & 63]);
        out.push_back(table[(v >> 6) & 63]);
        out.push_back(table[v & 63]);
    }
    if (i + 1 == in.size()) {
        const std::uint32_t v = std::uint8_t(in[i]) << 16;
        out.push_back(table[(v >> 18) & 63]);
        out.push_back(table[(v >> 12) & 63]);
        out.append("==");
    } else if (i + 2 == in.size()) {
        const std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8);
        out.push_back(table[(v >> 18) & 63]);
        out.push_back(table[(v >> 12) & 63]);
        out.push_back(table[(v >> 6) & 63]);
        out.push_back('=');
    }
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (const char c : s) {
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\b':
                out.append("\\b");
                break;
            case '\f':
                out.append("\\f");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x",
                                  static_cast<unsigned>(static_cast<unsigned char>(c)));
                    out.append(buf);
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

std::string encode_live_json(const herald::v1::Announcement& a, std::uint64_t seq, std::string_view epoch) {
    std::string out;
    out.reserve(160 + a.text().size() + a.binary().size() * 4 / 3);
    out.append("{\"id\":");
    append_json_string(out, a.id());
    out.append(",\"audience\":");
    append_json_string(out, a.audience());
    out.append(",\"seq\":").append(std::to_string(seq));
    if (!epoch.empty())
        out.append(",\"epoch\":\"").append(epoch).append("\"");
    out.append(",\"tenant\":");
    append_json_string(out, a.tenant().empty() ? std::string_view("default") : std::string_view(a.tenant()));
    out.append(",\"priority\":\"").append(priority_name(a.priority())).append("\"");
    if (a.has_created_at()) {
        out.append(",\"created_at\":");
        append_timestamp(out, a.created_at());
    }
    if (a.has_deliver_at()) {
        out.append(",\"deliver_at\":");
        append_timestamp(out, a.deliver_at());
    }
    if (a.has_expires_at()) {
        out.append(",\"expires_at\":");
        append_timestamp(out, a.expires_at());
    }
    if (!a.collapse_key().empty()) {
        out.append(",\"collapse_key\":");
        append_json_string(out, a.collapse_key());
    }
    if (!a.labels().empty()) {
        // Protobuf maps have no order: sort keys so equal announcements encode equally.
        std::vector<std::pair<std::string_view, std::string_view>> labels(a.labels().begin(),
                                                                          a.labels().end());
        std::sort(labels.begin(), labels.end());
        out.append(",\"labels\":{");
        bool first = true;
        for (const auto& [k, v] : labels) {
            if (!first)
                out.push_back(',');
            first = false;
            append_json_string(out, k);
            out.push_back(':');
            append_json_string(out, v);
        }
        out.push_back('}');
    }
    switch (a.payload_case()) {
        case herald::v1::Announcement::kText:
            out.append(",\"text\":");
            append_json_string(out, a.text());
            break;
        case herald::v1::Announcement::kJson: {
            std::string json;
            google::protobuf::util::JsonPrintOptions options;
            (void)google::protobuf::util::MessageToJsonString(a.json(), &json, options);
            out.append(",\"json\":").append(json);
            break;
        }
        case herald::v1::Announcement::kBinary:
            out.append(",\"binary\":\"");
            append_base64(out, a.binary());
            out.append("\",\"content_type\":");
            append_json_string(out, a.content_type().empty() ? std::string_view("application/octet-stream")
                                                             : std::string_view(a.content_type()));
            break;
        default:
            break;
    }
    out.push_back('}');
    return out;
}

std::string websocket_frame(ws_opcode op, std::string_view payload) {
    std::string out;
    out.reserve(payload.size() + 10);
    out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(op)));
    const std::size_t n = payload.size();
    if (n < 126) {
        out.push_back(static_cast<char>(n));
    } else if (n <= 0xFFFF) {
        out.push_back(static_cast<char>(126));
        out.push_back(static_cast<char>((n >> 8) & 0xFF));
        out.push_back(static_cast<char>(n & 0xFF));
    } else {
        out.push_back(static_cast<char>(127));
        for (int i = 7; i >= 0; --i) {
            out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF));
        }
    }
    out.append(payload);
    return out;
}

std::string websocket_close_frame(std::uint16_t code, std::string_view reason) {
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload.append(reason.substr(0, 123));
    return websocket_frame(ws_opcode::close, payload);
}

std::string sse_event(std::string_view id, std::string_view json) {
    std::string out;
    out.reserve(json.size() + id.size() + 16);
    out.append("id: ").append(id).push_back('\n');
    std::size_t pos = 0;
    while (pos <= json.size()) {
        const std::size_t nl = json.find('\n', pos);
        const std::size_t end = nl == std::string_view::npos ? json.size() : nl;
        out.append("data: ").append(json.substr(pos, end - pos)).push_back('\n');
        if (nl == std::string_view::npos)
            break;
        pos = nl + 1;
    }
    out.push_back('\n');
    return out;
}

}  // namespace herald::wire
