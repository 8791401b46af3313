#include "auth/system_events.hpp"

#include "common/log.hpp"

namespace sluice {

bool apply_system_event(AuthTenants& tenants, const sluice::v1::ChannelEvent& event) {
  // The broker classified the channel (docs/protocol.md#system-channels).
  if (!event.system_id_valid()) return false;
  // An instance whose caches were never built has nothing to forget.
  std::shared_ptr<TenantAuth> tenant = tenants.find_built(event.tenant());
  if (!tenant) return false;
  AuthCache& cache = tenant->cache();
  const int64_t id = event.system_id();
  if (event.system_channel() == sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN) {
    if (event.event() != "kill") return false;
    cache.forget_access_token(id);
    log::debug("access token revoked; cache entry dropped", log::for_tenant(event.tenant(), {{"access_token_id", id}}));
    return true;
  }
  if (event.system_channel() == sluice::v1::SYSTEM_CHANNEL_ACCOUNT) {
    if (event.event() == "kill") {
      cache.forget_account(id);
      log::debug("account disabled; cache entries dropped", log::for_tenant(event.tenant(), {{"account_id", id}}));
      return true;
    }
    if (event.event() == "filters_changed") {
      cache.forget_filters(id);
      return true;
    }
  }
  return false;
}

void system_events_missed(AuthTenants& tenants) {
  tenants.for_each_built([](TenantAuth& tenant) { tenant.cache().forget_tokens_and_filters(); });
}

}  // namespace sluice
