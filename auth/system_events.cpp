#include "auth/system_events.hpp"

#include <charconv>
#include <string_view>

#include "common/log.hpp"

namespace sluice {
namespace {

constexpr std::string_view kAccessTokenPrefix = "timeline:access_token:";
constexpr std::string_view kSystemPrefix = "timeline:system:";

bool parse_id(std::string_view text, int64_t& id) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

bool apply_system_event(AuthCache& cache, const sluice::v1::ChannelEvent& event) {
  std::string_view channel = event.channel();
  int64_t id = 0;
  if (channel.substr(0, kAccessTokenPrefix.size()) == kAccessTokenPrefix) {
    if (event.event() != "kill" || !parse_id(channel.substr(kAccessTokenPrefix.size()), id)) return false;
    cache.forget_access_token(id);
    log::debug("access token revoked; cache entry dropped", {{"access_token_id", id}});
    return true;
  }
  if (channel.substr(0, kSystemPrefix.size()) == kSystemPrefix) {
    if (!parse_id(channel.substr(kSystemPrefix.size()), id)) return false;
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
