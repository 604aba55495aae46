#include "security/jwt_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "test_keys.h"

namespace herald::security {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace testing;  // herald::security::testing: keys and tokens

std::string exp_in(std::int64_t seconds) {
    return "\"exp\":" + std::to_string(now_s + seconds);
}

/// A payload object: `"sub":"alice"`, exp an hour from now, and `extra` members.
std::string claims(std::string_view extra = "") {
    std::string out = "{\"sub\":\"alice\"," + exp_in(3600);
    if (!extra.empty())
        out += "," + std::string(extra);
    return out + "}";
}

std::unique_ptr<jwt_verifier> make(jwt_options o) {
    auto v = jwt_verifier::create(std::move(o));
    if (!v)
        ADD_FAILURE() << "create: " << v.err().describe();
    return v ? std::move(v.value()) : nullptr;
}

std::unique_ptr<jwt_verifier> hs_verifier(std::string issuer = "", std::string audience = "") {
    jwt_options o;
    o.hs256_secret = hs_secret;
    o.issuer = std::move(issuer);
    o.audience = std::move(audience);
    return make(std::move(o));
}

/// The token_errc of a refusal, nullopt when the token was accepted.
std::optional<token_errc> refusal(const jwt_verifier& v, std::string_view token,
                                  base::wall_time now = test_now()) {
    const auto r = v.verify(token, now);
    if (r)
        return std::nullopt;
    EXPECT_EQ(&r.err().code.category(), &token_category()) << r.err().describe();
    return static_cast<token_errc>(r.err().code.value());
}

std::string hs(std::string_view payload) {
    return mint(JWT_ALG_HS256, hs_secret, payload);
}

class JwtKeys : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        rsa_ = new key_pair(make_rsa_key());
        rsa2_ = new key_pair(make_rsa_key());
        ec_ = new key_pair(make_ec_key());
        ec2_ = new key_pair(make_ec_key());
    }
    static void TearDownTestSuite() {
        delete rsa_;
        delete rsa2_;
        delete ec_;
        delete ec2_;
    }
    static std::string rsa_jwk(const key_pair& k, std::string_view kid, std::string_view extra = "") {
        return "{\"kty\":\"RSA\",\"kid\":\"" + std::string(kid) + "\",\"n\":\"" + k.n + "\",\"e\":\"" + k.e +
               "\"" + std::string(extra) + "}";
    }
    static std::string ec_jwk(const key_pair& k, std::string_view kid, std::string_view extra = "") {
        return "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"" + std::string(kid) + "\",\"x\":\"" + k.x +
               "\",\"y\":\"" + k.y + "\"" + std::string(extra) + "}";
    }

    static key_pair* rsa_;
    static key_pair* rsa2_;
    static key_pair* ec_;
    static key_pair* ec2_;
};
key_pair* JwtKeys::rsa_ = nullptr;
key_pair* JwtKeys::rsa2_ = nullptr;
key_pair* JwtKeys::ec_ = nullptr;
key_pair* JwtKeys::ec2_ = nullptr;

// ---- create ---------------------------------------------------------------

TEST(JwtCreate, Hs256SecretMustBeAtLeast32Bytes) {
    jwt_options short_secret;
    short_secret.hs256_secret = std::string(31, 's');
    const auto refused = jwt_verifier::create(short_secret);
    ASSERT_FALSE(refused);
    EXPECT_THAT(refused.err().detail, HasSubstr("jwt_hs256_secret_file"));
    EXPECT_THAT(refused.err().detail, HasSubstr("32 bytes"));

    jwt_options enough;
    enough.hs256_secret = std::string(32, 's');
    EXPECT_TRUE(jwt_verifier::create(enough));
}

TEST(JwtCreate, NoKeyIsRefused) {
    const auto v = jwt_verifier::create(jwt_options{});
    ASSERT_FALSE(v);
    EXPECT_THAT(v.err().detail, HasSubstr("no JWT key"));
    EXPECT_FALSE(jwt_options{}.any_key());
}

