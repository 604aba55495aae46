#include "security/admin_keys.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace herald::security {
namespace {

using digest = std::array<unsigned char, 32>;

digest sha256(std::string_view data) {
    digest out{};
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
    return out;
}

base::failure invalid(std::string detail) {
    return base::failure(std::make_error_code(std::errc::invalid_argument), std::move(detail));
}

bool name_ok(std::string_view name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
}

std::optional<digest> parse_digest(std::string_view text) {
    constexpr std::string_view prefix = "sha256:";
    if (text.substr(0, prefix.size()) != prefix || text.size() != prefix.size() + 64)
        return std::nullopt;
    digest out{};
    for (std::size_t i = 0; i < 32; ++i) {
        const auto nibble = [](char c) -> int {
            if (c >= '0' && c <= '9')
                return c - '0';
            if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
            if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
            return -1;
        };
        const int hi = nibble(text[prefix.size() + 2 * i]);
        const int lo = nibble(text[prefix.size() + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        out[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    return out;
}

std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < line.size()) {
        while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
        const std::size_t start = pos;
        while (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') ++pos;
        if (pos > start)
            out.push_back(line.substr(start, pos - start));
    }
    return out;
}

}  // namespace

std::string_view role_name(role r) noexcept {
    switch (r) {
        case role::admin:
            return "admin";
        case role::publisher:
            return "publisher";
        case role::viewer:
            return "viewer";
    }
    return "viewer";
}

bool is_valid_tenant(std::string_view tenant) noexcept {
    return !tenant.empty() && tenant.size() <= 64 && std::all_of(tenant.begin(), tenant.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    });
}

base::result<admin_keys> admin_keys::parse(std::string_view text, std::string_view origin) {
    admin_keys keys;
    std::size_t number = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t end = std::min(text.find('\n', pos), text.size());
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++number;
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        const auto f = fields(line);
        if (f.empty() || f[0].front() == '#')
            continue;
        const std::string where = std::string(origin) + ":" + std::to_string(number) + ": ";
        if (f.size() != 4)
            return invalid(where + "expected NAME ROLE TENANT sha256:<hex>, got " + std::to_string(f.size()) +
                           " field(s)");
        entry e;
        if (!name_ok(f[0]))
            return invalid(where + "NAME must be 1..64 characters of [A-Za-z0-9._-]");
        e.who.name = std::string(f[0]);
        if (f[1] == "admin")
            e.who.role = role::admin;
        else if (f[1] == "publisher")
            e.who.role = role::publisher;
        else if (f[1] == "viewer")
            e.who.role = role::viewer;
        else
            return invalid(where + "ROLE must be admin, publisher or viewer, got \"" + std::string(f[1]) +
                           "\"");
        if (f[2] != "*" && !is_valid_tenant(f[2]))
            return invalid(where + "TENANT must be * or 1..64 characters of [a-z0-9._-]");
        e.who.tenant = std::string(f[2]);
        const auto d = parse_digest(f[3]);
        if (!d)
            return invalid(
                where +
                "SECRET must be sha256: and 64 hex digits of the key's SHA-256 (see herald keys new)");
        e.digest = *d;
        for (const auto& other : keys.entries_) {
            if (other.who.name == e.who.name)
                return invalid(where + "key name \"" + e.who.name + "\" is used twice");
        }
        keys.entries_.push_back(std::move(e));
    }
    if (keys.entries_.empty())
        return invalid(std::string(origin) + ": holds no key");
    return keys;
}

base::result<admin_keys> admin_keys::load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return invalid("cannot read \"" + path + "\": " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    return parse(text.str(), path);
}

std::string admin_keys::new_key() {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        throw std::runtime_error("no random bytes from OpenSSL");
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out = "herald_";
    std::uint32_t acc = 0;
    int bits = 0;
    for (const unsigned char b : bytes) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 6) {
            out += alphabet[(acc >> (bits - 6)) & 0x3f];
            bits -= 6;
        }
    }
    if (bits > 0)
        out += alphabet[(acc << (6 - bits)) & 0x3f];
    OPENSSL_cleanse(bytes, sizeof bytes);
    return out;
}

std::string admin_keys::digest_text(std::string_view key) {
    const digest d = sha256(key);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "sha256:";
    for (const unsigned char b : d) {
        out += hex[b >> 4];
        out += hex[b & 0xf];
    }
    return out;
}

base::result<admin_keys> admin_keys::generated(const std::string& data_dir, bool& created) {
    created = false;
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec)
        return base::failure(ec, "cannot create data directory " + data_dir);
    ::chmod(data_dir.c_str(), 0700);  // the key (and the registry) are nobody else's business
    const std::string path = (std::filesystem::path(data_dir) / "admin.key").string();
    std::string key;
    if (std::ifstream in(path); in) {
        std::getline(in, key);
        while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
        if (key.empty())
            return invalid(path + " is empty: remove it to have a new admin key generated");
    } else {
        key = new_key();
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return base::failure(std::error_code(errno, std::generic_category()), "cannot create " + path);
        const std::string line = key + "\n";
        const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
        ::close(fd);
        if (!written)
            return base::failure(std::make_error_code(std::errc::io_error), "cannot write " + path);
        created = true;
    }
    admin_keys keys;
    entry e;
    e.who = principal{"admin", role::admin, "*"};
    e.digest = sha256(key);
    OPENSSL_cleanse(key.data(), key.size());
    keys.entries_.push_back(e);
    return keys;
}

std::optional<principal> admin_keys::authenticate(std::string_view presented_key) const {
    const digest d = sha256(presented_key);
    const entry* found = nullptr;
    for (const auto& e : entries_) {
        // Every digest is compared, whatever matched before.
        const bool same = CRYPTO_memcmp(e.digest.data(), d.data(), d.size()) == 0;
        if (same && found == nullptr)
            found = &e;
    }
    if (found == nullptr)
        return std::nullopt;
    return found->who;
}

}  // namespace herald::security
