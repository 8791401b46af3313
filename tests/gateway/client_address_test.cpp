// docs/protocol.md#client-address: TRUSTED_PROXY_IP and X-Forwarded-For as Express's
// `trust proxy` (proxy-addr) reads them.
#include <gtest/gtest.h>

#include "gateway/client_address.hpp"
#include "gateway/gateway_config.hpp"

namespace sluice::gateway {
namespace {

boost::asio::ip::address ip(const std::string& text) { return boost::asio::ip::make_address(text); }

TEST(TrustedProxies, NamesSubnetsAndNetmasks) {
  auto trusted = TrustedProxies::parse({"loopback", "uniquelocal", "198.51.100.0/255.255.255.0", "2001:db8::1"});
  EXPECT_TRUE(trusted.trusts(ip("127.3.4.5")));
  EXPECT_TRUE(trusted.trusts(ip("::1")));
  EXPECT_TRUE(trusted.trusts(ip("10.1.2.3")));
  EXPECT_TRUE(trusted.trusts(ip("172.31.255.255")));
  EXPECT_FALSE(trusted.trusts(ip("172.32.0.1")));
  EXPECT_TRUE(trusted.trusts(ip("192.168.9.9")));
  EXPECT_TRUE(trusted.trusts(ip("fd12::5")));
  EXPECT_TRUE(trusted.trusts(ip("198.51.100.77")));
  EXPECT_FALSE(trusted.trusts(ip("198.51.101.77")));
  EXPECT_TRUE(trusted.trusts(ip("2001:db8::1")));
  EXPECT_FALSE(trusted.trusts(ip("2001:db8::2")));
  EXPECT_FALSE(trusted.trusts(ip("203.0.113.1")));
  // An IPv4-mapped IPv6 peer (a dual-stack listener) is compared as IPv4.
  EXPECT_TRUE(trusted.trusts(ip("::ffff:10.0.0.1")));
  EXPECT_FALSE(trusted.trusts(ip("::ffff:203.0.113.1")));
}

TEST(TrustedProxies, InvalidEntriesAreConfigurationErrors) {
  for (std::string bad : {"nonsense", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/255.0.255.0", "::1/129", "10.0.0.0/x"}) {
    EXPECT_THROW(TrustedProxies::parse({bad}), ConfigError) << bad;
  }
}

TEST(ClientAddress, UntrustedPeerIsTheClientWhateverItForwards) {
  auto trusted = TrustedProxies::parse({"10.0.0.1"});
  EXPECT_EQ(client_address(ip("203.0.113.5"), "198.51.100.1", trusted), "203.0.113.5");
}

TEST(ClientAddress, WalksForwardedForRightToLeftWhileTrusted) {
  auto trusted = TrustedProxies::parse({"10.0.0.0/8"});
  EXPECT_EQ(client_address(ip("10.0.0.1"), "", trusted), "10.0.0.1");
  EXPECT_EQ(client_address(ip("10.0.0.1"), "198.51.100.1", trusted), "198.51.100.1");
  // A client-supplied entry left of an untrusted hop is not believed.
  EXPECT_EQ(client_address(ip("10.0.0.1"), "1.1.1.1, 198.51.100.1, 10.2.2.2", trusted), "198.51.100.1");
  // All trusted: the leftmost.
  EXPECT_EQ(client_address(ip("10.0.0.1"), "10.9.9.9,10.2.2.2", trusted), "10.9.9.9");
  // Not an address: ends the walk, as written.
  EXPECT_EQ(client_address(ip("10.0.0.1"), "1.1.1.1, unknown", trusted), "unknown");
  EXPECT_EQ(client_address(ip("::ffff:10.0.0.1"), " 2001:db8::7 ", trusted), "2001:db8::7");
}

}  // namespace
}  // namespace sluice::gateway

namespace sluice::gateway {
namespace {

// docs/protocol.md#client-address: an unset or empty TRUSTED_PROXY_IP means Express's
// default (the reference tests the variable for truthiness).
TEST(TrustedProxies, EmptyVariableMeansTheReferenceDefault) {
  for (auto env : {Env::from_map({}), Env::from_map({{"TRUSTED_PROXY_IP", ""}})}) {
    auto config = GatewayConfig::from_env(env);
    EXPECT_TRUE(config.trusted_proxies.trusts(boost::asio::ip::make_address("127.0.0.1")));
    EXPECT_TRUE(config.trusted_proxies.trusts(boost::asio::ip::make_address("10.1.2.3")));
    EXPECT_FALSE(config.trusted_proxies.trusts(boost::asio::ip::make_address("203.0.113.1")));
  }
  auto only = GatewayConfig::from_env(Env::from_map({{"TRUSTED_PROXY_IP", "10.0.0.1"}}));
  EXPECT_FALSE(only.trusted_proxies.trusts(boost::asio::ip::make_address("127.0.0.1")));
}

}  // namespace
}  // namespace sluice::gateway
