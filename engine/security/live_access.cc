#include "security/live_access.h"

#include <algorithm>
#include <cctype>

#include "security/admin_keys.h"
#include "security/credentials.h"

namespace herald::security {

std::string_view host_name(std::string_view host) noexcept {
    if (!host.empty() && host.front() == '[') {
        const auto close = host.find(']');
        return close == std::string_view::npos ? std::string_view() : host.substr(1, close - 1);
    }
    return host.substr(0, host.find(':'));
}

std::string_view origin_host(std::string_view origin) noexcept {
    const auto scheme = origin.find("://");
    if (scheme == std::string_view::npos)
        return {};
    std::string_view rest = origin.substr(scheme + 3);
    rest = rest.substr(0, rest.find('/'));
    return host_name(rest);
}

live_access::live_access(live_access_options options) : options_(std::move(options)) {}

bool live_access::origin_allowed(std::string_view origin, std::string_view host) const noexcept {
    if (origin.empty())
        return true;  // not a browser
    if (!options_.allowed_origins.empty()) {
        return std::any_of(options_.allowed_origins.begin(), options_.allowed_origins.end(),
                           [&](const std::string& o) { return o == "*" || o == origin; });
    }
    // Host names compare case-insensitively.
    const auto from = origin_host(origin);
    const auto to = host_name(host);
    return !from.empty() && from.size() == to.size() &&
           std::equal(from.begin(), from.end(), to.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           });
}

admission live_access::admit(const handshake_request& req, base::wall_time now) const {
    admission out;
    if (!origin_allowed(req.origin, req.host)) {
        out.status = 403;
        out.reason = "origin not allowed";
        out.refusal = "origin";
        return out;
    }
    std::optional<token_claims> claims;
    if (!req.token.empty() && options_.verifier) {
        auto verified = options_.verifier->verify(req.token, now);
        if (!verified) {
            out.status = 401;
            out.reason = "token refused: " + verified.err().code.message();
            out.refusal = verified.err().code == token_errc::expired ? "expired" : "invalid_token";
            return out;
        }
        claims = std::move(*verified);
        out.tenant = claims->tenant;
        // A token accepted only thanks to the clock tolerance (already past
        // its exp here) keeps that tolerance, or it would be closed at once
        // and its client would reconnect in a loop; any other closes at exp.
        out.expires = claims->expires > now ? claims->expires : claims->expires + options_.verifier->leeway();
        if (!req.tenant_param.empty() && req.tenant_param != claims->tenant) {
            out.status = 403;
            out.reason = "tenant does not match the token's";
            out.refusal = "tenant";
            return out;
        }
    } else if (!req.tenant_param.empty()) {
        if (!is_valid_tenant(req.tenant_param)) {
            out.status = 400;
            out.reason = "tenant must be 1..64 characters of [a-z0-9._-]";
            out.refusal = "tenant";
            return out;
        }
        out.tenant = std::string(req.tenant_param);
    }
    if (!options_.verifier)
        return out;  // no key configured: every audience is public
    for (const auto& audience : req.audiences) {
        const auto matches = [&](const std::string& p) { return pattern_matches(p, audience); };
        if (std::any_of(options_.public_audiences.begin(), options_.public_audiences.end(), matches))
            continue;
        if (!claims) {
            out.status = 401;
            out.reason = "a token is required for audience " + audience;
            out.refusal = "missing_token";
            return out;
        }
        if (std::none_of(claims->audiences.begin(), claims->audiences.end(), matches)) {
            out.status = 403;
            out.reason = "audience " + audience + " is not granted by the token";
            out.refusal = "audience";
            return out;
        }
    }
    // A public-only connection without a token may name its tenant; with a
    // token the token's tenant holds (checked above).
    return out;
}

}  // namespace herald::security
