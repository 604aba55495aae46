// Credentials of the ops API. Each key has a name (for logs), a role and a
// tenant:
//   admin      everything, for its tenant or all ("*");
//   publisher  announce, read broadcasts and subscribers, manage subscribers
//              — of its tenant;
//   viewer     read-only.
// The keys file (--admin-keys-file) holds `NAME ROLE TENANT sha256:<hex>`
// per line, the hex being SHA-256 of the key, so the file holds nothing an
// attacker could present. Without it heraldd generates one random admin
// key on first start into <data_dir>/admin.key (mode 0600, directory 0700),
// which the herald CLI reads on the same machine.
//
// A presented key is hashed and compared with every stored digest in
// constant time (CRYPTO_memcmp, no early exit), so response times tell
// nothing about which key came close.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace herald::security {

enum class role : std::uint8_t { viewer = 1, publisher = 2, admin = 3 };

[[nodiscard]] std::string_view role_name(role r) noexcept;

/// Who made a request, as far as the ops API is concerned.
struct principal {
    std::string name;
    security::role role = role::viewer;
    std::string tenant;  // "*": every tenant

    [[nodiscard]] bool all_tenants() const noexcept { return tenant == "*"; }
    /// Whether this principal may see or act on `of_tenant`'s data.
    [[nodiscard]] bool may_act_for(std::string_view of_tenant) const noexcept {
        return all_tenants() || tenant == of_tenant;
    }
};

class admin_keys {
  public:
    /// Parses the keys file's text; errors name `origin`:line and the field.
    [[nodiscard]] static base::result<admin_keys> parse(std::string_view text, std::string_view origin);
    /// Reads and parses a keys file.
    [[nodiscard]] static base::result<admin_keys> load_file(const std::string& path);
    /// The generated admin key of `data_dir`: reads `<data_dir>/admin.key`,
    /// or creates it (random, mode 0600, the directory 0700). `created`
    /// says which. The key itself never leaves this function but as a digest.
    [[nodiscard]] static base::result<admin_keys> generated(const std::string& data_dir, bool& created);

    /// The principal whose key this is, if any.
    [[nodiscard]] std::optional<principal> authenticate(std::string_view presented_key) const;

    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

    /// "sha256:<hex>" of a key: what a keys file line holds.
    [[nodiscard]] static std::string digest_text(std::string_view key);
    /// A new random key: "herald_" and 43 base64url characters (256 bits).
    [[nodiscard]] static std::string new_key();

  private:
    struct entry {
        principal who;
        std::array<unsigned char, 32> digest{};
    };
    std::vector<entry> entries_;
};

/// The syntax of a tenant name: 1..64 characters of [a-z0-9._-].
[[nodiscard]] bool is_valid_tenant(std::string_view tenant) noexcept;

}  // namespace herald::security
