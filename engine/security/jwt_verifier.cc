#include "security/jwt_verifier.h"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <boost/json/parse.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

#include "security/admin_keys.h"

namespace herald::security {
namespace {

class category : public std::error_category {
  public:
    const char* name() const noexcept override { return "herald.token"; }
    std::string message(int ev) const override {
        switch (static_cast<token_errc>(ev)) {
            case token_errc::malformed:
                return "malformed";
            case token_errc::unsupported_algorithm:
                return "unsupported_algorithm";
            case token_errc::unknown_key:
                return "unknown_key";
            case token_errc::bad_signature:
                return "bad_signature";
            case token_errc::expired:
                return "expired";
            case token_errc::not_yet_valid:
                return "not_yet_valid";
            case token_errc::missing_expiry:
                return "missing_expiry";
            case token_errc::wrong_issuer:
                return "wrong_issuer";
            case token_errc::wrong_audience:
                return "wrong_audience";
            case token_errc::bad_claims:
                return "bad_claims";
        }
        return "unknown";
    }
};

base::failure refuse(token_errc e, std::string detail) {
    return base::failure(make_error_code(e), std::move(detail));
}

base::failure bad_key(std::string detail) {
    return base::failure(std::make_error_code(std::errc::invalid_argument), std::move(detail));
}

std::optional<std::string> base64url_decode(std::string_view in) {
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : in) {
        int v = -1;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else if (c == '=')
            break;
        else
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            out += static_cast<char>((acc >> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    return out;
}

/// A public key as PEM from its JWK parameters (RSA n/e, EC P-256 x/y).
std::optional<std::string> jwk_to_pem(const boost::json::object& jwk) {
    const auto text = [&](const char* name) -> std::optional<std::string> {
        const auto* v = jwk.if_contains(name);
        if (v == nullptr || !v->is_string())
            return std::nullopt;
        return base64url_decode(v->as_string());
    };
    const auto* kty = jwk.if_contains("kty");
    if (kty == nullptr || !kty->is_string())
        return std::nullopt;
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    EVP_PKEY_CTX* ctx = nullptr;
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    std::string point;
    const char* type = nullptr;
    bool ok = bld != nullptr;
    if (ok && kty->as_string() == "RSA") {
        const auto n_bytes = text("n");
        const auto e_bytes = text("e");
        ok = n_bytes && e_bytes && !n_bytes->empty() && !e_bytes->empty();
        if (ok) {
            n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes->data()),
                          static_cast<int>(n_bytes->size()), nullptr);
            e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes->data()),
                          static_cast<int>(e_bytes->size()), nullptr);
            ok = n != nullptr && e != nullptr && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
                 OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1;
            type = "RSA";
        }
    } else if (ok && kty->as_string() == "EC") {
        const auto* crv = jwk.if_contains("crv");
        const auto x = text("x");
        const auto y = text("y");
        ok = crv != nullptr && crv->is_string() && crv->as_string() == "P-256" && x && y && x->size() == 32 &&
             y->size() == 32;
        if (ok) {
            point = std::string(1, '\x04') + *x + *y;  // uncompressed point
            ok = OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) == 1 &&
                 OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) ==
                     1;
            type = "EC";
        }
    } else {
        ok = false;
    }
    std::optional<std::string> pem;
    OSSL_PARAM* params = ok ? OSSL_PARAM_BLD_to_param(bld) : nullptr;
    EVP_PKEY* pkey = nullptr;
    if (params != nullptr) {
        ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
        if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1) {
            BIO* bio = BIO_new(BIO_s_mem());
            if (bio != nullptr && PEM_write_bio_PUBKEY(bio, pkey) == 1) {
                char* data = nullptr;
                const long len = BIO_get_mem_data(bio, &data);
                pem = std::string(data, static_cast<std::size_t>(len));
            }
            BIO_free(bio);
        }
    }
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);
    return pem;
}

/// "RSA" or "EC" for a PEM public key, nullopt when it does not parse.
std::optional<std::string> pem_kind(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* pkey = bio != nullptr ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (pkey == nullptr)
        return std::nullopt;
    std::optional<std::string> kind;
    if (EVP_PKEY_is_a(pkey, "RSA"))
        kind = "RSA";
    else if (EVP_PKEY_is_a(pkey, "EC"))
        kind = "EC";
    EVP_PKEY_free(pkey);
    return kind;
}

struct jwt_deleter {
    void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};

}  // namespace

const std::error_category& token_category() noexcept {
    static const category instance;
    return instance;
}

/// One key a token may be checked against, with the one algorithm it allows.
struct jwt_verifier::key {
    std::string kid;       // "" = any kid
    jwt_alg_t alg;         // HS256, RS256 or ES256
    std::string material;  // the secret, or the PEM
};

jwt_verifier::~jwt_verifier() = default;

