// A kill makes lookups of its token or account bypass the auth cache when the answer
// was produced before the kill (it carries its age) (docs/protocol.md#system-channels),
// measured on the gateway's clock.
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

TEST(RecentKills, AnAnswerProducedBeforeTheKillIsAskedAgain) {
  ManualClock clock;
  clock.now += 3600s;
  RecentKills kills(clock.function());
  EXPECT_FALSE(kills.affects(viewer(7, 100), 0ms));
  kills.record(system_event(kToken, 7, "kill"));
  kills.record(system_event(kAccount, 200, "kill"));
  clock.now += 10000ms;
  // Produced 20 s ago, before the kill: stale.
  EXPECT_TRUE(kills.affects(viewer(7, 100), 20000ms));
  EXPECT_TRUE(kills.affects(viewer(8, 200), 20000ms));
  EXPECT_FALSE(kills.affects(viewer(8, 100), 20000ms));
  // Produced 5 s ago, after the kill (a fresh query that found the token still valid
  // is not second-guessed).
  EXPECT_FALSE(kills.affects(viewer(7, 100), 5000ms));
  // Within a second of the kill: treated as before it (auth hears of kills in parallel).
  EXPECT_TRUE(kills.affects(viewer(7, 100), 9500ms));
}

TEST(RecentKills, KillsAreKeptAsLongAsTheOldestAnswerSeenAndAtLeastAMinute) {
  ManualClock clock;
  clock.now += 3600s;
  RecentKills kills(clock.function());
  kills.record(system_event(kToken, 7, "kill"));
  clock.now += 61000ms;
  EXPECT_FALSE(kills.affects(viewer(9, 9), 1000ms));  // a lookup now forgets kills over a minute old
  EXPECT_FALSE(kills.affects(viewer(7, 1), 100000ms)) << "kept only the minimum while answers were young";
  // An answer 100 s old was seen: kills are now kept that long.
  kills.record(system_event(kToken, 8, "kill"));
  clock.now += 90000ms;
  EXPECT_FALSE(kills.affects(viewer(9, 9), 1000ms));
  EXPECT_TRUE(kills.affects(viewer(8, 1), 95000ms));
}

// A connection admitted on an answer checked before a kill, and registered after it, is
// ended at registration: the kill found no connection to end.
TEST(RecentKills, AKillRecordedAfterTheMarkIsFoundForItsTokenOrAccountOnly) {
  ManualClock clock;
  RecentKills kills(clock.function());
  AuthInfo other_instance = viewer(7, 100);
  other_instance.tenant = "other";
  const uint64_t before = kills.mark();
  EXPECT_FALSE(kills.killed_after(viewer(7, 100), before));
  kills.record(system_event(kToken, 7, "kill"));
  EXPECT_TRUE(kills.killed_after(viewer(7, 100), before));
  EXPECT_FALSE(kills.killed_after(viewer(8, 100), before)) << "another token of the account";
  EXPECT_FALSE(kills.killed_after(other_instance, before)) << "the same token id in another instance";
  // On the same clock reading: the order of recording decides, not the time.
  const uint64_t checked = kills.mark();
  EXPECT_FALSE(kills.killed_after(viewer(7, 100), checked)) << "a kill the check had seen";
  kills.record(system_event(kAccount, 100, "kill"));
  EXPECT_TRUE(kills.killed_after(viewer(8, 100), checked)) << "the account's kill, after the check";
  EXPECT_FALSE(kills.killed_after(viewer(8, 101), checked));
  kills.record(system_event(kToken, 9, "filters_changed"));
  EXPECT_FALSE(kills.killed_after(viewer(9, 5), checked)) << "only kills count";
}

TEST(RecentKills, OnlyKillsWithAValidIdCount) {
  ManualClock clock;
  RecentKills kills(clock.function());
  kills.record(system_event(kAccount, 300, "filters_changed"));
  kills.record(system_event(kAccount, std::nullopt, "kill"));  // timeline:system:abc
  kills.record(system_event(sluice::v1::SYSTEM_CHANNEL_NONE, std::nullopt, "kill"));
  EXPECT_FALSE(kills.affects(viewer(1, 300), 60000ms));
  EXPECT_FALSE(kills.affects(viewer(300, 0), 60000ms));
}

}  // namespace
}  // namespace sluice::gateway
