// A kill makes lookups of its token or account bypass the auth cache for the cache's
// lifetime (docs/protocol.md#system-channels), measured on the gateway's clock.
#include "gateway/recent_kills.hpp"

#include <gtest/gtest.h>

#include "common/redis_message.hpp"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

sluice::v1::ChannelEvent system_event(const std::string& channel, const std::string& name) {
  sluice::v1::ChannelEvent event;
  event.set_channel(channel);
  event.set_event(name);
  classify_system_channel(channel, event);
  return event;
}

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
  kills.record(system_event("timeline:access_token:7", "kill"));
  kills.record(system_event("timeline:system:200", "kill"));
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
  kills.record(system_event("timeline:system:300", "filters_changed"));
  kills.record(system_event("timeline:system:abc", "kill"));
  kills.record(system_event("timeline:300", "kill"));
  EXPECT_FALSE(kills.affects(viewer(1, 300)));
  EXPECT_FALSE(kills.affects(viewer(300, 0)));
}

}  // namespace
}  // namespace sluice::gateway