TEST_F(JwtKeys, PublicKeyMustBeAPemPublicKey) {
    for (const std::string& bad : std::vector<std::string>{std::string("not a pem"), rsa_->private_pem,
                                                           std::string("-----BEGIN PUBLIC KEY-----\n"
                                                                       "AAAA\n"
                                                                       "-----END PUBLIC KEY-----\n")}) {
        jwt_options o;
        o.public_key_pem = bad;
        const auto v = jwt_verifier::create(o);
        ASSERT_FALSE(v) << bad;
        EXPECT_THAT(v.err().detail, HasSubstr("jwt_public_key_file"));
    }
    jwt_options good;
    good.public_key_pem = rsa_->public_pem;
    EXPECT_TRUE(jwt_verifier::create(good));
    good.public_key_pem = ec_->public_pem;
    EXPECT_TRUE(jwt_verifier::create(good));
}

TEST_F(JwtKeys, JwksMustHoldAUsableKey) {
    for (const std::string& bad :
         std::vector<std::string>{std::string("not json"), std::string("[]"), std::string("{\"keys\":{}}"),
                                  std::string("{\"keys\":[]}"), std::string("{\"keys\":[1,\"x\"]}"),
                                  "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}",
                                  "{\"keys\":[" + rsa_jwk(*rsa_, "enc", ",\"use\":\"enc\"") + "]}",
                                  "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" + ec_->x +
                                      "\",\"y\":\"" + ec_->y + "\"}]}",
                                  "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"AQAB\"}]}"}) {
        jwt_options o;
        o.jwks_json = bad;
        const auto v = jwt_verifier::create(o);
        ASSERT_FALSE(v) << bad;
        EXPECT_THAT(v.err().detail, HasSubstr("jwks_file"));
    }
    jwt_options good;
    good.jwks_json = "{\"keys\":[" + rsa_jwk(*rsa_, "r1", ",\"use\":\"sig\"") + "]}";
    EXPECT_TRUE(jwt_verifier::create(good));
}

TEST(JwtErrc, CategoryNamesEachReason) {
    EXPECT_STREQ(token_category().name(), "herald.token");
    EXPECT_EQ(make_error_code(token_errc::expired).message(), "expired");
    EXPECT_EQ(make_error_code(token_errc::unsupported_algorithm).message(), "unsupported_algorithm");
    EXPECT_EQ(make_error_code(token_errc::bad_claims).message(), "bad_claims");
    const std::error_code ec = token_errc::unknown_key;
    EXPECT_EQ(ec.message(), "unknown_key");
}

// ---- valid tokens ---------------------------------------------------------

TEST(JwtHs256, ValidTokenGivesItsClaims) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const auto c = v->verify(hs(claims()), test_now());
    ASSERT_TRUE(c) << c.err().describe();
    EXPECT_EQ(c->subject, "alice");
    EXPECT_EQ(c->tenant, "default");
    EXPECT_TRUE(c->audiences.empty());
    EXPECT_EQ(c->expires, at(now_s + 3600));
}

TEST(JwtHs256, TenantAndAudiencesAreTaken) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const auto list =
        v->verify(hs(claims("\"tenant\":\"fest-2024\",\"audiences\":[\"lineup.*\",\"news\"]")), test_now());
    ASSERT_TRUE(list) << list.err().describe();
    EXPECT_EQ(list->tenant, "fest-2024");
    EXPECT_THAT(list->audiences, ElementsAre("lineup.*", "news"));

    const auto single = v->verify(hs(claims("\"audiences\":\"news\"")), test_now());
    ASSERT_TRUE(single) << single.err().describe();
    EXPECT_THAT(single->audiences, ElementsAre("news"));

    const auto no_sub = v->verify(hs("{" + exp_in(60) + "}"), test_now());
    ASSERT_TRUE(no_sub) << no_sub.err().describe();
    EXPECT_EQ(no_sub->subject, "");
}

