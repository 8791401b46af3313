#include "gateway/client_address.hpp"

#include <array>

namespace sluice::gateway {

namespace asio_ip = boost::asio::ip;

namespace {

// Express names (proxy-addr's IP_RANGES).
const std::vector<std::string>* named_range(std::string_view name) {
  static const std::vector<std::string> loopback{"127.0.0.1/8", "::1/128"};
  static const std::vector<std::string> linklocal{"169.254.0.0/16", "fe80::/10"};
  static const std::vector<std::string> uniquelocal{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"};
  if (name == "loopback") return &loopback;
  if (name == "linklocal") return &linklocal;
  if (name == "uniquelocal") return &uniquelocal;
  return nullptr;
}

std::optional<asio_ip::address> parse_address(std::string_view text) {
  boost::system::error_code ec;
  auto address = asio_ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  // proxy-addr compares IPv4-mapped IPv6 addresses as IPv4.
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio_ip::make_address_v4(asio_ip::v4_mapped, address.to_v6());
  }
  return address;
}

std::array<unsigned char, 16> address_bytes(const asio_ip::address& address) {
  std::array<unsigned char, 16> out{};
  if (address.is_v4()) {
    auto bytes = address.to_v4().to_bytes();
    std::copy(bytes.begin(), bytes.end(), out.begin());
  } else {
    out = address.to_v6().to_bytes();
  }
  return out;
}

bool in_prefix(const asio_ip::address& a, const asio_ip::address& network, unsigned prefix) {
  if (a.is_v4() != network.is_v4()) return false;
  auto x = address_bytes(a);
  auto y = address_bytes(network);
  for (unsigned bit = 0; bit < prefix; ++bit) {
    unsigned char mask = static_cast<unsigned char>(0x80u >> (bit % 8));
    if ((x[bit / 8] & mask) != (y[bit / 8] & mask)) return false;
  }
  return true;
}

// A dotted IPv4 netmask as a prefix length; nullopt when its ones are not contiguous.
std::optional<unsigned> netmask_prefix(const asio_ip::address& mask) {
  if (!mask.is_v4()) return std::nullopt;
  uint32_t bits = mask.to_v4().to_uint();
  unsigned prefix = 0;
  while (prefix < 32 && (bits & (0x80000000u >> prefix))) ++prefix;
  if (prefix < 32 && (bits << prefix) != 0) return std::nullopt;
  return prefix;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

TrustedProxies TrustedProxies::parse(const std::vector<std::string>& entries) {
  TrustedProxies out;
  std::vector<std::string> expanded;
  for (const auto& entry : entries) {
    if (const auto* range = named_range(entry)) {
      expanded.insert(expanded.end(), range->begin(), range->end());
    } else {
      expanded.push_back(entry);
    }
  }
  for (const auto& entry : expanded) {
    auto invalid = [&] { return ConfigError("Invalid TRUSTED_PROXY_IP entry: " + entry); };
    std::string_view text = entry;
    size_t slash = text.find('/');
    auto network = parse_address(text.substr(0, slash));
    if (!network) throw invalid();
    unsigned max_prefix = network->is_v4() ? 32 : 128;
    unsigned prefix = max_prefix;
    if (slash != std::string_view::npos) {
      std::string_view suffix = text.substr(slash + 1);
      if (auto mask = parse_address(suffix); mask && suffix.find('.') != std::string_view::npos) {
        auto mask_prefix = netmask_prefix(*mask);
        if (!mask_prefix || !network->is_v4()) throw invalid();
        prefix = *mask_prefix;
      } else {
        if (suffix.empty() || suffix.size() > 3 || suffix.find_first_not_of("0123456789") != std::string_view::npos) {
          throw invalid();
        }
        prefix = static_cast<unsigned>(std::stoul(std::string(suffix)));
        if (prefix > max_prefix) throw invalid();
      }
    }
    out.subnets_.push_back({*network, prefix});
  }
  return out;
}

bool TrustedProxies::trusts(const asio_ip::address& address) const {
  auto normalized = parse_address(address.to_string());
  if (!normalized) return false;
  for (const auto& subnet : subnets_) {
    if (in_prefix(*normalized, subnet.network, subnet.prefix)) return true;
  }
  return false;
}

bool TrustedProxies::trusts(std::string_view address) const {
  auto parsed = parse_address(address);
  return parsed && trusts(*parsed);
}

std::string client_address(const asio_ip::address& peer, std::string_view x_forwarded_for,
                           const TrustedProxies& trusted) {
  auto normalized_peer = parse_address(peer.to_string()).value_or(peer);
  if (!trusted.trusts(normalized_peer) || x_forwarded_for.empty()) return normalized_peer.to_string();
  std::string_view rest = x_forwarded_for;
  std::string last;
  while (true) {
    size_t comma = rest.rfind(',');
    std::string_view item = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    auto address = parse_address(item);
    if (!address) return std::string(item);
    last = address->to_string();
    if (!trusted.trusts(*address) || comma == std::string_view::npos) return last;
    rest = rest.substr(0, comma);
  }
}

}  // namespace sluice::gateway
