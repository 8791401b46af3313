// A kill makes lookups of its token or account bypass the auth cache for the cache's
// lifetime (docs/protocol.md#system-channels), measured on the gateway's clock.
#include "gateway/recent_kills.hpp"

#include <gtest/gtest.h>

#include <optional>


namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

// A system event as the broker classifies it (tests/broker/redis_message_test.cpp).
sluice::v1::ChannelEvent system_event(sluice::v1::SystemChannel kind, std::optional<int64_t> id,
                                      const std::string& name) {
  sluice::v1::ChannelEvent event;
  event.set_event(name);
  event.set_system_channel(kind);
  if (id) {
    event.set_system_id(*id);
    event.set_system_id_valid(true);
  }
  return event;
}

constexpr auto kToken = sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN;
constexpr auto kAccount = sluice::v1::SYSTEM_CHANNEL_ACCOUNT;

AuthInfo viewer(int64_t token_id, int64_t account_id) {
  AuthInfo info;
  info.access_token_id = token_id;
  info.account_id = account_id;
  return info;
}

struct ManualClock {
  SteadyClock::time_point now{};
  NowFunction function() {
    return [this] { return now; };
  }
};

TEST(RecentKills, TokenAndAccountKillsLastTheWindowAndNoLonger) {
  ManualClock clock;
  RecentKills kills(30000ms, clock.function());
  EXPECT_FALSE(kills.affects(viewer(7, 100)));
  kills.record(system_event(kToken, 7, "kill"));
  kills.record(system_event(kAccount, 200, "kill"));
  EXPECT_TRUE(kills.affects(viewer(7, 100)));
  EXPECT_TRUE(kills.affects(viewer(8, 200)));
  EXPECT_FALSE(kills.affects(viewer(8, 100)));
  clock.now += 30000ms;
  EXPECT_TRUE(kills.affects(viewer(7, 100)));
  clock.now += 1ms;
  EXPECT_FALSE(kills.affects(viewer(7, 100)));
  EXPECT_FALSE(kills.affects(viewer(8, 200)));
}

TEST(RecentKills, OnlyKillsWithAValidIdCount) {
  ManualClock clock;
  RecentKills kills(1000ms, clock.function());
  kills.record(system_event(kAccount, 300, "filters_changed"));
  kills.record(system_event(kAccount, std::nullopt, "kill"));  // timeline:system:abc
  kills.record(system_event(sluice::v1::SYSTEM_CHANNEL_NONE, std::nullopt, "kill"));
  EXPECT_FALSE(kills.affects(viewer(1, 300)));
  EXPECT_FALSE(kills.affects(viewer(300, 0)));
}

}  // namespace
}  // namespace sluice::gateway
