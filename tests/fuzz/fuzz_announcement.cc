// libFuzzer: announcement records as producers can write them (JSON with the
// content-type header, protobuf binary without). Must never crash, hang or
// leak; every input is either a valid announcement or a named refusal.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ingest/decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const bool json = (data[0] & 1) != 0;
    const std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
    auto r =
        herald::ingest::decode_announcement(value, json, herald::ingest::limits{}, 1'764'000'000'000'000'000);
    if (!r && r.err().describe().empty())
        __builtin_trap();  // a refusal must say why
    return 0;
}
