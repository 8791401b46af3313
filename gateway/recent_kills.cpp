#include "gateway/recent_kills.hpp"

namespace sluice::gateway {

void RecentKills::record(const sluice::v1::ChannelEvent& event) {
  if (event.event() != "kill" || !event.system_id_valid()) return;
  auto now = now_();
  std::lock_guard lock(mutex_);
  forget_old(now);
  switch (event.system_channel()) {
    case sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN: tokens_[event.system_id()] = now; break;
    case sluice::v1::SYSTEM_CHANNEL_ACCOUNT: accounts_[event.system_id()] = now; break;
    default: break;
  }
}

bool RecentKills::affects(const AuthInfo& auth) {
  std::lock_guard lock(mutex_);
  if (tokens_.empty() && accounts_.empty()) return false;
  forget_old(now_());
  return tokens_.count(auth.access_token_id) > 0 || accounts_.count(auth.account_id) > 0;
}

void RecentKills::forget_old(Clock::time_point now) {
  for (auto* index : {&tokens_, &accounts_}) {
    std::erase_if(*index, [&](const auto& entry) { return now - entry.second > window_; });
  }
}

}  // namespace sluice::gateway