base::result<std::unique_ptr<jwt_verifier>> jwt_verifier::create(jwt_options options) {
    std::unique_ptr<jwt_verifier> v(new jwt_verifier());
    if (!options.hs256_secret.empty()) {
        if (options.hs256_secret.size() < 32)
            return bad_key("jwt_hs256_secret_file: the secret must be at least 32 bytes (256 bits)");
        v->keys_.push_back(key{"", JWT_ALG_HS256, options.hs256_secret});
    }
    if (!options.public_key_pem.empty()) {
        const auto kind = pem_kind(options.public_key_pem);
        if (!kind)
            return bad_key("jwt_public_key_file: not a PEM public key (-----BEGIN PUBLIC KEY-----)");
        v->keys_.push_back(key{"", *kind == "RSA" ? JWT_ALG_RS256 : JWT_ALG_ES256, options.public_key_pem});
    }
    if (!options.jwks_json.empty()) {
        boost::system::error_code ec;
        const auto doc = boost::json::parse(options.jwks_json, ec);
        const auto* keys = !ec && doc.is_object() ? doc.as_object().if_contains("keys") : nullptr;
        if (keys == nullptr || !keys->is_array())
            return bad_key("jwks_file: not a JWKS document ({\"keys\":[...]})");
        std::size_t usable = 0;
        for (const auto& k : keys->as_array()) {
            if (!k.is_object())
                continue;
            const auto& o = k.as_object();
            const auto* use = o.if_contains("use");
            if (use != nullptr && use->is_string() && use->as_string() != "sig")
                continue;
            auto pem = jwk_to_pem(o);
            if (!pem)
                continue;
            const auto* kid = o.if_contains("kid");
            const auto* kty = o.if_contains("kty");
            v->keys_.push_back(key{kid != nullptr && kid->is_string() ? std::string(kid->as_string()) : "",
                                   kty->as_string() == "RSA" ? JWT_ALG_RS256 : JWT_ALG_ES256,
                                   std::move(*pem)});
            ++usable;
        }
        if (usable == 0)
            return bad_key("jwks_file: no usable signing key (RSA, or EC P-256)");
    }
    if (v->keys_.empty())
        return bad_key("no JWT key configured");
    v->options_ = std::move(options);
    return v;
}

base::result<token_claims> jwt_verifier::verify(std::string_view token, base::wall_time now) const {
    // A token verified before (a client reconnecting) is not verified again
    // until it expires: with Debian's OpenSSL 3.0, libjwt's RS256/ES256
    // verification costs ~0.3-1 ms, mostly decoding the PEM key each time.
    cache_key digest{};
    SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
    {
        std::lock_guard lock(cache_mutex_);
        if (const auto it = cache_.find(digest); it != cache_.end()) {
            if (it->second.expires > now)
                return it->second;
            cache_.erase(it);
        }
    }
    auto verified = verify_uncached(token, now);
    if (verified) {
        std::lock_guard lock(cache_mutex_);
        if (cache_.size() >= cache_capacity) {
            // Forget the oldest half (insertion order): bounded, and cheap
            // enough for a cache that only saves repeated verifications.
            while (cache_order_.size() > cache_capacity / 2) {
                cache_.erase(cache_order_.front());
                cache_order_.pop_front();
            }
        }
        if (cache_.emplace(digest, *verified).second)
            cache_order_.push_back(digest);
    }
    return verified;
}

