// Small parsers shared by both ports' access checks: the credential of an
// `Authorization: Bearer <token>` header, and the audience patterns that
// tokens grant and --public-audiences lists ("lineup.*" grants every
// audience starting with "lineup."; a name without `*` grants itself).
// Pure and allocation-free, so the fuzzer can hammer them.
#pragma once

#include <optional>
#include <string_view>

namespace herald::security {

/// The token of "Bearer <token>" (scheme case-insensitive, one or more
/// spaces); nullopt for another scheme, an empty token or a token with
/// spaces or control characters.
[[nodiscard]] std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept;

/// Whether `pattern` ("name" or "prefix*"; "*" alone matches everything) matches `audience`.
[[nodiscard]] bool pattern_matches(std::string_view pattern, std::string_view audience) noexcept;

}  // namespace herald::security
