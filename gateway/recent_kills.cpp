#include "gateway/recent_kills.hpp"

namespace sluice::gateway {

void RecentKills::record(const sluice::v1::ChannelEvent& event, int64_t id) {
  if (event.event() != "kill" || id < 0) return;
  auto now = Clock::now();
  std::lock_guard lock(mutex_);
  forget_old(now);
  if (event.channel().rfind("timeline:access_token:", 0) == 0) tokens_[id] = now;
  else accounts_[id] = now;
}

bool RecentKills::affects(const AuthInfo& auth) {
  std::lock_guard lock(mutex_);
  if (tokens_.empty() && accounts_.empty()) return false;
  forget_old(Clock::now());
  return tokens_.count(auth.access_token_id) > 0 || accounts_.count(auth.account_id) > 0;
}

void RecentKills::forget_old(Clock::time_point now) {
  for (auto* index : {&tokens_, &accounts_}) {
    std::erase_if(*index, [&](const auto& entry) { return now - entry.second > window_; });
  }
}

}  // namespace sluice::gateway
