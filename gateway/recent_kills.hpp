#pragma once
// Kills (docs/protocol.md#system-channels) this gateway saw recently. An auth answer may come from a cache
// filled before a kill — in the split deployment the auth service learns of the
// kill through its own stream, in parallel with us — so a token lookup whose token
// or account was killed after its answer was produced (the answer carries its age)
// is asked again, bypassing every cache: a revoked token is refused from the kill on.
// The auth tier owns its cache lifetime: kills are kept as long as the oldest answer
// seen so far, and at least a minute.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <map>
#include <string>
#include <utility>

#include "gateway/auth_client.hpp"
#include "gateway/clock.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice::gateway {

class RecentKills {
 public:
  using Clock = SteadyClock;
  explicit RecentKills(NowFunction now) : now_(std::move(now)) {}

  // Called for every system-channel event, before any worker closes a connection.
  void record(const sluice::v1::ChannelEvent& event);
  // Whether the token or its account was killed after an answer `answer_age` old was
  // produced (with a second of slack: auth and this gateway hear of a kill in parallel).
  bool affects(const AuthInfo& auth, std::chrono::milliseconds answer_age);

  // Admission checks an answer, then registers the connection on its worker later (after
  // the list and feed checks, or a post): a kill recorded in between finds no connection
  // to end. `mark()` numbers the kills recorded so far; `killed_after(auth, mark)` tells
  // whether one for the token or its account was recorded since, so the worker ends such
  // a connection as soon as it is registered.
  uint64_t mark();
  bool killed_after(const AuthInfo& auth, uint64_t mark);

 private:
  void forget_old(Clock::time_point now);

  static constexpr std::chrono::milliseconds kSlack{1000};
  static constexpr std::chrono::milliseconds kMinimumRetention{60000};
  std::chrono::milliseconds retention_ = kMinimumRetention;
  NowFunction now_;
  std::mutex mutex_;
  // Keyed by instance and id: a kill names a token or account of its own instance only
  // (docs/hosting.md#tenants), and ids repeat across instances.
  struct Kill {
    Clock::time_point at;
    uint64_t number = 0;  // of kills recorded, this one included
  };
  using Index = std::map<std::pair<std::string, int64_t>, Kill>;
  uint64_t recorded_ = 0;
  Index tokens_;
  Index accounts_;
};

}  // namespace sluice::gateway
