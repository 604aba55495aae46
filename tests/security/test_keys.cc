#include "test_keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace herald::security::testing {
namespace {

struct pkey_free {
    void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

void check(bool ok, const char* what) {
    if (!ok)
        throw std::runtime_error(std::string("OpenSSL: ") + what);
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::string pem_of(EVP_PKEY* key, bool private_key) {
    BIO* bio = BIO_new(BIO_s_mem());
    check(bio != nullptr, "BIO_new");
    const int rc = private_key ? PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr)
                               : PEM_write_bio_PUBKEY(bio, key);
    std::string out = rc == 1 ? bio_text(bio) : std::string();
    BIO_free(bio);
    check(rc == 1, "PEM_write_bio");
    return out;
}

/// A big-endian BIGNUM parameter, left-padded to `width` bytes (0: minimal).
std::string bn_param(EVP_PKEY* key, const char* name, int width) {
    BIGNUM* bn = nullptr;
    check(EVP_PKEY_get_bn_param(key, name, &bn) == 1, name);
    std::string out(static_cast<std::size_t>(width > 0 ? width : BN_num_bytes(bn)), '\0');
    const int n = width > 0 ? BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), width)
                            : BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    check(n == static_cast<int>(out.size()), "BN_bn2bin");
    return out;
}

}  // namespace

key_pair make_rsa_key() {
    pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048)));
    check(key != nullptr, "RSA keygen");
    key_pair out;
    out.private_pem = pem_of(key.get(), true);
    out.public_pem = pem_of(key.get(), false);
    out.n = b64url(bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, 0));
    out.e = b64url(bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E, 0));
    return out;
}

key_pair make_ec_key() {
    pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    check(key != nullptr, "EC keygen");
    key_pair out;
    out.private_pem = pem_of(key.get(), true);
    out.public_pem = pem_of(key.get(), false);
    out.x = b64url(bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32));
    out.y = b64url(bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    return out;
}

std::string b64url(std::string_view bytes) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : bytes) {
        acc = (acc << 8) | static_cast<unsigned char>(c);
        bits += 8;
        while (bits >= 6) {
            out += alphabet[(acc >> (bits - 6)) & 0x3f];
            bits -= 6;
        }
    }
    if (bits > 0)
        out += alphabet[(acc << (6 - bits)) & 0x3f];
    return out;
}

std::string b64url_decode(std::string_view text) {
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : text) {
        int v;
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
        else
            throw std::invalid_argument("not base64url");
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            out += static_cast<char>((acc >> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    check(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len) != nullptr,
          "HMAC");
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string mint(jwt_alg_t alg, std::string_view key, std::string_view grants_json, std::string_view kid) {
    jwt_t* jwt = nullptr;
    check(jwt_new(&jwt) == 0, "jwt_new");
    std::unique_ptr<jwt_t, decltype(&jwt_free)> owner(jwt, &jwt_free);
    if (jwt_add_grants_json(jwt, std::string(grants_json).c_str()) != 0)
        throw std::runtime_error("jwt_add_grants_json: " + std::string(grants_json));
    if (!kid.empty())
        check(jwt_add_header(jwt, "kid", std::string(kid).c_str()) == 0, "jwt_add_header");
    check(jwt_set_alg(jwt, alg, reinterpret_cast<const unsigned char*>(key.data()),
                      static_cast<int>(key.size())) == 0,
          "jwt_set_alg");
    char* text = jwt_encode_str(jwt);
    check(text != nullptr, "jwt_encode_str");
    std::string out(text);
    std::free(text);
    return out;
}

std::string craft(std::string_view header_json, std::string_view payload_json, std::string_view secret) {
    const std::string signing_input = b64url(header_json) + "." + b64url(payload_json);
    return signing_input + "." +
           (secret.empty() ? std::string() : b64url(hmac_sha256(secret, signing_input)));
}

std::string craft_signed(std::string_view header_json, std::string_view payload_json,
                         std::string_view private_pem) {
    BIO* bio = BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size()));
    pkey_ptr key(bio != nullptr ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr);
    BIO_free(bio);
    check(key != nullptr, "PEM_read_bio_PrivateKey");
    const std::string signing_input = b64url(header_json) + "." + b64url(payload_json);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    check(ctx != nullptr, "EVP_MD_CTX_new");
    std::size_t len = 0;
    bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
              EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(signing_input.data()),
                             signing_input.size()) == 1;
    std::string sig(len, '\0');
    ok = ok && EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                              reinterpret_cast<const unsigned char*>(signing_input.data()),
                              signing_input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    check(ok, "EVP_DigestSign");
    sig.resize(len);
    if (EVP_PKEY_is_a(key.get(), "EC")) {
        const auto* der = reinterpret_cast<const unsigned char*>(sig.data());
        ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size()));
        check(ecdsa != nullptr, "d2i_ECDSA_SIG");
        std::string raw(64, '\0');
        const BIGNUM* r = nullptr;
        const BIGNUM* s = nullptr;
        ECDSA_SIG_get0(ecdsa, &r, &s);
        BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32);
        BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
        ECDSA_SIG_free(ecdsa);
        sig = raw;
    }
    return signing_input + "." + b64url(sig);
}

}  // namespace herald::security::testing
