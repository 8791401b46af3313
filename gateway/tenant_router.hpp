#pragma once
// Which instance a request is for (docs/hosting.md#routing): with a tenants file, the
// tenant whose hosts list the request's Host header; without one, the environment's
// one instance for every request. Any thread; a reloaded file replaces the table at
// once for new requests, while streams already open keep the instance they were
// admitted for.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/tenants.hpp"

namespace sluice::gateway {

class TenantRouter {
 public:
  // Serve these tenants (a tenants file, or its reloaded version); returns the ones
  // served until now.
  std::shared_ptr<const Tenants> update(std::shared_ptr<const Tenants> tenants);
  // Whether `tenant` is served: the environment's instance ("") without a tenants
  // file, a tenant of the file with one.
  bool serves(const std::string& tenant) const;
  // "" without a tenants file; the tenant's name when it serves `host_header`;
  // nothing for a Host no tenant serves (or a missing Host, given as nullopt).
  std::optional<std::string> tenant_for(std::optional<std::string_view> host_header) const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Tenants> tenants_;
};

}  // namespace sluice::gateway