TEST_F(JwtKeys, Rs256FromAPem) {
    jwt_options o;
    o.public_key_pem = rsa_->public_pem;
    const auto v = make(o);
    ASSERT_TRUE(v);
    const auto c = v->verify(mint(JWT_ALG_RS256, rsa_->private_pem, claims("\"tenant\":\"t1\"")), test_now());
    ASSERT_TRUE(c) << c.err().describe();
    EXPECT_EQ(c->subject, "alice");
    EXPECT_EQ(c->tenant, "t1");
    // Another RSA key's signature does not verify.
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_RS256, rsa2_->private_pem, claims())), token_errc::bad_signature);
}

TEST_F(JwtKeys, Rs256SignedByAnotherIssuerLibrary) {
    jwt_options o;
    o.public_key_pem = rsa_->public_pem;
    const auto v = make(o);
    ASSERT_TRUE(v);
    const auto token = craft_signed("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims(), rsa_->private_pem);
    const auto c = v->verify(token, test_now());
    EXPECT_TRUE(c) << c.err().describe();
}

TEST_F(JwtKeys, Es256FromAPem) {
    jwt_options o;
    o.public_key_pem = ec_->public_pem;
    const auto v = make(o);
    ASSERT_TRUE(v);
    const auto c = v->verify(mint(JWT_ALG_ES256, ec_->private_pem, claims()), test_now());
    ASSERT_TRUE(c) << c.err().describe();
    EXPECT_EQ(c->subject, "alice");
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_ES256, ec2_->private_pem, claims())), token_errc::bad_signature);
}

TEST_F(JwtKeys, Es256SignedByAnotherIssuerLibrary) {
    // RFC 7518 3.4: an ES256 signature is R || S (64 bytes), which is what
    // identity providers and other JWT libraries send.
    jwt_options o;
    o.public_key_pem = ec_->public_pem;
    const auto v = make(o);
    ASSERT_TRUE(v);
    const auto token = craft_signed("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", claims(), ec_->private_pem);
    ASSERT_EQ(b64url_decode(token.substr(token.rfind('.') + 1)).size(), 64u);
    const auto c = v->verify(token, test_now());
    EXPECT_TRUE(c) << c.err().describe();
}

TEST_F(JwtKeys, JwksPicksTheKeyByKid) {
    jwt_options o;
    o.jwks_json = "{\"keys\":[" + rsa_jwk(*rsa_, "r1") + "," + ec_jwk(*ec_, "e1", ",\"use\":\"sig\"") + "," +
                  rsa_jwk(*rsa2_, "r2") + "," + ec_jwk(*ec2_, "enc-key", ",\"use\":\"enc\"") + "]}";
    const auto v = make(o);
    ASSERT_TRUE(v);

    const auto r1 = v->verify(mint(JWT_ALG_RS256, rsa_->private_pem, claims(), "r1"), test_now());
    EXPECT_TRUE(r1) << r1.err().describe();
    const auto r2 = v->verify(mint(JWT_ALG_RS256, rsa2_->private_pem, claims(), "r2"), test_now());
    EXPECT_TRUE(r2) << r2.err().describe();
    const auto e1 =
        v->verify(mint(JWT_ALG_ES256, ec_->private_pem, claims("\"tenant\":\"t\""), "e1"), test_now());
    ASSERT_TRUE(e1) << e1.err().describe();
    EXPECT_EQ(e1->tenant, "t");

    // The kid names the key: r1's kid on r2's signature does not verify.
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_RS256, rsa2_->private_pem, claims(), "r1")),
              token_errc::bad_signature);
    // An unknown kid, and a kid whose key is for encryption only.
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_RS256, rsa_->private_pem, claims(), "nope")), token_errc::unknown_key);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_ES256, ec2_->private_pem, claims(), "enc-key")),
              token_errc::unknown_key);
    // An RSA kid with an EC alg.
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_ES256, ec_->private_pem, claims(), "r1")), token_errc::unknown_key);
}

