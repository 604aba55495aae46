// libFuzzer: everything engine/security reads from outside. The input goes
// to bearer_token, pattern_matches (split at the first newline, or in
// half), ip_address / ip_network parsing and address_guard::from_list,
// admin_keys::parse, and jwt_verifier::verify: once as the token itself,
// and once as the payload of an HS256 token signed here with the
// verifier's secret, so the claim checks behind the signature are reached
// too. Nothing may crash, and the few invariants below must hold.
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "security/address_guard.h"
#include "security/admin_keys.h"
#include "security/credentials.h"
#include "security/jwt_verifier.h"

namespace {

using namespace herald::security;

constexpr std::string_view secret = "fuzz-fuzz-fuzz-fuzz-fuzz-secret!";  // 32 bytes

const jwt_verifier& verifier() {
    static const auto v = [] {
        jwt_options o;
        o.hs256_secret = std::string(secret);
        auto r = jwt_verifier::create(std::move(o));
        if (!r)
            std::abort();
        return std::move(r.value());
    }();
    return *v;
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

std::string signed_token(std::string_view payload_json) {
    const std::string input = b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}") + "." + b64url(payload_json);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

void check(bool invariant) {
    if (!invariant)
        __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    if (const auto token = bearer_token(text)) {
        check(!token->empty());
        check(token->find(' ') == std::string_view::npos);
        check(token->data() >= text.data() && token->data() + token->size() <= text.data() + text.size());
    }

    const auto split = text.find('\n');
    const std::size_t cut = split == std::string_view::npos ? text.size() / 2 : split;
    const auto pattern = text.substr(0, cut);
    const auto audience = text.substr(std::min(cut + 1, text.size()));
    const bool matched = pattern_matches(pattern, audience);
    if (pattern == audience)
        check(matched);
    check(pattern_matches("*", audience));

    if (const auto a = ip_address::parse(text)) {
        const auto c = classify(*a);
        check(!class_name(c).empty());
        const auto g = address_guard::from_list("");
        check(g.has_value() &&
              g->refuses(*a) == (c == address_class::none ? std::nullopt : std::optional(c)));
    }
    if (const auto n = ip_network::parse(text)) {
        check(n->prefix <= 128);
        check(n->contains(n->base));
    }
    if (const auto g = address_guard::from_list(text)) {
        for (const auto& n : g->allowed()) {
            check(n.contains(n.base));
            check(!g->refuses(n.base).has_value());
        }
    }
    (void)address_guard::from_list("").value().refuses_literal(text);

    if (const auto keys = admin_keys::parse(text, "fuzz")) {
        check(keys->size() > 0);
        (void)keys->authenticate(text);
    }

    const auto now = herald::base::wall_time(std::chrono::seconds(1'700'000'000));
    const auto& v = verifier();
    if (const auto claims = v.verify(text, now))
        check(is_valid_tenant(claims->tenant));
    if (size <= 4096) {
        if (const auto claims = v.verify(signed_token(text), now))
            check(is_valid_tenant(claims->tenant));
    }
    return 0;
}
