// Verifies live clients' JSON Web Tokens (RFC 7519) with Debian's libjwt.
//
// Keys come from files: an HS256 shared secret, a PEM public key (RS256 or
// ES256), or a JWKS document whose `kid` picks the key. The algorithm a
// token may use is fixed by the key it is checked against, never by the
// token: the header is read first, a token whose `alg` does not belong to
// a configured key is refused before any signature check, so `alg: none`
// and HS256-signed-with-the-RSA-public-key (algorithm confusion) are
// refused. Claims: `exp` required, `nbf` honoured, optional `iss` / `aud`
// checks, `tenant` (default "default"), `audiences` (names or `prefix*`).
// A verified token is remembered (by its SHA-256, bounded) until it
// expires, so a client reconnecting with the same token costs a hash.
#pragma once

#include <array>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace herald::security {

/// Why a token was refused: the one-line reason a 401 carries.
enum class token_errc {
    malformed = 1,
    unsupported_algorithm,
    unknown_key,
    bad_signature,
    expired,
    not_yet_valid,
    missing_expiry,
    wrong_issuer,
    wrong_audience,
    bad_claims,
};

[[nodiscard]] const std::error_category& token_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(token_errc e) noexcept {
    return {static_cast<int>(e), token_category()};
}

struct jwt_options {
    std::string hs256_secret;    // shared secret (raw bytes of the file, trailing newline removed)
    std::string public_key_pem;  // RS256 or ES256 public key
    std::string jwks_json;       // a JWKS document
    std::string issuer;          // required `iss`, if set
    std::string audience;        // required in `aud`, if set
    /// Tolerated clock difference for exp / nbf.
    std::chrono::seconds leeway{30};

    [[nodiscard]] bool any_key() const noexcept {
        return !hs256_secret.empty() || !public_key_pem.empty() || !jwks_json.empty();
    }
};

struct token_claims {
    std::string subject;
    std::string tenant = "default";
    std::vector<std::string> audiences;  // names or prefix* patterns
    base::wall_time expires;
};

class jwt_verifier {
  public:
    /// Checks the keys (a PEM that does not parse, a JWKS without usable
    /// keys) and says which file is wrong.
    [[nodiscard]] static base::result<std::unique_ptr<jwt_verifier>> create(jwt_options options);
    ~jwt_verifier();
    jwt_verifier(const jwt_verifier&) = delete;
    jwt_verifier& operator=(const jwt_verifier&) = delete;

    /// The clock difference tolerated for exp and nbf.
    [[nodiscard]] std::chrono::seconds leeway() const noexcept { return options_.leeway; }

    /// The claims of a valid token at `now`, or why it is not valid.
    [[nodiscard]] base::result<token_claims> verify(std::string_view token, base::wall_time now) const;

    /// Verified tokens remembered (by SHA-256) until they expire.
    static constexpr std::size_t cache_capacity = 16384;

  private:
    struct key;
    using cache_key = std::array<unsigned char, 32>;
    struct cache_hash {
        std::size_t operator()(const cache_key& k) const noexcept {
            std::size_t h;
            std::memcpy(&h, k.data(), sizeof h);
            return h;
        }
    };
    jwt_verifier() = default;
    [[nodiscard]] base::result<token_claims> verify_uncached(std::string_view token,
                                                             base::wall_time now) const;

    jwt_options options_;
    std::vector<key> keys_;
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<cache_key, token_claims, cache_hash> cache_;
    mutable std::deque<cache_key> cache_order_;
};

}  // namespace herald::security

template <>
struct std::is_error_code_enum<herald::security::token_errc> : std::true_type {};
