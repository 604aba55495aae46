// The syntax of a Standard Webhooks signing secret list, shared by the
// places that accept one from outside — heraldd's webhook_secrets setting
// (flag, environment, file) and a subscription's own webhook_secret (ops
// API, herald.subscriptions, the CLI) — so a list valid in one place is
// valid in the other and always decodes (outbound/webhook_signature.h):
// "whsec_<base64>" items, comma-separated (several during a rotation), each
// decoding to at least 16 bytes. The problem text never quotes the value:
// it is a credential and ends up in logs and answers.
#pragma once

#include <cstddef>
#include <string_view>

namespace herald::base {

inline constexpr std::string_view webhook_secret_problem =
    "each secret must be whsec_ followed by base64 of at least 16 bytes";

/// One "whsec_<base64>": standard alphabet, padded to a multiple of 4,
/// '=' only as the last one or two characters, at least 16 bytes decoded.
[[nodiscard]] constexpr bool is_webhook_secret(std::string_view s) noexcept {
    constexpr std::string_view prefix = "whsec_";
    if (s.substr(0, prefix.size()) != prefix)
        return false;
    const std::string_view b64 = s.substr(prefix.size());
    if (b64.empty() || b64.size() % 4 != 0)
        return false;
    std::size_t padding = 0;
    for (std::size_t i = 0; i < b64.size(); ++i) {
        const char c = b64[i];
        if (c == '=') {
            if (i + 2 < b64.size())
                return false;  // padding only at the very end
            ++padding;
            continue;
        }
        if (padding != 0)
            return false;  // "ab=c"
        const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                              c == '+' || c == '/';
        if (!alphabet)
            return false;
    }
    return b64.size() / 4 * 3 - padding >= 16;
}

/// A comma-separated list of secrets (spaces around items allowed); an
/// empty list is valid (no secret).
[[nodiscard]] constexpr bool is_webhook_secret_list(std::string_view list) noexcept {
    const auto blank = [](char c) { return c == ' ' || c == '\t'; };
    std::size_t pos = 0;
    bool any = false;
    while (pos <= list.size()) {
        std::size_t end = list.find(',', pos);
        if (end == std::string_view::npos)
            end = list.size();
        std::string_view item = list.substr(pos, end - pos);
        while (!item.empty() && blank(item.front())) item.remove_prefix(1);
        while (!item.empty() && blank(item.back())) item.remove_suffix(1);
        if (item.empty()) {
            // "a,,b" or a trailing comma: a slip, but never a secret.
            if (end != list.size() || any)
                return false;
        } else if (!is_webhook_secret(item)) {
            return false;
        } else {
            any = true;
        }
        pos = end + 1;
    }
    return true;
}

}  // namespace herald::base
