// Pure unit tests of the outbound address guard: nothing here opens a
// socket or sends traffic anywhere.
#include "security/address_guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace herald::security {
namespace {

using ::testing::HasSubstr;

ip_address addr(std::string_view text) {
    const auto a = ip_address::parse(text);
    if (!a)
        ADD_FAILURE() << "does not parse: " << text;
    return a.value_or(ip_address{});
}

address_class cls(std::string_view text) {
    return classify(addr(text));
}

struct range_case {
    std::string address;
    address_class expected;
    friend void PrintTo(const range_case& c, std::ostream* os) {
        *os << c.address << " -> " << class_name(c.expected);
    }
};

class Classify : public ::testing::TestWithParam<range_case> {};

TEST_P(Classify, FallsUnderItsRule) {
    const auto& c = GetParam();
    EXPECT_EQ(class_name(cls(c.address)), class_name(c.expected)) << c.address;
}

using ac = address_class;

// Each range with its first and last address, and the neighbours just outside.
INSTANTIATE_TEST_SUITE_P(
    Ipv4, Classify,
    ::testing::Values(
        // 127/8 loopback
        range_case{"126.255.255.255", ac::none}, range_case{"127.0.0.0", ac::loopback},
        range_case{"127.0.0.1", ac::loopback}, range_case{"127.255.255.255", ac::loopback},
        range_case{"128.0.0.0", ac::none},
        // 10/8
        range_case{"9.255.255.255", ac::none}, range_case{"10.0.0.0", ac::private_network},
        range_case{"10.255.255.255", ac::private_network}, range_case{"11.0.0.0", ac::none},
        // 172.16/12
        range_case{"172.15.255.255", ac::none}, range_case{"172.16.0.0", ac::private_network},
        range_case{"172.31.255.255", ac::private_network}, range_case{"172.32.0.0", ac::none},
        // 192.168/16
        range_case{"192.167.255.255", ac::none}, range_case{"192.168.0.0", ac::private_network},
        range_case{"192.168.255.255", ac::private_network}, range_case{"192.169.0.0", ac::none},
        // 169.254/16 (cloud metadata included)
        range_case{"169.253.255.255", ac::none}, range_case{"169.254.0.0", ac::link_local},
        range_case{"169.254.169.254", ac::link_local}, range_case{"169.254.255.255", ac::link_local},
        range_case{"169.255.0.0", ac::none},
        // 100.64/10
        range_case{"100.63.255.255", ac::none}, range_case{"100.64.0.0", ac::shared_address_space},
        range_case{"100.127.255.255", ac::shared_address_space}, range_case{"100.128.0.0", ac::none},
        // 224/4 multicast
        range_case{"223.255.255.255", ac::none}, range_case{"224.0.0.0", ac::multicast},
        range_case{"224.0.0.251", ac::multicast}, range_case{"239.255.255.255", ac::multicast},
        // 240/4 reserved, 255.255.255.255 broadcast
        range_case{"240.0.0.0", ac::reserved}, range_case{"255.255.255.254", ac::reserved},
        range_case{"255.255.255.255", ac::broadcast},
        // 0/8
        range_case{"0.0.0.0", ac::unspecified}, range_case{"0.255.255.255", ac::unspecified},
        range_case{"1.0.0.0", ac::none},
        // 192.0.0/24 IETF assignments
        range_case{"191.255.255.255", ac::none}, range_case{"192.0.0.0", ac::reserved},
        range_case{"192.0.0.255", ac::reserved}, range_case{"192.0.1.0", ac::none},
        // 192.0.2/24 TEST-NET-1
        range_case{"192.0.1.255", ac::none}, range_case{"192.0.2.0", ac::reserved},
        range_case{"192.0.2.255", ac::reserved}, range_case{"192.0.3.0", ac::none},
        // 198.51.100/24 TEST-NET-2
        range_case{"198.51.99.255", ac::none}, range_case{"198.51.100.0", ac::reserved},
        range_case{"198.51.100.255", ac::reserved}, range_case{"198.51.101.0", ac::none},
        // 203.0.113/24 TEST-NET-3
        range_case{"203.0.112.255", ac::none}, range_case{"203.0.113.0", ac::reserved},
        range_case{"203.0.113.255", ac::reserved}, range_case{"203.0.114.0", ac::none},
        // 198.18/15 benchmarking
        range_case{"198.17.255.255", ac::none}, range_case{"198.18.0.0", ac::reserved},
        range_case{"198.19.255.255", ac::reserved}, range_case{"198.20.0.0", ac::none},
        // public
        range_case{"8.8.8.8", ac::none}, range_case{"1.1.1.1", ac::none},
        range_case{"93.184.216.34", ac::none}));

INSTANTIATE_TEST_SUITE_P(
    Ipv6, Classify,
    ::testing::Values(
        range_case{"::1", ac::loopback}, range_case{"::", ac::unspecified},
        // fc00::/7 unique local
        range_case{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ac::reserved},
        range_case{"fc00::", ac::private_network}, range_case{"fc00::1", ac::private_network},
        range_case{"fd00::1", ac::private_network}, range_case{"fdff::1", ac::private_network},
        range_case{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ac::private_network},
        range_case{"fe00::", ac::reserved},
        // fe80::/10 link local, fec0::/10 site local
        range_case{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ac::reserved},
        range_case{"fe80::", ac::link_local}, range_case{"fe80::1", ac::link_local},
        range_case{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ac::link_local},
        range_case{"fec0::", ac::private_network},
        range_case{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ac::private_network},
        // ff00::/8 multicast
        range_case{"ff00::", ac::multicast}, range_case{"ff02::1", ac::multicast},
        range_case{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ac::multicast},
        // 2001:db8::/32 documentation
        range_case{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", ac::none},
        range_case{"2001:db8::", ac::reserved},
        range_case{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", ac::reserved},
        range_case{"2001:db9::", ac::none},
        // IPv4-mapped: classified as the IPv4 address
        range_case{"::ffff:127.0.0.1", ac::loopback}, range_case{"::ffff:10.1.2.3", ac::private_network},
        range_case{"::ffff:169.254.169.254", ac::link_local}, range_case{"::ffff:7f00:1", ac::loopback},
        range_case{"::ffff:8.8.8.8", ac::none},
        // IPv4-compatible (deprecated)
        range_case{"::127.0.0.1", ac::loopback}, range_case{"::10.0.0.1", ac::private_network},
        range_case{"::0.0.0.2", ac::unspecified},
        // NAT64 well-known prefix
        range_case{"64:ff9b::10.0.0.1", ac::private_network}, range_case{"64:ff9b::127.0.0.1", ac::loopback},
        range_case{"64:ff9b::169.254.169.254", ac::link_local}, range_case{"64:ff9b::8.8.8.8", ac::none},
        // outside 2000::/3
        range_case{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ac::reserved},
        range_case{"4000::1", ac::reserved}, range_case{"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ac::none},
        // public
        range_case{"2606:4700::1111", ac::none}, range_case{"2001:4860:4860::8888", ac::none},
        range_case{"2000::", ac::none}));

TEST(ClassName, NamesEachRule) {
    EXPECT_EQ(class_name(ac::none), "public");
    EXPECT_EQ(class_name(ac::loopback), "loopback");
    EXPECT_EQ(class_name(ac::private_network), "private_network");
    EXPECT_EQ(class_name(ac::link_local), "link_local");
    EXPECT_EQ(class_name(ac::shared_address_space), "shared_address_space");
    EXPECT_EQ(class_name(ac::multicast), "multicast");
    EXPECT_EQ(class_name(ac::broadcast), "broadcast");
    EXPECT_EQ(class_name(ac::unspecified), "unspecified");
    EXPECT_EQ(class_name(ac::reserved), "reserved");
}

// ---- ip_address -----------------------------------------------------------

TEST(IpAddressParse, Ipv4IsStoredMapped) {
    const auto a = ip_address::parse("192.0.2.1");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->v4);
    const std::array<std::uint8_t, 16> want = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    EXPECT_EQ(a->bytes, want);
}

TEST(IpAddressParse, Ipv6WithAndWithoutBrackets) {
    const auto plain = ip_address::parse("::1");
    const auto bracketed = ip_address::parse("[::1]");
    ASSERT_TRUE(plain);
    ASSERT_TRUE(bracketed);
    EXPECT_FALSE(plain->v4);
    EXPECT_EQ(plain->bytes, bracketed->bytes);
    EXPECT_EQ(plain->bytes[15], 1);
    EXPECT_TRUE(ip_address::parse("2606:4700::1111"));
    EXPECT_TRUE(ip_address::parse("::ffff:10.1.2.3"));
    EXPECT_TRUE(ip_address::parse("0:0:0:0:0:0:0:1"));
}

TEST(IpAddressParse, RefusesWhatIsNotAnAddress) {
    for (const char* bad : {"", "garbage", "localhost", "example.com", "1.2.3", "1.2.3.4.5", "256.1.1.1",
                            "1.2.3.4 ", " 1.2.3.4", "::1::2", "[::1", "::1]", "[]", "fe80::1%eth0",
                            "1.2.3.4/8", "12345::", "0x7f.0.0.1", "2130706433", "1.2.3.04x"}) {
        EXPECT_FALSE(ip_address::parse(bad)) << "accepted \"" << bad << "\"";
    }
    const std::string too_long(100, '1');
    EXPECT_FALSE(ip_address::parse(too_long));
}

TEST(IpAddressParse, EmbeddedNulIsRefused) {
    // The text is copied into a C string for inet_pton, which stops at the
    // first NUL: "8.8.8.8\0anything" must not read as 8.8.8.8.
    const std::string_view with_nul("8.8.8.8\0.internal", 17);
    ASSERT_EQ(with_nul.size(), 17u);
    EXPECT_TRUE(ip_address::parse("8.8.8.8"));
    EXPECT_FALSE(ip_address::parse(with_nul));
    EXPECT_FALSE(ip_address::parse(std::string_view("::1\0x", 5)));
}

// ---- ip_network -----------------------------------------------------------

TEST(IpNetworkParse, CidrForms) {
    const auto v4 = ip_network::parse("10.0.0.0/8");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->prefix, 96u + 8u);
    const auto v6 = ip_network::parse("fd00::/8");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->prefix, 8u);
    EXPECT_EQ(ip_network::parse("0.0.0.0/0")->prefix, 96u);
    EXPECT_EQ(ip_network::parse("::/0")->prefix, 0u);
    EXPECT_EQ(ip_network::parse("1.2.3.4/32")->prefix, 128u);
    EXPECT_EQ(ip_network::parse("::1/128")->prefix, 128u);
}

TEST(IpNetworkParse, BareAddressIsASingleHost) {
    const auto v4 = ip_network::parse("192.0.2.7");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->prefix, 128u);  // /32 over the 16-byte form
    EXPECT_TRUE(v4->contains(addr("192.0.2.7")));
    EXPECT_FALSE(v4->contains(addr("192.0.2.6")));
    EXPECT_FALSE(v4->contains(addr("192.0.2.8")));
    const auto v6 = ip_network::parse("2001:db8::7");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->prefix, 128u);
    EXPECT_TRUE(v6->contains(addr("2001:db8::7")));
    EXPECT_FALSE(v6->contains(addr("2001:db8::8")));
}

