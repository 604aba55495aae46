// The verdict on a live handshake (WebSocket or SSE), before the upgrade:
//   * Origin: a browser's Origin must be in --allowed-origins ("*" allows
//     any), or — without that option — name the host the request was sent
//     to (same-host only). Clients that send no Origin (apps, curl) pass.
//   * Token (?token= or Authorization: Bearer): with token checking on
//     (any JWT key configured) every audience needs a token that grants it
//     — an `audiences` claim entry equal to it or a `prefix*` matching it —
//     unless it matches --public-audiences. Without any key every audience
//     is public.
//   * Tenant: the token's `tenant`; without a token `?tenant=` (public
//     audiences only), default "default". A connection hears only its
//     tenant's announcements.
// 401 for a missing, malformed, expired or badly signed token, 403 for an
// origin or audience not allowed; the reason is one line, safe to show.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "security/jwt_verifier.h"

namespace herald::security {

/// What the handshake offers.
struct handshake_request {
    std::string_view token;         // "" = none
    std::string_view origin;        // "" = no Origin header
    std::string_view host;          // the Host header
    std::string_view tenant_param;  // ?tenant=, "" = none
    std::span<const std::string> audiences;
};

/// The verdict: 200 to go on, else the status and a one-line reason.
struct admission {
    int status = 200;
    std::string reason;
    std::string tenant = "default";
    base::wall_time expires{};  // the token's exp; epoch = no token, never
    /// What was refused: "origin", "tenant", "audience", "missing_token",
    /// "expired" or "invalid_token".
    std::string_view refusal;
};

struct live_access_options {
    std::unique_ptr<jwt_verifier> verifier;  // nullptr: every audience is public
    std::vector<std::string> public_audiences;
    std::vector<std::string> allowed_origins;  // empty: same-host origins only
};

class live_access {
  public:
    explicit live_access(live_access_options options);

    [[nodiscard]] admission admit(const handshake_request& req, base::wall_time now) const;
    /// Whether a browser from `origin` may connect to `host` (for CORS answers too).
    [[nodiscard]] bool origin_allowed(std::string_view origin, std::string_view host) const noexcept;
    [[nodiscard]] bool tokens_required() const noexcept { return options_.verifier != nullptr; }

  private:
    live_access_options options_;
};

/// The host of an Origin ("https://fest.example:8443" -> "fest.example"),
/// or of a Host header ("fest.example:8080" -> "fest.example"); "" if none.
[[nodiscard]] std::string_view origin_host(std::string_view origin) noexcept;
[[nodiscard]] std::string_view host_name(std::string_view host_header) noexcept;

}  // namespace herald::security