TEST_F(JwtKeys, JwksWithoutKidAndASingleKey) {
    jwt_options o;
    o.jwks_json =
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + ec_->x + "\",\"y\":\"" + ec_->y + "\"}]}";
    const auto v = make(o);
    ASSERT_TRUE(v);
    EXPECT_TRUE(v->verify(mint(JWT_ALG_ES256, ec_->private_pem, claims()), test_now()));
    EXPECT_TRUE(v->verify(mint(JWT_ALG_ES256, ec_->private_pem, claims(), "any"), test_now()));
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_ES256, ec2_->private_pem, claims())), token_errc::bad_signature);
}

// ---- time -----------------------------------------------------------------

TEST(JwtTime, ExpiredBeyondTheLeewayIsRefused) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, hs("{" + exp_in(-31) + "}")), token_errc::expired);
    EXPECT_EQ(refusal(*v, hs("{" + exp_in(-3600) + "}")), token_errc::expired);
    EXPECT_EQ(refusal(*v, hs("{\"exp\":0}")), token_errc::expired);
    // Within the 30 s leeway, and in the future: accepted.
    EXPECT_EQ(refusal(*v, hs("{" + exp_in(-29) + "}")), std::nullopt);
    EXPECT_EQ(refusal(*v, hs("{" + exp_in(1) + "}")), std::nullopt);
    // The same token expires as time passes.
    const auto token = hs("{" + exp_in(60) + "}");
    EXPECT_EQ(refusal(*v, token, at(now_s + 60)), std::nullopt);
    EXPECT_EQ(refusal(*v, token, at(now_s + 91)), token_errc::expired);
}

TEST(JwtTime, LeewayIsConfigurable) {
    jwt_options o;
    o.hs256_secret = hs_secret;
    o.leeway = std::chrono::seconds(0);
    const auto v = make(o);
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, hs("{" + exp_in(-1) + "}")), token_errc::expired);
    EXPECT_EQ(refusal(*v, hs("{" + exp_in(1) + "}")), std::nullopt);
}

TEST(JwtTime, NotYetValidIsRefused) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, hs(claims("\"nbf\":" + std::to_string(now_s + 31)))), token_errc::not_yet_valid);
    EXPECT_EQ(refusal(*v, hs(claims("\"nbf\":" + std::to_string(now_s + 3000)))), token_errc::not_yet_valid);
    EXPECT_EQ(refusal(*v, hs(claims("\"nbf\":" + std::to_string(now_s + 29)))), std::nullopt);
    EXPECT_EQ(refusal(*v, hs(claims("\"nbf\":" + std::to_string(now_s - 100)))), std::nullopt);
}

TEST(JwtTime, MissingExpiryIsRefused) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, hs("{\"sub\":\"alice\"}")), token_errc::missing_expiry);
    EXPECT_EQ(refusal(*v, hs("{}")), token_errc::missing_expiry);
    EXPECT_EQ(refusal(*v, hs("{\"sub\":\"alice\"," + exp_in(10) + "}")), std::nullopt);
}

TEST(JwtTime, ExpiryFarInTheFutureStaysInTheFuture) {
    // exp in 2286 (beyond what nanoseconds since 1970 hold in 64 bits, 2262):
    // the token is valid, and its expiry must not wrap into the past.
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const auto c = v->verify(hs("{\"exp\":10000000000}"), test_now());
    ASSERT_TRUE(c) << c.err().describe();
    EXPECT_GT(c->expires, test_now());
}

