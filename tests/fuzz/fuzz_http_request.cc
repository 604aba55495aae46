// libFuzzer: the one HTTP request a live client sends (request line, headers,
// query string with audience= / since=), and query strings on their own.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "channels/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    (void)herald::channels::parse_query(bytes);
    if (bytes.find("\r\n\r\n") != std::string_view::npos)
        (void)herald::channels::parse_http_request(bytes);
    return 0;
}