TEST(IpNetworkParse, RefusesBadPrefixesAndBases) {
    for (const char* bad :
         {"10.0.0.0/33", "::/129", "x/8", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8a", "10.0.0.0/1000",
          "10.0.0.0/8/8", "/8", "", "localhost/8", "10.0.0/8", "10.0.0.0/ 8"}) {
        EXPECT_FALSE(ip_network::parse(bad)) << "accepted \"" << bad << "\"";
    }
    EXPECT_TRUE(ip_network::parse("10.0.0.0/32"));
    EXPECT_TRUE(ip_network::parse("::/128"));
}

TEST(IpNetworkContains, Boundaries) {
    const auto n = ip_network::parse("172.16.0.0/12").value();
    EXPECT_FALSE(n.contains(addr("172.15.255.255")));
    EXPECT_TRUE(n.contains(addr("172.16.0.0")));
    EXPECT_TRUE(n.contains(addr("172.31.255.255")));
    EXPECT_FALSE(n.contains(addr("172.32.0.0")));
    // The mapped IPv6 form of an IPv4 address in the network is in it too.
    EXPECT_TRUE(n.contains(addr("::ffff:172.20.1.1")));

    const auto odd = ip_network::parse("10.1.2.128/25").value();
    EXPECT_FALSE(odd.contains(addr("10.1.2.127")));
    EXPECT_TRUE(odd.contains(addr("10.1.2.128")));
    EXPECT_TRUE(odd.contains(addr("10.1.2.255")));
    EXPECT_FALSE(odd.contains(addr("10.1.3.0")));

    const auto v6 = ip_network::parse("fd12:3456::/33").value();
    EXPECT_TRUE(v6.contains(addr("fd12:3456:7fff::1")));
    EXPECT_FALSE(v6.contains(addr("fd12:3456:8000::1")));
    EXPECT_FALSE(v6.contains(addr("fd12:3455:ffff::1")));

    // IPv4 /0 covers IPv4 only, ::/0 everything.
    const auto all_v4 = ip_network::parse("0.0.0.0/0").value();
    EXPECT_TRUE(all_v4.contains(addr("8.8.8.8")));
    EXPECT_FALSE(all_v4.contains(addr("2606:4700::1111")));
    EXPECT_TRUE(ip_network::parse("::/0")->contains(addr("8.8.8.8")));
}

