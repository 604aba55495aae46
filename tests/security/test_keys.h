// Keys and tokens for the JWT tests, made in the test itself: RSA-2048 and
// EC P-256 key pairs from OpenSSL (PEM and JWK parameters), tokens minted
// with libjwt, and hand-crafted tokens (any header, HMAC over any bytes)
// for the attacks libjwt would not produce.
#pragma once

#include <jwt.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace herald::security::testing {

struct key_pair {
    std::string private_pem;
    std::string public_pem;
    // JWK parameters, base64url without padding: RSA n/e, or EC x/y.
    std::string n, e, x, y;
};

/// A fresh RSA-2048 key pair.
[[nodiscard]] key_pair make_rsa_key();
/// A fresh EC P-256 key pair.
[[nodiscard]] key_pair make_ec_key();

[[nodiscard]] std::string b64url(std::string_view bytes);
[[nodiscard]] std::string b64url_decode(std::string_view text);
[[nodiscard]] std::string hmac_sha256(std::string_view key, std::string_view data);

/// A token minted by libjwt: `grants_json` is the payload object, `kid`
/// (if not empty) goes into the header.
[[nodiscard]] std::string mint(jwt_alg_t alg, std::string_view key, std::string_view grants_json,
                               std::string_view kid = "");

/// header.payload.signature from the JSON texts, HMAC-SHA256-signed with
/// `secret` (or with an empty signature when `secret` is empty).
[[nodiscard]] std::string craft(std::string_view header_json, std::string_view payload_json,
                                std::string_view secret);

/// header.payload.signature signed by OpenSSL directly (not libjwt) with a
/// PEM private key: RSASSA-PKCS1-v1_5 for RSA, and for EC the JWS form of
/// an ECDSA signature (R || S, 32 bytes each), as other issuers produce it.
[[nodiscard]] std::string craft_signed(std::string_view header_json, std::string_view payload_json,
                                       std::string_view private_pem);

/// The instant the tests take as "now": 2023-11-14T22:13:20Z.
inline constexpr std::int64_t now_s = 1'700'000'000;
[[nodiscard]] inline base::wall_time at(std::int64_t seconds) {
    return base::wall_time(std::chrono::seconds(seconds));
}
[[nodiscard]] inline base::wall_time test_now() {
    return at(now_s);
}

/// A 32-byte HS256 secret.
inline const std::string hs_secret = "0123456789abcdef0123456789abcdef";

}  // namespace herald::security::testing
