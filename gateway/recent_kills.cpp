#include "gateway/recent_kills.hpp"

namespace sluice::gateway {

void RecentKills::record(const sluice::v1::ChannelEvent& event) {
  if (event.event() != "kill" || !event.system_id_valid()) return;
  auto now = now_();
  std::lock_guard lock(mutex_);
  forget_old(now);
  switch (event.system_channel()) {
    case sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN: tokens_[{event.tenant(), event.system_id()}] = {now, ++recorded_}; break;
    case sluice::v1::SYSTEM_CHANNEL_ACCOUNT: accounts_[{event.tenant(), event.system_id()}] = {now, ++recorded_}; break;
    default: break;
  }
}

bool RecentKills::affects(const AuthInfo& auth, std::chrono::milliseconds answer_age) {
  std::lock_guard lock(mutex_);
  retention_ = std::max(retention_, answer_age + kSlack);
  if (tokens_.empty() && accounts_.empty()) return false;
  auto now = now_();
  forget_old(now);
  auto produced = now - answer_age - kSlack;
  auto killed_since = [&](const Index& index, int64_t id) {
    auto it = index.find({auth.tenant, id});
    return it != index.end() && it->second.at >= produced;
  };
  return killed_since(tokens_, auth.access_token_id) || killed_since(accounts_, auth.account_id);
}

uint64_t RecentKills::mark() {
  std::lock_guard lock(mutex_);
  return recorded_;
}

bool RecentKills::killed_after(const AuthInfo& auth, uint64_t mark) {
  std::lock_guard lock(mutex_);
  auto recorded_since = [&](const Index& index, int64_t id) {
    auto it = index.find({auth.tenant, id});
    return it != index.end() && it->second.number > mark;
  };
  return recorded_since(tokens_, auth.access_token_id) || recorded_since(accounts_, auth.account_id);
}

void RecentKills::forget_old(Clock::time_point now) {
  for (auto* index : {&tokens_, &accounts_}) {
    std::erase_if(*index, [&](const auto& entry) { return now - entry.second.at > retention_; });
  }
}

}  // namespace sluice::gateway