base::result<token_claims> jwt_verifier::verify_uncached(std::string_view token, base::wall_time now) const {
    if (token.size() > 8192)
        return refuse(token_errc::malformed, "token longer than 8 KiB");
    const auto dot = token.find('.');
    if (dot == std::string_view::npos || token.find('.', dot + 1) == std::string_view::npos)
        return refuse(token_errc::malformed, "not a JWS compact token (header.payload.signature)");
    // The header decides nothing by itself: its alg must be the one of a configured key.
    const auto header_text = base64url_decode(token.substr(0, dot));
    boost::system::error_code ec;
    const auto header = header_text ? boost::json::parse(*header_text, ec) : boost::json::value();
    if (!header_text || ec || !header.is_object())
        return refuse(token_errc::malformed, "token header is not base64url JSON");
    const auto* alg = header.as_object().if_contains("alg");
    if (alg == nullptr || !alg->is_string())
        return refuse(token_errc::malformed, "token header has no alg");
    const jwt_alg_t wanted = jwt_str_alg(std::string(alg->as_string()).c_str());
    if (wanted != JWT_ALG_HS256 && wanted != JWT_ALG_RS256 && wanted != JWT_ALG_ES256)
        return refuse(token_errc::unsupported_algorithm, "alg " + std::string(alg->as_string()) +
                                                             " is not accepted (HS256, RS256 or ES256 only)");
    const auto* kid_value = header.as_object().if_contains("kid");
    const std::string kid =
        kid_value != nullptr && kid_value->is_string() ? std::string(kid_value->as_string()) : "";
    // A key named by the token's kid first; else the first key of that
    // algorithm that the kid does not rule out.
    const key* chosen = nullptr;
    for (const auto& k : keys_) {
        if (k.alg == wanted && !kid.empty() && k.kid == kid) {
            chosen = &k;
            break;
        }
        if (chosen == nullptr && k.alg == wanted && (k.kid.empty() || kid.empty()))
            chosen = &k;
    }
    if (chosen == nullptr)
        return refuse(token_errc::unknown_key, "no configured key for alg " + std::string(alg->as_string()) +
                                                   (kid.empty() ? std::string() : " and kid " + kid));
    const std::string nul_terminated(token);
    jwt_t* raw = nullptr;
    const int rc = jwt_decode(&raw, nul_terminated.c_str(),
                              reinterpret_cast<const unsigned char*>(chosen->material.data()),
                              static_cast<int>(chosen->material.size()));
    std::unique_ptr<jwt_t, jwt_deleter> jwt(raw);
    if (rc != 0 || !jwt)
        return refuse(token_errc::bad_signature, "signature does not verify");
    if (jwt_get_alg(jwt.get()) != chosen->alg)
        return refuse(token_errc::unsupported_algorithm, "algorithm changed during verification");
    const auto json_claim = [&](const char* name) -> boost::json::value {
        char* text = jwt_get_grants_json(jwt.get(), name);
        if (text == nullptr)
            return nullptr;
        boost::system::error_code parse_ec;
        auto v = boost::json::parse(text, parse_ec);
        std::free(text);
        return parse_ec ? boost::json::value() : v;
    };

    const std::int64_t seconds_now =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const std::int64_t leeway = options_.leeway.count();
    // exp and nbf are NumericDates (RFC 7519): any JSON number, fractions
    // included; read through JSON, not libjwt's integer getter (which
    // reports a fraction as -1). Compared without arithmetic that could
    // overflow on absurd values.
    const auto numeric_date = [&](const char* name) -> std::optional<std::optional<std::int64_t>> {
        const auto v = json_claim(name);
        if (v.is_null())
            return std::optional<std::int64_t>();  // absent
        if (v.is_int64())
            return std::optional<std::int64_t>(v.as_int64());
        if (v.is_uint64())
            return std::optional<std::int64_t>(std::numeric_limits<std::int64_t>::max());
        if (v.is_double() && std::isfinite(v.as_double())) {
            const double d = std::floor(v.as_double());
            if (d >= 9.2e18)
                return std::optional<std::int64_t>(std::numeric_limits<std::int64_t>::max());
            if (d <= -9.2e18)
                return std::optional<std::int64_t>(std::numeric_limits<std::int64_t>::min());
            return std::optional<std::int64_t>(static_cast<std::int64_t>(d));
        }
        return std::nullopt;  // present, but not a number
    };
    const auto exp = numeric_date("exp");
    if (!exp)
        return refuse(token_errc::bad_claims, "exp claim is not a number");
    if (!*exp)
        return refuse(token_errc::missing_expiry, "token has no exp claim");
    if (**exp <= seconds_now - leeway)
        return refuse(token_errc::expired, "token expired");
    const auto nbf = numeric_date("nbf");
    if (!nbf)
        return refuse(token_errc::bad_claims, "nbf claim is not a number");
    if (*nbf && **nbf > seconds_now + leeway)
        return refuse(token_errc::not_yet_valid, "token not valid yet (nbf)");
    if (!options_.issuer.empty()) {
        const char* iss = jwt_get_grant(jwt.get(), "iss");
        if (iss == nullptr || options_.issuer != iss)
            return refuse(token_errc::wrong_issuer, "token issuer is not the configured one");
    }
    token_claims claims;
    // Nanoseconds since 1970 end in 2262: later expiries are "far ahead".
    constexpr std::int64_t latest_expiry_s = 9'000'000'000;  // 2255
    claims.expires = base::wall_time(std::chrono::seconds(std::min(**exp, latest_expiry_s)));
    if (const char* sub = jwt_get_grant(jwt.get(), "sub"))
        claims.subject = sub;
    if (!options_.audience.empty()) {
        const auto aud = json_claim("aud");
        bool found = aud.is_string() && aud.as_string() == options_.audience;
        if (aud.is_array()) {
            for (const auto& a : aud.as_array())
                found = found || (a.is_string() && a.as_string() == options_.audience);
        }
        if (!found)
            return refuse(token_errc::wrong_audience, "token aud does not name this service");
    }
    const auto tenant = json_claim("tenant");
    if (tenant.is_string()) {
        claims.tenant = std::string(tenant.as_string());
        if (!is_valid_tenant(claims.tenant))
            return refuse(token_errc::bad_claims, "tenant claim is not a tenant name");
    } else if (!tenant.is_null()) {
        return refuse(token_errc::bad_claims, "tenant claim must be a string");
    }
    const auto audiences = json_claim("audiences");
    if (audiences.is_array()) {
        for (const auto& a : audiences.as_array()) {
            if (!a.is_string())
                return refuse(token_errc::bad_claims, "audiences claim must be a list of strings");
            claims.audiences.emplace_back(a.as_string());
        }
    } else if (audiences.is_string()) {
        claims.audiences.emplace_back(audiences.as_string());
    } else if (!audiences.is_null()) {
        return refuse(token_errc::bad_claims, "audiences claim must be a list of strings");
    }
    return claims;
}

}  // namespace herald::security
