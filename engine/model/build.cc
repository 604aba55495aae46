#include "model/build.h"

#include "model/position.h"
#include "wire/frame_codec.h"

namespace herald::model {

base::wall_time wall_of(const google::protobuf::Timestamp& t) noexcept {
    return base::wall_from_ns(t.seconds() * 1'000'000'000 + t.nanos());
}

std::shared_ptr<broadcast> build_broadcast(const herald::v1::Announcement& a, seq_no seq,
                                           kafka_position source, std::string_view epoch) {
    auto b = std::make_shared<broadcast>();
    b->id = a.id();
    b->tenant = a.tenant().empty() ? "default" : a.tenant();
    b->audience = a.audience();
    b->scope = scope_of(b->tenant, b->audience);
    b->collapse_key = a.collapse_key();
    b->seq = seq;
    b->epoch = std::string(epoch);
    b->priority =
        a.priority() == herald::v1::PRIORITY_UNSPECIFIED ? herald::v1::PRIORITY_NORMAL : a.priority();
    b->source = source;
    if (a.has_expires_at())
        b->expires_at = wall_of(a.expires_at());
    b->release_at = a.has_deliver_at() ? base::to_mono(wall_of(a.deliver_at())) : base::mono_now();
    b->scheduled = a.has_deliver_at();

    std::string json = wire::encode_live_json(a, seq.get(), epoch);
    b->websocket_frame = wire::websocket_frame(wire::ws_opcode::text, json);
    std::string sse_id;
    if (epoch.empty())
        sse_id = std::to_string(seq.get());
    else
        append_position(sse_id, b->audience, epoch, seq);
    b->sse_frame = wire::sse_event(sse_id, json);
    b->sse_body_offset = static_cast<std::uint32_t>(b->sse_frame.find('\n') + 1);
    b->payload_json = std::move(json);
    b->announcement_pb = a.SerializeAsString();
    b->text = a.text();
    if (const auto it = a.labels().find("whatsapp.template"); it != a.labels().end())
        b->whatsapp_template = it->second;
    if (const auto it = a.labels().find("whatsapp.language"); it != a.labels().end())
        b->whatsapp_language = it->second;
    if (const auto it = a.labels().find("whatsapp.type"); it != a.labels().end())
        b->whatsapp_free_text = it->second == "text";
    return b;
}

}  // namespace herald::model
