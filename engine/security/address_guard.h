// Where outbound delivery may connect. A subscriber chooses their webhook
// URL, so without a guard Herald would connect to whatever it names — the
// ops port on 127.0.0.1, a cloud metadata service on 169.254.169.254, a
// database on the private network — on every broadcast (SSRF). The guard
// refuses loopback, private (RFC 1918, fc00::/7), link-local (169.254/16,
// fe80::/10), shared (100.64/10), multicast, broadcast, unspecified and
// reserved addresses, IPv4-mapped and NAT64-free forms included, unless the
// address lies in a network the operator allowed (--outbound-allowed-networks).
//
// It is asked at every connect, after DNS resolution, so a name that
// resolves (or rebinds) to a refused address is caught; and at subscribe
// time for literal addresses, so an operator hears of it at once. Pure: the
// classifier is unit-tested over every range, and no test ever has to send
// traffic to a refused address to prove the guard.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace herald::security {

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as ::ffff:a.b.c.d).
struct ip_address {
    std::array<std::uint8_t, 16> bytes{};
    bool v4 = false;

    /// Parses dotted IPv4 or textual IPv6 (brackets allowed); nullopt otherwise.
    [[nodiscard]] static std::optional<ip_address> parse(std::string_view text) noexcept;
};

/// A CIDR network, "10.0.0.0/8" or "fd00::/8" (a bare address is /32 or /128).
struct ip_network {
    ip_address base;
    unsigned prefix = 0;  // over the 16-byte form (IPv4 /8 is stored as /104)

    [[nodiscard]] static std::optional<ip_network> parse(std::string_view text) noexcept;
    [[nodiscard]] bool contains(const ip_address& a) const noexcept;
};

/// The rule an address falls under; `none` for a public unicast address.
enum class address_class : std::uint8_t {
    none,
    loopback,
    private_network,
    link_local,
    shared_address_space,
    multicast,
    broadcast,
    unspecified,
    reserved,
};

/// The name of a rule, as shown in refusals ("loopback", "private_network", ...).
[[nodiscard]] std::string_view class_name(address_class c) noexcept;

/// Which rule refuses `a` by default (IPv4-mapped and IPv4-compatible IPv6
/// forms are classified as the IPv4 address they carry).
[[nodiscard]] address_class classify(const ip_address& a) noexcept;

class address_guard {
  public:
    /// Parses a comma-separated CIDR list; the error names the bad entry.
    [[nodiscard]] static base::result<address_guard> from_list(std::string_view allowed_networks);

    /// Why connecting to `a` is refused, or nullopt when it is allowed.
    [[nodiscard]] std::optional<address_class> refuses(const ip_address& a) const noexcept;
    /// For a host as written in a URL: the refusal of a literal address
    /// that is refused, nullopt for an allowed one or a name (names are
    /// checked after resolution, at connect).
    [[nodiscard]] std::optional<address_class> refuses_literal(std::string_view host) const noexcept;

    [[nodiscard]] const std::vector<ip_network>& allowed() const noexcept { return allowed_; }

  private:
    std::vector<ip_network> allowed_;
};

}  // namespace herald::security