TEST(JwtTime, NonIntegerNotBeforeInTheFutureIsNotIgnored) {
    // RFC 7519 NumericDate may be fractional. A fractional nbf in the future
    // must not make the token valid now (refused as not_yet_valid or bad_claims).
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const auto r = refusal(*v, hs(claims("\"nbf\":" + std::to_string(now_s + 3000) + ".5")));
    ASSERT_TRUE(r.has_value()) << "a fractional nbf in the future was ignored";
    EXPECT_TRUE(*r == token_errc::not_yet_valid || *r == token_errc::bad_claims);
    // A string nbf is refused too, and a fractional exp in the future is fine (RFC 7519 NumericDate).
    EXPECT_EQ(refusal(*v, hs(claims("\"nbf\":\"tomorrow\""))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs("{\"exp\":" + std::to_string(now_s + 3600) + ".25}")), std::nullopt);
}

// ---- signatures -----------------------------------------------------------

TEST(JwtSignature, TamperedPayloadIsRefused) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const std::string good = hs(claims("\"tenant\":\"a\""));
    ASSERT_EQ(refusal(*v, good), std::nullopt);
    const auto d1 = good.find('.');
    const auto d2 = good.find('.', d1 + 1);
    const std::string forged =
        good.substr(0, d1 + 1) + b64url(claims("\"tenant\":\"b\"")) + good.substr(d2);  // same signature
    EXPECT_EQ(refusal(*v, forged), token_errc::bad_signature);
}

TEST(JwtSignature, AnotherSecretIsRefused) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_HS256, "fedcba9876543210fedcba9876543210", claims())),
              token_errc::bad_signature);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_HS256, hs_secret + "x", claims())), token_errc::bad_signature);
    // The hand-crafted token with the right secret passes: the craft is sound.
    EXPECT_EQ(refusal(*v, craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims(), hs_secret)), std::nullopt);
}

TEST(JwtSignature, MissingOrTruncatedSignatureIsRefused) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const std::string good = hs(claims());
    const std::string unsigned_token = good.substr(0, good.rfind('.') + 1);
    EXPECT_TRUE(refusal(*v, unsigned_token).has_value());
    EXPECT_EQ(refusal(*v, good.substr(0, good.size() - 4)), token_errc::bad_signature);
    EXPECT_EQ(refusal(*v, good), std::nullopt);
}

// ---- malformed ------------------------------------------------------------

TEST(JwtMalformed, NotThreePartsOrNotBase64JsonIsMalformed) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const std::string payload = b64url(claims());
    EXPECT_EQ(refusal(*v, ""), token_errc::malformed);
    EXPECT_EQ(refusal(*v, "abc"), token_errc::malformed);
    EXPECT_EQ(refusal(*v, "abc.def"), token_errc::malformed);
    EXPECT_EQ(refusal(*v, "!!!." + payload + ".sig"), token_errc::malformed);   // bad base64
    EXPECT_EQ(refusal(*v, "eyJ*." + payload + ".sig"), token_errc::malformed);  // bad base64
    EXPECT_EQ(refusal(*v, b64url("not json") + "." + payload + ".sig"), token_errc::malformed);
    EXPECT_EQ(refusal(*v, b64url("[\"HS256\"]") + "." + payload + ".sig"), token_errc::malformed);
    EXPECT_EQ(refusal(*v, b64url("{\"typ\":\"JWT\"}") + "." + payload + ".sig"), token_errc::malformed);
    EXPECT_EQ(refusal(*v, b64url("{\"alg\":256}") + "." + payload + ".sig"), token_errc::malformed);
    EXPECT_EQ(refusal(*v, "." + payload + ".sig"), token_errc::malformed);
}

TEST(JwtMalformed, TokenLongerThan8KiBIsMalformed) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const std::string big = hs(claims("\"pad\":\"" + std::string(7000, 'p') + "\""));
    ASSERT_GT(big.size(), 8192u);
    EXPECT_EQ(refusal(*v, big), token_errc::malformed);
    const std::string fits = hs(claims("\"pad\":\"" + std::string(5000, 'p') + "\""));
    ASSERT_LE(fits.size(), 8192u);
    EXPECT_EQ(refusal(*v, fits), std::nullopt);
}

