#pragma once
// The tenants file (issue 13, many Mastodon instances served by one fleet): which Host
// names belong to which instance, and that instance's own settings, given as the same
// environment variables a one-instance deployment sets (REDIS_URL, REDIS_NAMESPACE,
// DATABASE_URL or DB_*, DB_POOL, ...), so each tier reads a tenant's settings with the
// parser it already uses for the process environment. Shared by all three tiers.
//
//   {"tenants": {
//     "social": {"hosts": ["social.example", "www.social.example"],
//                "env": {"REDIS_URL": "redis://redis-a:6379/0", "DATABASE_URL": "postgres://..."}},
//     "club":   {"hosts": ["club.example"], "env": {"REDIS_URL": "redis://redis-a:6379/0",
//                                                   "REDIS_NAMESPACE": "club", "DB_NAME": "club"}}}}
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/env.hpp"

namespace sluice {

struct Tenant {
  // The file's key: 1–63 characters of a-z, 0-9, '-' and '_'. It names the tenant in
  // metrics (a `tenant` label) and logs, so it is bounded and plain.
  std::string name;
  // Host names as clients send them, lower-cased, without port or trailing dot.
  std::vector<std::string> hosts;
  // The base environment with the tenant's variables laid over it: what the tiers read
  // for this tenant.
  Env env;
};

class Tenants {
 public:
  // Parses the tenants file. `base` is the process environment, which a tenant's own
  // variables override. Throws ConfigError, naming the tenant and the field, when the
  // JSON is malformed, a name or host is invalid, a host belongs to two tenants, a
  // tenant has no host, or a variable is not a string with an upper-case name.
  static Tenants parse(std::string_view json_text, const Env& base);

  const std::vector<Tenant>& all() const { return tenants_; }
  // The tenant serving a request's Host header ("Social.Example:443" finds
  // "social.example"), or nullptr for a host nobody serves.
  const Tenant* for_host(std::string_view host_header) const;
  // The tenant of that name, or nullptr.
  const Tenant* find(std::string_view name) const;

 private:
  std::vector<Tenant> tenants_;
  std::unordered_map<std::string, size_t> by_host_;
};

// A Host header's name as the tenants file keys it: port, brackets of an IPv6
// literal's port form and a trailing dot removed, ASCII lower-cased. Empty when the
// header is not a plausible host name.
std::string normalized_host(std::string_view host_header);

}  // namespace sluice
