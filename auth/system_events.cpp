#include "auth/system_events.hpp"

#include "common/log.hpp"

namespace sluice {

bool apply_system_event(AuthCache& cache, const sluice::v1::ChannelEvent& event) {
  // The broker classified the channel (docs/protocol.md#system-channels).
  if (!event.system_id_valid()) return false;
  const int64_t id = event.system_id();
  if (event.system_channel() == sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN) {
    if (event.event() != "kill") return false;
    cache.forget_access_token(id);
    log::debug("access token revoked; cache entry dropped", {{"access_token_id", id}});
    return true;
  }
  if (event.system_channel() == sluice::v1::SYSTEM_CHANNEL_ACCOUNT) {
    if (event.event() == "kill") {
      cache.forget_account(id);
      log::debug("account disabled; cache entries dropped", {{"account_id", id}});
      return true;
    }
    if (event.event() == "filters_changed") {
      cache.forget_filters(id);
      return true;
    }
  }
  return false;
}

}  // namespace sluice