// ---- algorithms -----------------------------------------------------------

TEST(JwtAlgorithm, AlgNoneIsRefused) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    // {"alg":"none","typ":"JWT"} . claims . (empty signature)
    const std::string none = craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims(), "");
    ASSERT_EQ(none.substr(0, 3), "eyJ");
    ASSERT_EQ(none.back(), '.');
    EXPECT_EQ(refusal(*v, none), token_errc::unsupported_algorithm);
    EXPECT_EQ(refusal(*v, craft("{\"alg\":\"none\"}", claims(), "")), token_errc::unsupported_algorithm);
    EXPECT_EQ(refusal(*v, craft("{\"alg\":\"None\"}", claims(), "")), token_errc::unsupported_algorithm);
    EXPECT_EQ(refusal(*v, craft("{\"alg\":\"\"}", claims(), "")), token_errc::unsupported_algorithm);
    // Even "signed" with the secret, alg none stays refused.
    EXPECT_EQ(refusal(*v, craft("{\"alg\":\"none\"}", claims(), hs_secret)),
              token_errc::unsupported_algorithm);
}

TEST(JwtAlgorithm, OtherHmacAlgorithmsAreRefused) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_HS512, hs_secret, claims())), token_errc::unsupported_algorithm);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_HS384, hs_secret, claims())), token_errc::unsupported_algorithm);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_HS256, hs_secret, claims())), std::nullopt);
}

TEST_F(JwtKeys, HmacSignedWithTheRsaPublicKeyIsRefused) {
    // Algorithm confusion: the attacker knows the public key and signs an
    // HS256 token with its PEM bytes as the HMAC secret.
    jwt_options o;
    o.public_key_pem = rsa_->public_pem;
    const auto v = make(o);
    ASSERT_TRUE(v);
    const std::string crafted = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims(), rsa_->public_pem);
    EXPECT_EQ(refusal(*v, crafted), token_errc::unknown_key);
    const std::string minted = mint(JWT_ALG_HS256, rsa_->public_pem, claims());
    EXPECT_EQ(refusal(*v, minted), token_errc::unknown_key);
    // The same verifier accepts the genuine RS256 token.
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_RS256, rsa_->private_pem, claims())), std::nullopt);

    // With a JWKS holding the same key, likewise.
    jwt_options j;
    j.jwks_json = "{\"keys\":[" + rsa_jwk(*rsa_, "r1") + "]}";
    const auto vj = make(j);
    ASSERT_TRUE(vj);
    EXPECT_EQ(refusal(*vj, craft("{\"alg\":\"HS256\",\"kid\":\"r1\"}", claims(), rsa_->public_pem)),
              token_errc::unknown_key);
}

TEST_F(JwtKeys, HmacSignedWithThePublicKeyIsRefusedEvenWithAnHsKeyToo) {
    jwt_options o;
    o.hs256_secret = hs_secret;
    o.public_key_pem = rsa_->public_pem;
    const auto v = make(o);
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, craft("{\"alg\":\"HS256\"}", claims(), rsa_->public_pem)),
              token_errc::bad_signature);
    EXPECT_EQ(refusal(*v, hs(claims())), std::nullopt);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_RS256, rsa_->private_pem, claims())), std::nullopt);
}

TEST_F(JwtKeys, AsymmetricTokenAgainstAnHsOnlyVerifierIsUnknownKey) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_RS256, rsa_->private_pem, claims())), token_errc::unknown_key);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_ES256, ec_->private_pem, claims())), token_errc::unknown_key);
}

TEST_F(JwtKeys, EsTokenAgainstAnRsaKeyIsUnknownKey) {
    jwt_options o;
    o.public_key_pem = rsa_->public_pem;
    const auto v = make(o);
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, mint(JWT_ALG_ES256, ec_->private_pem, claims())), token_errc::unknown_key);
    EXPECT_EQ(refusal(*v, hs(claims())), token_errc::unknown_key);
}

