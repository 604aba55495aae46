#include "outbound/gateway_reply.h"

#include <charconv>

namespace herald::outbound {
namespace {

/// The integer after "code": in the body's error object; 0 if none.
std::int64_t whatsapp_error_code(std::string_view body) {
    const auto error = body.find("\"error\"");
    if (error == std::string_view::npos)
        return 0;
    auto at = body.find("\"code\"", error);
    if (at == std::string_view::npos)
        return 0;
    at = body.find(':', at);
    if (at == std::string_view::npos)
        return 0;
    ++at;
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t' || body[at] == '\n' || body[at] == '\r'))
        ++at;
    std::int64_t code = 0;
    std::from_chars(body.data() + at, body.data() + body.size(), code);
    return code;
}

}  // namespace

std::int64_t parse_retry_after_ns(std::string_view header) noexcept {
    while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
    std::int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), seconds);
    if (ec != std::errc() || seconds < 0 || seconds > 86400)
        return 0;
    return seconds * 1'000'000'000;
}

reply_meaning classify_webhook_reply(int status, std::string_view retry_after) {
    const std::int64_t after = parse_retry_after_ns(retry_after);
    if (status >= 200 && status < 300)
        return {verdict::sent, {}, 0};
    const std::string reason = "http_" + std::to_string(status);
    if (status == 429)
        return {verdict::throttled, reason, after};
    if (status == 408 || status == 425 || status >= 500)
        return {verdict::retry, reason, after};
    return {verdict::failed, reason, 0};
}

reply_meaning classify_whatsapp_reply(int status, std::string_view body, std::string_view retry_after) {
    const std::int64_t after = parse_retry_after_ns(retry_after);
    if (status >= 200 && status < 300)
        return {verdict::sent, {}, 0};
    const std::int64_t code = whatsapp_error_code(body);
    const std::string reason =
        code != 0 ? "gateway_" + std::to_string(code) : "http_" + std::to_string(status);
    switch (code) {
        case 4:       // app-level call limit
        case 80007:   // WABA rate limit
        case 130429:  // Cloud API throughput reached
            return {verdict::throttled, reason, after};
        case 131056:  // pair rate limit
            return {verdict::pair_limited, reason, after};
        case 131048:  // spam rate limit: the number is being restricted
            return {verdict::sender_paused, reason, after};
        case 1:       // unknown API error
        case 2:       // service temporarily unavailable
        case 131000:  // something went wrong
        case 131016:  // service unavailable
        case 133004:  // server temporarily unavailable
            return {verdict::retry, reason, after};
        default:
            break;
    }
    if (status == 429)
        return {verdict::throttled, reason, after};
    if (status >= 500 || status == 408)
        return {verdict::retry, reason, after};
    return {verdict::failed, reason, 0};
}

reply_meaning transport_failure(std::string_view what) {
    // Refused by the address guard: no connection was made, and retrying
    // would not change where the name points.
    if (what == "blocked_address")
        return {verdict::failed, "blocked_address", 0};
    // A refused certificate is the one transport failure a receipt names:
    // the receiver must fix it (renew, fix the name, or the operator adds
    // outbound_ca_file), and it says no more than that a TLS server answered
    // at an address the guard allows. Retried: a renewal may be under way.
    if (what == "tls_certificate")
        return {verdict::retry, "transport_error:tls_certificate", 0};
    // Which port answered what otherwise stays out of receipts a tenant can
    // read (refused, timed out, reset would map the network behind Herald).
    return {verdict::retry, "transport_error", 0};
}

}  // namespace herald::outbound
