// The keep-alive schedule of gateway/heartbeat_wheel.hpp on a hand-moved clock
// (docs/protocol.md#sse-heartbeat, docs/protocol.md#keep-alive-and-close).
#include "gateway/heartbeat_wheel.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

struct Item {
  std::string name;
  WheelPlace wheel_place;
};

struct Beats {
  std::map<std::string, int> count;
  void operator()(Item& item) { ++count[item.name]; }
};

const HeartbeatWheel<Item>::TimePoint t0{std::chrono::hours(1000)};

TEST(HeartbeatWheel, AnSseClientBeatsOncePerPeriodStartingAPeriodAfterItCame) {
  HeartbeatWheel<Item> wheel(15, 10, t0);
  Item a{"a", {}};
  wheel.add_beating(a);
  Beats beats;
  wheel.advance(t0 + 14s, std::ref(beats));
  EXPECT_EQ(beats.count["a"], 0);
  wheel.advance(t0 + 15s, std::ref(beats));
  EXPECT_EQ(beats.count["a"], 1);
  wheel.advance(t0 + 29s, std::ref(beats));
  EXPECT_EQ(beats.count["a"], 1);
  wheel.advance(t0 + 30s, std::ref(beats));
  EXPECT_EQ(beats.count["a"], 2);
}

TEST(HeartbeatWheel, ClientsThatCameAtDifferentSecondsBeatAtDifferentSeconds) {
  HeartbeatWheel<Item> wheel(15, 10, t0);
  Item early{"early", {}}, late{"late", {}};
  wheel.add_beating(early);
  Beats beats;
  wheel.advance(t0 + 5s, std::ref(beats));
  wheel.add_beating(late);
  wheel.advance(t0 + 15s, std::ref(beats));
  EXPECT_EQ(beats.count["early"], 1);
  EXPECT_EQ(beats.count["late"], 0);
  wheel.advance(t0 + 19s, std::ref(beats));
  EXPECT_EQ(beats.count["late"], 0);
  wheel.advance(t0 + 20s, std::ref(beats));
  EXPECT_EQ(beats.count["late"], 1);
  EXPECT_EQ(beats.count["early"], 1);
}

TEST(HeartbeatWheel, WebSocketsArePingedTogetherEveryPingPeriod) {
  HeartbeatWheel<Item> wheel(15, 10, t0);
  Item w1{"w1", {}}, w2{"w2", {}};
  wheel.add_pinged(w1);
  Beats beats;
  wheel.advance(t0 + 3s, std::ref(beats));
  wheel.add_pinged(w2);
  wheel.advance(t0 + 9s, std::ref(beats));
  EXPECT_TRUE(beats.count.empty());
  wheel.advance(t0 + 10s, std::ref(beats));
  EXPECT_EQ(beats.count["w1"], 1);
  EXPECT_EQ(beats.count["w2"], 1);
  wheel.advance(t0 + 20s, std::ref(beats));
  EXPECT_EQ(beats.count["w1"], 2);
}

TEST(HeartbeatWheel, ARemovedItemIsNotBeatenAndTheOthersKeepTheirPlaces) {
  HeartbeatWheel<Item> wheel(15, 10, t0);
  Item a{"a", {}}, b{"b", {}}, c{"c", {}}, w{"w", {}};
  wheel.add_beating(a);
  wheel.add_beating(b);
  wheel.add_beating(c);
  wheel.add_pinged(w);
  wheel.remove_beating(a);  // c moves into a's slot
  wheel.remove_beating(c);  // ... and must be found there
  wheel.remove_pinged(w);
  wheel.remove_pinged(w);  // twice is harmless
  Beats beats;
  wheel.advance(t0 + 15s, std::ref(beats));
  EXPECT_EQ(beats.count, (std::map<std::string, int>{{"b", 1}}));
}

TEST(HeartbeatWheel, ABeatMayRemoveItemsOfTheSameTick) {
  HeartbeatWheel<Item> wheel(15, 10, t0);
  Item a{"a", {}}, b{"b", {}};
  wheel.add_beating(a);
  wheel.add_beating(b);
  Beats beats;
  wheel.advance(t0 + 15s, [&](Item& item) {
    beats(item);
    wheel.remove_beating(item);  // as a heartbeat that finds its client gone
  });
  EXPECT_EQ(beats.count, (std::map<std::string, int>{{"a", 1}, {"b", 1}}));
  wheel.advance(t0 + 30s, std::ref(beats));
  EXPECT_EQ(beats.count, (std::map<std::string, int>{{"a", 1}, {"b", 1}}));
}

TEST(HeartbeatWheel, AStallCatchesUpOneRevolutionNotEveryMissedSecond) {
  HeartbeatWheel<Item> wheel(15, 10, t0);
  Item a{"a", {}}, w{"w", {}};
  wheel.add_beating(a);
  wheel.add_pinged(w);
  Beats beats;
  wheel.advance(t0 + 1000s, std::ref(beats));
  EXPECT_EQ(beats.count["a"], 1);
  EXPECT_EQ(beats.count["w"], 1);
  EXPECT_EQ(wheel.next_tick(), t0 + 1001s);
  // Then the schedule goes on from there: a's next beat is a period after the last.
  wheel.advance(t0 + 1014s, std::ref(beats));
  EXPECT_EQ(beats.count["a"], 1);
  wheel.advance(t0 + 1015s, std::ref(beats));
  EXPECT_EQ(beats.count["a"], 2);
}

TEST(HeartbeatWheel, NoTimePassedMeansNoBeat) {
  HeartbeatWheel<Item> wheel(1, 1, t0);
  Item a{"a", {}}, w{"w", {}};
  wheel.add_beating(a);
  wheel.add_pinged(w);
  Beats beats;
  wheel.advance(t0 + 999ms, std::ref(beats));
  EXPECT_TRUE(beats.count.empty());
  wheel.advance(t0 + 1s, std::ref(beats));
  EXPECT_EQ(beats.count["a"], 1);
  EXPECT_EQ(beats.count["w"], 1);
}

}  // namespace
}  // namespace sluice::gateway
