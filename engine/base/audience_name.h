// The syntax of an audience name, shared by everything that accepts one from
// outside (Kafka records, client query strings, the CLI) so that a name valid
// in one place is valid everywhere: 1..128 characters of [a-z0-9._:-],
// starting with a letter or digit. Example: "lineup.rock-am-ring".
#pragma once

#include <string_view>

namespace herald::base {

inline constexpr std::size_t max_audience_length = 128;

[[nodiscard]] constexpr bool is_valid_audience(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_audience_length) {
        return false;
    }
    const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(name.front())) {
        return false;
    }
    for (const char c : name) {
        if (!alnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
            return false;
        }
    }
    return true;
}

}  // namespace herald::base
