#pragma once
// Kills (docs/protocol.md#system-channels) this gateway saw recently. An auth answer may come from a cache
// filled before a kill — in the split deployment the auth service learns of the
// kill through its own stream, in parallel with us — so a token lookup whose
// token or account was killed within the auth cache's lifetime is asked again,
// bypassing every cache: a revoked token is refused from the kill on.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "gateway/auth_client.hpp"
#include "gateway/clock.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice::gateway {

class RecentKills {
 public:
  using Clock = SteadyClock;
  RecentKills(std::chrono::milliseconds window, NowFunction now) : window_(window), now_(std::move(now)) {}

  // Called for every system-channel event, before any worker closes a connection.
  void record(const sluice::v1::ChannelEvent& event);
  bool affects(const AuthInfo& auth);

 private:
  void forget_old(Clock::time_point now);

  std::chrono::milliseconds window_;
  NowFunction now_;
  std::mutex mutex_;
  std::unordered_map<int64_t, Clock::time_point> tokens_;
  std::unordered_map<int64_t, Clock::time_point> accounts_;
};

}  // namespace sluice::gateway
