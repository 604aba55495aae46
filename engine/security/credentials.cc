#include "security/credentials.h"

#include <cctype>

namespace herald::security {

std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept {
    constexpr std::string_view scheme = "bearer";
    if (authorization.size() <= scheme.size())
        return std::nullopt;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
            return std::nullopt;
    }
    std::string_view rest = authorization.substr(scheme.size());
    if (rest.front() != ' ')
        return std::nullopt;
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
    if (rest.empty())
        return std::nullopt;
    for (const char c : rest) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f)
            return std::nullopt;
    }
    return rest;
}

bool pattern_matches(std::string_view pattern, std::string_view audience) noexcept {
    if (!pattern.empty() && pattern.back() == '*') {
        pattern.remove_suffix(1);
        return audience.substr(0, pattern.size()) == pattern;
    }
    return pattern == audience;
}

}  // namespace herald::security