// ---- address_guard --------------------------------------------------------

TEST(AddressGuardFromList, ParsesACommaSeparatedListWithSpaces) {
    const auto g = address_guard::from_list(" 10.0.0.0/8 ,fd00::/8,  192.168.1.5 ,");
    ASSERT_TRUE(g) << g.err().describe();
    ASSERT_EQ(g->allowed().size(), 3u);
    EXPECT_EQ(g->allowed()[0].prefix, 104u);
    EXPECT_EQ(g->allowed()[1].prefix, 8u);
    EXPECT_EQ(g->allowed()[2].prefix, 128u);
    const auto empty = address_guard::from_list("");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->allowed().empty());
}

TEST(AddressGuardFromList, ErrorNamesTheBadEntry) {
    const auto g = address_guard::from_list("10.0.0.0/8, 10.0.0.0/33 ,fd00::/8");
    ASSERT_FALSE(g);
    EXPECT_EQ(g.err().code, std::make_error_code(std::errc::invalid_argument));
    EXPECT_THAT(g.err().detail, HasSubstr("\"10.0.0.0/33\""));
    const auto h = address_guard::from_list("intranet.example");
    ASSERT_FALSE(h);
    EXPECT_THAT(h.err().detail, HasSubstr("intranet.example"));
}

TEST(AddressGuardRefuses, RefusesEveryNonPublicClassByDefault) {
    const auto g = address_guard::from_list("").value();
    EXPECT_EQ(g.refuses(addr("127.0.0.1")), ac::loopback);
    EXPECT_EQ(g.refuses(addr("10.0.0.1")), ac::private_network);
    EXPECT_EQ(g.refuses(addr("169.254.169.254")), ac::link_local);
    EXPECT_EQ(g.refuses(addr("::ffff:169.254.169.254")), ac::link_local);
    EXPECT_EQ(g.refuses(addr("::1")), ac::loopback);
    EXPECT_EQ(g.refuses(addr("0.0.0.0")), ac::unspecified);
    EXPECT_EQ(g.refuses(addr("8.8.8.8")), std::nullopt);
    EXPECT_EQ(g.refuses(addr("2606:4700::1111")), std::nullopt);
}

