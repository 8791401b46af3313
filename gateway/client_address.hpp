#pragma once
// Which address a request comes from (docs/protocol.md#client-address): the peer,
// or, when the peer is a trusted proxy (TRUSTED_PROXY_IP, as Express's `trust
// proxy`), the address it forwarded in X-Forwarded-For. Used by the access log and
// the per-address limits. No I/O.
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_error.hpp"

namespace sluice::gateway {

class TrustedProxies {
 public:
  // Entries of TRUSTED_PROXY_IP: addresses, CIDR subnets ("10.0.0.0/8",
  // "fc00::/7"), address/netmask ("10.0.0.0/255.0.0.0") and the names loopback,
  // linklocal and uniquelocal. Throws ConfigError on anything else.
  static TrustedProxies parse(const std::vector<std::string>& entries);
  // The reference's default when TRUSTED_PROXY_IP is unset: loopback,uniquelocal.
  static TrustedProxies reference_default() { return parse({"loopback", "uniquelocal"}); }
  bool trusts(const boost::asio::ip::address& address) const;
  // The same for an address as text; false when it is not an IP address.
  bool trusts(std::string_view address) const;

 private:
  struct Subnet {
    boost::asio::ip::address network;
    unsigned prefix = 0;
  };
  std::vector<Subnet> subnets_;
};

// proxy-addr's rule: walk from the peer through X-Forwarded-For right to left while
// the address is trusted; the answer is the first untrusted one, or the leftmost
// when all are. An entry that is not an IP address ends the walk and is returned
// as written (trimmed).
std::string client_address(const boost::asio::ip::address& peer, std::string_view x_forwarded_for,
                           const TrustedProxies& trusted);

}  // namespace sluice::gateway
