// libFuzzer: herald.subscriptions records (JSON / protobuf) and CSV imports.
// Every refused CSV line must carry a line number inside the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "registry/subscription_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 3) {
        case 0:
            (void)herald::registry::decode_subscription(value, true);
            break;
        case 1:
            (void)herald::registry::decode_subscription(value, false);
            break;
        default: {
            const auto lines = static_cast<std::size_t>(std::count(value.begin(), value.end(), '\n')) + 1;
            const auto parsed = herald::registry::parse_subscriptions_csv(value);
            for (const auto& e : parsed.errors) {
                if (e.line == 0 || e.line > lines || e.reason.empty())
                    __builtin_trap();
            }
            for (const auto& [line, s] : parsed.accepted) {
                if (line == 0 || line > lines)
                    __builtin_trap();
            }
        }
    }
    return 0;
}