TEST(AddressGuardRefuses, AnAllowedNetworkLiftsTheRefusalForItsAddressesOnly) {
    const auto g = address_guard::from_list("127.0.0.0/8, fd00:1::/32").value();
    EXPECT_EQ(g.refuses(addr("127.0.0.1")), std::nullopt);
    EXPECT_EQ(g.refuses(addr("127.255.255.255")), std::nullopt);
    EXPECT_EQ(g.refuses(addr("::ffff:127.0.0.1")), std::nullopt);  // mapped form of an allowed address
    EXPECT_EQ(g.refuses(addr("10.0.0.1")), ac::private_network);
    EXPECT_EQ(g.refuses(addr("169.254.169.254")), ac::link_local);
    EXPECT_EQ(g.refuses(addr("::1")), ac::loopback);  // IPv6 loopback is not 127/8
    EXPECT_EQ(g.refuses(addr("fd00:1::5")), std::nullopt);
    EXPECT_EQ(g.refuses(addr("fd00:2::5")), ac::private_network);
    EXPECT_EQ(g.refuses(addr("8.8.8.8")), std::nullopt);
}

TEST(AddressGuardRefusesLiteral, LiteralsAreJudgedNamesWaitForConnect) {
    const auto g = address_guard::from_list("10.1.0.0/16").value();
    EXPECT_EQ(g.refuses_literal("127.0.0.1"), ac::loopback);
    EXPECT_EQ(g.refuses_literal("169.254.169.254"), ac::link_local);
    EXPECT_EQ(g.refuses_literal("[::1]"), ac::loopback);
    EXPECT_EQ(g.refuses_literal("[::ffff:127.0.0.1]"), ac::loopback);
    EXPECT_EQ(g.refuses_literal("10.2.0.1"), ac::private_network);
    EXPECT_EQ(g.refuses_literal("10.1.0.1"), std::nullopt);  // allowed network
    // Names are checked after resolution, at connect.
    EXPECT_EQ(g.refuses_literal("localhost"), std::nullopt);
    EXPECT_EQ(g.refuses_literal("metadata.google.internal"), std::nullopt);
    EXPECT_EQ(g.refuses_literal("hooks.example.com"), std::nullopt);
    // Public literals pass.
    EXPECT_EQ(g.refuses_literal("8.8.8.8"), std::nullopt);
    EXPECT_EQ(g.refuses_literal("[2606:4700::1111]"), std::nullopt);
}

}  // namespace
}  // namespace herald::security
