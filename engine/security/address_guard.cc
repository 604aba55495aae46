#include "security/address_guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace herald::security {
namespace {

constexpr std::array<std::uint8_t, 12> v4_mapped_prefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

address_class classify_v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) noexcept {
    if (a == 127)
        return address_class::loopback;
    if (a == 10 || (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168))
        return address_class::private_network;
    if (a == 169 && b == 254)
        return address_class::link_local;
    if (a == 100 && (b & 0xc0) == 64)
        return address_class::shared_address_space;
    if (a >= 224 && a <= 239)
        return address_class::multicast;
    if (a == 255 && b == 255 && c == 255 && d == 255)
        return address_class::broadcast;
    if (a == 0)
        return address_class::unspecified;  // "this network" (0/8), 0.0.0.0 included
    if (a >= 240)
        return address_class::reserved;
    if (a == 192 && b == 0 && c == 0)
        return address_class::reserved;  // IETF protocol assignments
    if ((a == 192 && b == 0 && c == 2) || (a == 198 && b == 51 && c == 100) ||
        (a == 203 && b == 0 && c == 113))
        return address_class::reserved;  // documentation
    if (a == 198 && (b & 0xfe) == 18)
        return address_class::reserved;  // benchmarking 198.18/15
    return address_class::none;
}

}  // namespace

std::optional<ip_address> ip_address::parse(std::string_view text) noexcept {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
        text = text.substr(1, text.size() - 2);
    if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos)
        return std::nullopt;
    char buf[64];
    std::copy(text.begin(), text.end(), buf);
    buf[text.size()] = '\0';
    ip_address out;
    in_addr v4{};
    if (::inet_pton(AF_INET, buf, &v4) == 1) {
        std::copy(v4_mapped_prefix.begin(), v4_mapped_prefix.end(), out.bytes.begin());
        std::memcpy(out.bytes.data() + 12, &v4, 4);
        out.v4 = true;
        return out;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, buf, &v6) == 1) {
        std::memcpy(out.bytes.data(), &v6, 16);
        return out;
    }
    return std::nullopt;
}

std::optional<ip_network> ip_network::parse(std::string_view text) noexcept {
    const auto slash = text.find('/');
    auto base = ip_address::parse(text.substr(0, slash));
    if (!base)
        return std::nullopt;
    ip_network n;
    n.base = *base;
    const unsigned width = base->v4 ? 32 : 128;
    unsigned prefix = width;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3)
            return std::nullopt;
        prefix = 0;
        for (const char c : digits) {
            if (c < '0' || c > '9')
                return std::nullopt;
            prefix = prefix * 10 + static_cast<unsigned>(c - '0');
        }
        if (prefix > width)
            return std::nullopt;
    }
    n.prefix = base->v4 ? prefix + 96 : prefix;
    return n;
}

bool ip_network::contains(const ip_address& a) const noexcept {
    unsigned left = prefix;
    for (std::size_t i = 0; i < 16 && left > 0; ++i) {
        const unsigned bits = std::min(left, 8u);
        const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
        if ((a.bytes[i] & mask) != (base.bytes[i] & mask))
            return false;
        left -= bits;
    }
    return true;
}

std::string_view class_name(address_class c) noexcept {
    switch (c) {
        case address_class::none:
            return "public";
        case address_class::loopback:
            return "loopback";
        case address_class::private_network:
            return "private_network";
        case address_class::link_local:
            return "link_local";
        case address_class::shared_address_space:
            return "shared_address_space";
        case address_class::multicast:
            return "multicast";
        case address_class::broadcast:
            return "broadcast";
        case address_class::unspecified:
            return "unspecified";
        case address_class::reserved:
            return "reserved";
    }
    return "reserved";
}

address_class classify(const ip_address& addr) noexcept {
    const auto& b = addr.bytes;
    const bool mapped = std::equal(v4_mapped_prefix.begin(), v4_mapped_prefix.end(), b.begin());
    const bool zero96 = std::all_of(b.begin(), b.begin() + 12, [](std::uint8_t x) { return x == 0; });
    if (mapped)
        return classify_v4(b[12], b[13], b[14], b[15]);
    if (zero96) {
        if (std::all_of(b.begin() + 12, b.end(), [](std::uint8_t x) { return x == 0; }))
            return address_class::unspecified;  // ::
        if (b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] == 1)
            return address_class::loopback;              // ::1
        return classify_v4(b[12], b[13], b[14], b[15]);  // deprecated IPv4-compatible ::a.b.c.d
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address too.
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
        std::all_of(b.begin() + 4, b.begin() + 12, [](std::uint8_t x) { return x == 0; })) {
        return classify_v4(b[12], b[13], b[14], b[15]);
    }
    if ((b[0] & 0xfe) == 0xfc)
        return address_class::private_network;  // fc00::/7 unique local
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return address_class::link_local;  // fe80::/10
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return address_class::private_network;  // fec0::/10 site local (deprecated)
    if (b[0] == 0xff)
        return address_class::multicast;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return address_class::reserved;  // 2001:db8::/32 documentation
    if ((b[0] & 0xe0) != 0x20)
        return address_class::reserved;  // outside 2000::/3, the global unicast space
    return address_class::none;
}

base::result<address_guard> address_guard::from_list(std::string_view list) {
    address_guard g;
    std::size_t pos = 0;
    while (pos < list.size()) {
        std::size_t end = std::min(list.find(',', pos), list.size());
        std::string_view item = list.substr(pos, end - pos);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        pos = end + 1;
        if (item.empty())
            continue;
        auto n = ip_network::parse(item);
        if (!n)
            return base::failure(
                std::make_error_code(std::errc::invalid_argument),
                "\"" + std::string(item) + "\" is not a CIDR network like 10.0.0.0/8 or fd00::/8");
        g.allowed_.push_back(*n);
    }
    return g;
}

std::optional<address_class> address_guard::refuses(const ip_address& a) const noexcept {
    const address_class c = classify(a);
    if (c == address_class::none)
        return std::nullopt;
    for (const auto& n : allowed_) {
        if (n.contains(a))
            return std::nullopt;
    }
    return c;
}

std::optional<address_class> address_guard::refuses_literal(std::string_view host) const noexcept {
    const auto a = ip_address::parse(host);
    if (!a)
        return std::nullopt;
    return refuses(*a);
}

}  // namespace herald::security
