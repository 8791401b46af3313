#include "gateway/tenant_router.hpp"

namespace sluice::gateway {

std::shared_ptr<const Tenants> TenantRouter::update(std::shared_ptr<const Tenants> tenants) {
  std::lock_guard lock(mutex_);
  std::swap(tenants_, tenants);
  return tenants;
}

bool TenantRouter::serves(const std::string& tenant) const {
  std::lock_guard lock(mutex_);
  return tenants_ ? tenants_->find(tenant) != nullptr : tenant.empty();
}

std::optional<std::string> TenantRouter::tenant_for(std::optional<std::string_view> host_header) const {
  std::shared_ptr<const Tenants> tenants;
  {
    std::lock_guard lock(mutex_);
    tenants = tenants_;
  }
  if (!tenants) return std::string();
  if (!host_header) return std::nullopt;
  const Tenant* tenant = tenants->for_host(*host_header);
  if (!tenant) return std::nullopt;
  return tenant->name;
}

}  // namespace sluice::gateway
