// libFuzzer: bytes a WebSocket client sends after the handshake, split into
// arbitrary chunks. The parser must report an error code or events, never
// crash, and never accept a message over its limit.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "channels/ws_frame_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    herald::channels::ws_frame_parser parser(4096);
    const std::size_t chunk = 1 + data[0] % 64;
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    while (!rest.empty()) {
        const auto part = rest.substr(0, chunk);
        rest.remove_prefix(part.size());
        const bool ok = parser.feed(part, [](const herald::channels::ws_event& ev) {
            if (ev.payload.size() > 4096)
                __builtin_trap();
        });
        if (!ok)
            break;  // the connection would be closed here
    }
    return 0;
}