// ---- issuer, audience -----------------------------------------------------

TEST(JwtIssuer, ConfiguredIssuerMustMatch) {
    const auto v = hs_verifier("https://id.example");
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, hs(claims("\"iss\":\"https://id.example\""))), std::nullopt);
    EXPECT_EQ(refusal(*v, hs(claims("\"iss\":\"https://evil.example\""))), token_errc::wrong_issuer);
    EXPECT_EQ(refusal(*v, hs(claims("\"iss\":\"https://id.example/\""))), token_errc::wrong_issuer);
    EXPECT_EQ(refusal(*v, hs(claims())), token_errc::wrong_issuer);
    // Without a configured issuer any iss is fine.
    const auto any = hs_verifier();
    ASSERT_TRUE(any);
    EXPECT_EQ(refusal(*any, hs(claims("\"iss\":\"https://evil.example\""))), std::nullopt);
}

TEST(JwtAudience, ConfiguredAudienceMustBeInAud) {
    const auto v = hs_verifier("", "herald");
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, hs(claims("\"aud\":\"herald\""))), std::nullopt);
    EXPECT_EQ(refusal(*v, hs(claims("\"aud\":[\"other\",\"herald\"]"))), std::nullopt);
    EXPECT_EQ(refusal(*v, hs(claims("\"aud\":\"other\""))), token_errc::wrong_audience);
    EXPECT_EQ(refusal(*v, hs(claims("\"aud\":[\"other\",\"heraldx\"]"))), token_errc::wrong_audience);
    EXPECT_EQ(refusal(*v, hs(claims("\"aud\":[]"))), token_errc::wrong_audience);
    EXPECT_EQ(refusal(*v, hs(claims("\"aud\":42"))), token_errc::wrong_audience);
    EXPECT_EQ(refusal(*v, hs(claims())), token_errc::wrong_audience);
    const auto any = hs_verifier();
    ASSERT_TRUE(any);
    EXPECT_EQ(refusal(*any, hs(claims("\"aud\":\"other\""))), std::nullopt);
}

// ---- claims ---------------------------------------------------------------

TEST(JwtClaims, TenantMustBeAValidTenantString) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, hs(claims("\"tenant\":\"Fest Main\""))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"tenant\":\"\""))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"tenant\":\"*\""))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"tenant\":42"))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"tenant\":[\"a\"]"))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"tenant\":\"fest\""))), std::nullopt);
}

TEST(JwtClaims, AudiencesMustBeStrings) {
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    EXPECT_EQ(refusal(*v, hs(claims("\"audiences\":[1,2]"))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"audiences\":[\"a\",null]"))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"audiences\":{\"a\":1}"))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"audiences\":7"))), token_errc::bad_claims);
    EXPECT_EQ(refusal(*v, hs(claims("\"audiences\":[\"a\",\"b.*\"]"))), std::nullopt);
}

}  // namespace
}  // namespace herald::security

namespace herald::security {
namespace {

TEST(JwtCache, ARememberedTokenStillExpiresAndAnotherTokenIsStillChecked) {
    // Verified tokens are remembered; that must neither outlive their exp
    // nor let a different token (same claims, other signature) through.
    const auto v = hs_verifier();
    ASSERT_TRUE(v);
    const std::string token = hs("{" + exp_in(60) + "}");
    EXPECT_EQ(refusal(*v, token), std::nullopt);
    EXPECT_EQ(refusal(*v, token), std::nullopt);  // from the cache
    EXPECT_EQ(refusal(*v, token, at(now_s + 120)), token_errc::expired);
    std::string forged = token;
    char& c = forged[forged.size() - 10];  // inside the signature, all of its bits count
    c = c == 'A' ? 'B' : 'A';
    EXPECT_EQ(refusal(*v, forged), token_errc::bad_signature);
}

}  // namespace
}  // namespace herald::security
