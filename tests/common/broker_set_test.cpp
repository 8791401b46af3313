// docs/scale-out.md#brokers: how channels are spread over brokers, and how the
// copies that arrive through two of them become one delivery.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/broker_set.hpp"
#include "common/config_error.hpp"
#include "common/env.hpp"
#include "common/event_deduplicator.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using Clock = EventDeduplicator::Clock;

constexpr int kA = 1, kB = 2, kC = 3;

struct Copies {
  explicit Copies(std::chrono::milliseconds window = 10s) : dedup(window) {}
  EventDeduplicator dedup;
  Clock::time_point now{};
  std::vector<std::string> delivered;
  static EventDeduplicator::Event event(const std::string& channel, const std::string& name, const std::string& payload) {
    auto e = std::make_shared<v1::ChannelEvent>();
    e->set_channel(channel);
    e->set_event(name);
    e->set_payload(payload);
    return e;
  }
  void take(const std::vector<EventDeduplicator::Event>& out) {
    for (const auto& e : out) delivered.push_back(e->channel() + "/" + e->payload());
  }
  void from(int source, const std::string& payload, const std::string& channel = "timeline:public") {
    take(dedup.offer(source, event(channel, "update", payload), now));
  }
  std::vector<std::string> payloads() const {
    std::vector<std::string> out;
    for (const auto& d : delivered) out.push_back(d.substr(d.find('/') + 1));
    return out;
  }
};

TEST(EventDeduplicator, EachMessageOnceWhicheverBrokerIsFirst) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.from(kB, "2");  // B ahead now
  c.from(kA, "2");
  c.from(kA, "3");
  c.from(kB, "3");
  EXPECT_EQ(c.delivered, (std::vector<std::string>{"timeline:public/1", "timeline:public/2", "timeline:public/3"}));
  EXPECT_EQ(c.dedup.dropped(), 3u);
}

TEST(EventDeduplicator, TwoIdenticalPublishesAreBothDelivered) {
  Copies c;
  c.from(kA, "same");
  c.from(kA, "same");
  c.from(kB, "same");
  c.from(kB, "same");
  c.from(kB, "same");  // a third publish, B first this time
  c.from(kA, "same");
  EXPECT_EQ(c.delivered.size(), 3u);
}

TEST(EventDeduplicator, ChannelsAndEventNamesAreApart) {
  Copies c;
  c.from(kA, "x", "timeline:1");
  c.from(kB, "x", "timeline:2");
  EXPECT_EQ(c.delivered.size(), 2u);
  EXPECT_EQ(c.dedup.offer(kA, Copies::event("timeline:1", "delete", "x"), c.now).size(), 1u);
  EXPECT_EQ(c.dedup.offer(kB, Copies::event("timeline:1", "delete", "x"), c.now).size(), 0u);
}

TEST(EventDeduplicator, ABrokerThatDiesLosesNothingWhileTheOtherHolds) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.from(kB, "2");  // A died before relaying 2
  c.from(kB, "3");
  EXPECT_EQ(c.delivered.size(), 3u);
}

// Two identical publishes; A was down for the second, which only B relayed.
Copies after_a_missed_the_second() {
  Copies c;
  c.from(kA, "same");
  c.from(kB, "same");
  c.from(kB, "same");
  return c;
}

TEST(EventDeduplicator, ARestartedBrokerIsAlignedAtItsFirstNewCopy) {
  Copies c = after_a_missed_the_second();
  c.now += 3s;  // B quiet since: A rejoins without a probation
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  EXPECT_FALSE(c.dedup.holding());
  c.from(kA, "new");   // something nobody delivered: A is level, and aligned
  c.from(kA, "same");  // the third publish, A first
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"same", "same", "new", "same"}));
  c.from(kB, "new");
  c.from(kB, "same");
  EXPECT_EQ(c.delivered.size(), 4u);
  // Without the alignment A's copy of the third would count as its second and be dropped
  // (delivered only if B survived to relay it).
  Copies unaligned = after_a_missed_the_second();
  unaligned.from(kA, "new");
  unaligned.from(kA, "same");
  EXPECT_EQ(unaligned.delivered.size(), 3u);
}

// A's broker already held the Redis subscription for other processes, and its Redis
// thread lagged: A's new stream starts with 2 and 3, which B delivered before A rejoined.
// The fault matrix saw thousands of duplicates, and holds stuck for 27 s, when a
// rejoining source was counted as having sent everything delivered: its replays then
// counted as new publishes (delivered twice, or held for a second copy nobody sends).
TEST(EventDeduplicator, ARejoiningBrokerBehindTheOtherSendsReplaysThatAreDropped) {
  Copies c;
  for (const char* p : {"1", "2", "3"}) c.from(kB, p);
  c.from(kA, "1");
  c.take(c.dedup.rejoin(kA, "timeline:public", c.now));  // A's stream reopened, B relaying
  EXPECT_TRUE(c.dedup.holding());
  c.from(kA, "2");  // replays of B's deliveries
  c.from(kA, "3");
  c.from(kB, "4");
  c.from(kA, "4");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4"}));
  c.from(kA, "5");  // beyond: A was behind, so it is ahead of nothing and not held
  EXPECT_FALSE(c.dedup.holding());
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4", "5"}));
  c.from(kB, "5");
  c.from(kB, "6");
  c.from(kA, "6");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));
  EXPECT_EQ(c.dedup.dropped(), 6u);  // A's 1, 2, 3, 4 and 6, B's 5
}

// A rejoined broker that stays behind the other (another zone, a slower path) never
// gets past the delivery log, so its reading stays open until the cap on unresolved
// copies; then every copy so far was a replay, and so are its copies of what the other
// broker delivered meanwhile.
void trailing_rejoin(int lag) {
  Copies c;
  c.from(kA, "0");
  c.from(kB, "0");
  c.take(c.dedup.reopened(kB, {"timeline:public"}, c.now));
  constexpr int kEvents = 1100;  // more than the 1,024 unresolved copies a catch-up keeps
  std::vector<std::string> expected = {"0"};
  for (int i = 1; i <= kEvents + lag; ++i) {
    if (i <= kEvents) {
      c.from(kA, std::to_string(i));
      expected.push_back(std::to_string(i));
    }
    if (i > lag) c.from(kB, std::to_string(i - lag));
  }
  c.now += 3s;
  c.take(c.dedup.release_overdue(c.now));
  EXPECT_EQ(c.payloads(), expected) << "B " << lag << " behind";
  EXPECT_FALSE(c.dedup.holding());
}

// A broker alone (named by DNS, so its deliveries are recorded) whose Redis
// subscription restarts: nobody else delivered anything it could replay, so a new
// publish of the channel's last content is new, and goes out at once.
TEST(EventDeduplicator, ALoneBrokerRestartingItsSubscriptionReplaysNothing) {
  Copies c;
  for (const char* p : {"same", "other", "same"}) c.from(kA, p);
  c.take(c.dedup.resubscribed(kA, "timeline:public", c.now));
  c.from(kA, "same");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"same", "other", "same", "same"}));
  c.from(kA, "next");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"same", "other", "same", "same", "next"}));
  EXPECT_FALSE(c.dedup.holding());
}

// A periodic run (x, y, x, y, ...) leaves a reading open at every place of the period
// until the cap. The broker relayed level with the other: counted as owing none of the
// other's deliveries, its copies of the next publishes go out once the other stops.
TEST(EventDeduplicator, APeriodicRunLeavesARejoinedBrokerOwingNothingItRelayed) {
  Copies c;
  auto both_relay = [&](int periods) {
    for (int i = 0; i < periods; ++i) {
      for (const char* p : {"x", "y"}) {
        c.from(kA, p);
        c.from(kB, p);
      }
    }
  };
  both_relay(5);  // the log holds five periods: B's next copy matches at each
  c.take(c.dedup.reopened(kB, {"timeline:public"}, c.now));
  both_relay(600);  // 1,200 copies: past the 1,024 a catch-up keeps, every reading open
  const size_t before = c.delivered.size();
  EXPECT_EQ(before, 1210u);
  // A stops relaying; B relays the next two publishes.
  c.now += 3s;
  c.from(kB, "x");
  c.from(kB, "y");
  c.take(c.dedup.release_overdue(c.now));
  EXPECT_EQ(c.delivered.size(), before + 2) << "B's copies of new publishes were taken for ones it owed";
}

TEST(EventDeduplicator, ARejoinedBrokerThatStaysBehindSendsOnlyReplays) {
  trailing_rejoin(0);  // each copy right after the other broker's
  trailing_rejoin(3);  // three deliveries behind
}

// The e2e test's shape: every tenth step publishes "same" twice. A's new stream starts
// at the first "same" of a step; where B had got to when A rejoined (`b_delivered`)
// decides which of A's copies are replays.
std::vector<std::string> after_rejoin_within_a_pair(const std::vector<std::string>& b_delivered) {
  Copies c;
  for (const char* p : {"e0", "same", "same", "e1", "e2"}) {
    c.from(kA, p);
    c.from(kB, p);
  }
  for (const auto& p : b_delivered) c.from(kB, p);
  c.take(c.dedup.rejoin(kA, "timeline:public", c.now));
  for (const char* p : {"same", "same", "e3"}) c.from(kA, p);  // A's new stream
  // B catches up with the rest.
  std::vector<std::string> all = {"same", "same", "e3", "e4"};
  for (size_t i = b_delivered.size(); i < all.size(); ++i) c.from(kB, all[i]);
  c.from(kA, "e4");
  c.now += 3s;  // anything still held goes out: a replay taken for new shows as a duplicate
  c.take(c.dedup.release_overdue(c.now));
  auto got = c.payloads();
  return std::vector<std::string>(got.begin() + 5, got.end());
}

TEST(EventDeduplicator, RunsOfIdenticalContentsAreMatchedWhereverTheOtherBrokerIs) {
  const std::vector<std::string> rest = {"same", "same", "e3", "e4"};
  EXPECT_EQ(after_rejoin_within_a_pair({}), rest);
  EXPECT_EQ(after_rejoin_within_a_pair({"same"}), rest);
  EXPECT_EQ(after_rejoin_within_a_pair({"same", "same"}), rest);
  EXPECT_EQ(after_rejoin_within_a_pair({"same", "same", "e3"}), rest);
}

// Both brokers begin the channel at once (a stream of each reopened, or the process
// subscribes again soon after letting go): neither may wait for the other, or both
// hold their copies until the channel falls quiet.
TEST(EventDeduplicator, TwoSourcesRejoiningTogetherDoNotWaitForEachOther) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  c.take(c.dedup.reopened(kB, {"timeline:public"}, c.now));
  c.from(kA, "2");
  c.from(kB, "2");
  c.from(kB, "3");
  c.from(kA, "3");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3"}));
}

TEST(EventDeduplicator, AChannelFollowedAfreshStartsWithoutHolds) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.dedup.forget("timeline:public");  // the process let go of the channel and takes it again
  EXPECT_EQ(c.dedup.remembered(), 0u);
  c.take(c.dedup.rejoin(kA, "timeline:public", c.now));
  c.take(c.dedup.rejoin(kB, "timeline:public", c.now));
  EXPECT_FALSE(c.dedup.holding());
  c.from(kB, "2");
  c.from(kA, "2");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2"}));
}

TEST(EventDeduplicator, ARejoiningBrokerAheadOfTheOtherWaitsForItSoOrderIsKept) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.from(kA, "2");  // B lags behind A; then A restarts while B still has 2, 3, 4 to relay
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  EXPECT_TRUE(c.dedup.holding());
  c.from(kA, "5");  // A's new stream starts at 5: ahead of B
  c.from(kA, "6");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2"}));  // held, not delivered before 3 and 4
  c.from(kB, "2");
  c.from(kB, "3");
  c.from(kB, "4");
  c.from(kB, "5");  // B caught up with A's first: A's copies go out (5 was B's)
  EXPECT_FALSE(c.dedup.holding());
  c.from(kB, "6");
  c.from(kA, "7");
  c.from(kB, "7");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7"}));
  // Without the hold, A's 5 would have gone out before B's 3 and 4.
}

// A's stream fails again while its copies are held (two failures within the limit): the
// copies it holds are still ahead of B, and go out when B catches up with them, before
// what A's third stream carries. Released at the rejoin, 5 and 6 went out before 2.
TEST(EventDeduplicator, ASecondRejoinWhileCopiesAreHeldKeepsThemHeld) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  c.from(kA, "5");  // ahead of B, which has 2, 3 and 4 to relay
  c.from(kA, "6");
  c.now += 500ms;
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1"}));
  c.from(kA, "7");
  for (const char* behind : {"2", "3", "4", "5", "6"}) c.from(kB, behind);
  EXPECT_FALSE(c.dedup.holding_copies());
  c.from(kB, "7");
  c.from(kA, "8");
  c.from(kB, "8");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8"}));
  // With nobody else relaying (B silent for the limit), a rejoin lets held copies go.
  c.from(kA, "9");
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  c.from(kA, "10");
  EXPECT_TRUE(c.dedup.holding_copies());
  c.now += 2s;
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  EXPECT_FALSE(c.dedup.holding_copies());
  EXPECT_EQ(c.payloads().back(), "10");
}

// The other broker keeps relaying but never the copies A holds (its own subscription
// restarted past them): A's rejoin after the limit lets them go, as every rejoin did
// before second rejoins kept them held.
TEST(EventDeduplicator, ARejoinPastTheLimitReleasesWhatTheOtherBrokerNeverRelays) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  c.from(kA, "5");
  c.take(c.dedup.resubscribed(kB, "timeline:public", c.now));  // B missed 2 to 5
  for (const char* later : {"6", "7"}) {
    c.now += 1500ms;
    c.from(kB, later);
    c.take(c.dedup.release_overdue(c.now));
  }
  EXPECT_TRUE(c.dedup.holding_copies()) << "B is still relaying";
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  EXPECT_FALSE(c.dedup.holding_copies());
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "6", "7", "5"}));
}

TEST(EventDeduplicator, HeldCopiesGoOutAtTheLimitWhenTheOtherBrokerStopsRelaying) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.take(c.dedup.rejoin(kA, "timeline:public", c.now));  // A takes the channel over from B
  c.from(kA, "2");  // B never relays 2: it let go of the channel
  c.from(kA, "3");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1"}));
  c.now += 1s;
  c.take(c.dedup.release_overdue(c.now));
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1"}));
  c.now += 1s;  // the 2 s limit
  c.take(c.dedup.release_overdue(c.now));
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3"}));
  c.from(kA, "4");
  EXPECT_EQ(c.payloads().back(), "4");
}

// A broker that is away is tried every second, and each attempt opens a probation for
// each of its channels against the broker that keeps relaying them: none ends by its
// limit. Nothing is held, so the supervisor need not look every 100 ms (it scanned
// every channel under the delivery lock for as long as the broker stayed away). While
// the channel is busy the probation stays (its broker may be connected and not yet
// relaying, behind the other: its first copies must wait); once nobody relays the
// channel for a window, it goes with the channel (it kept channels nobody follows any
// more for good).
TEST(EventDeduplicator, ProbationsOfABrokerThatIsAwayHoldNothingAndGoWithTheirQuietChannel) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  for (int attempt = 0; attempt < 5; ++attempt) {
    c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));  // A's broker does not answer
    c.now += 1s;
    c.from(kB, std::to_string(attempt + 2));
    EXPECT_TRUE(c.dedup.holding());
    EXPECT_FALSE(c.dedup.holding_copies()) << "an empty probation counted as held copies";
  }
  for (int i = 0; i < 20; ++i) {  // B relays on, A stays away: two 10 s windows (a sweep's period)
    c.now += 1s;
    c.from(kB, "later " + std::to_string(i));
  }
  EXPECT_TRUE(c.dedup.holding()) << "a probation was dropped from a channel still relayed";
  EXPECT_FALSE(c.dedup.holding_copies());
  c.now += 25s;  // the channel quiet for two windows; an event elsewhere runs the sweep
  c.from(kB, "elsewhere", "timeline:hashtag:other");
  EXPECT_FALSE(c.dedup.holding()) << "the away broker's probation outlived its quiet channel";

  // The channel busy again, and A answers at last, ahead of B: its copies are held, and
  // counted as such, until B catches up; each event once, in order.
  c.from(kB, "again");
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  c.from(kA, "ahead");
  EXPECT_TRUE(c.dedup.holding_copies());
  c.from(kB, "ahead");
  EXPECT_FALSE(c.dedup.holding_copies());
  const auto payloads = c.payloads();
  ASSERT_GE(payloads.size(), 3u);
  EXPECT_EQ(std::vector<std::string>(payloads.end() - 3, payloads.end()),
            (std::vector<std::string>{"elsewhere", "again", "ahead"}));
}

TEST(EventDeduplicator, HeldCopiesWaitForAnotherBrokerThatIsStillRelayingHoweverLate) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  c.from(kA, "5");  // A's new stream is 3 publishes ahead of B
  for (const char* behind : {"2", "3"}) {
    c.now += 1500ms;  // B is slow, but still relaying
    c.from(kB, behind);
    c.take(c.dedup.release_overdue(c.now));
  }
  EXPECT_TRUE(c.dedup.holding()) << "past the limit, but B is still relaying";
  c.from(kB, "4");
  c.from(kB, "5");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4", "5"}));
  EXPECT_FALSE(c.dedup.holding());
}

// A holds copies until B catches up, and B's own Redis subscription restarts meanwhile:
// B never relays 2 and 3. Its first copy A also holds shows B is past them.
TEST(EventDeduplicator, HeldCopiesGoOutWhenTheOtherBrokerRelaysOneOfThemHavingMissedTheFirst) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  for (const char* ahead : {"2", "3", "4"}) c.from(kA, ahead);
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1"}));
  c.take(c.dedup.resubscribed(kB, "timeline:public", c.now));  // B missed 2 and 3
  c.from(kB, "4");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4"})) << "A's held copies stayed held";
  EXPECT_FALSE(c.dedup.holding());
  c.from(kA, "5");
  c.from(kB, "5");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

// The same content more than once: M, M, N, M are published. A's stream is reopened
// after the first M and starts at N, so its copy of the third M counts as its second.
// B relaying the second M is not past A's first held copy (N): A's copies wait for B's N.
TEST(EventDeduplicator, ARepeatedContentDoesNotReleaseHeldCopiesOutOfOrder) {
  Copies c;
  c.from(kA, "M");
  c.from(kB, "M");
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));
  c.from(kA, "N");  // A's new stream: N, then the third M
  c.from(kA, "M");
  c.from(kB, "M");  // B's second M
  c.from(kB, "N");
  c.from(kB, "M");  // B's third M
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"M", "M", "N", "M"}));
  EXPECT_FALSE(c.dedup.holding());
}

TEST(EventDeduplicator, ABrokerTakingOverOneChannelIsAlignedOnThatChannel) {
  Copies c;
  c.from(kA, "same", "timeline:9");
  c.from(kB, "same", "timeline:9");
  c.take(c.dedup.rejoin(kC, "timeline:9", c.now));  // C now holds timeline:9 too, then A lets go
  c.from(kC, "same", "timeline:9");
  c.from(kB, "same", "timeline:9");
  EXPECT_EQ(c.delivered.size(), 2u);
}

// Redis restarted: both brokers' subscriptions come back, B's before A's, and event 22
// was published in between, so only B carries it; A's stream is the faster one. Both
// brokers' streams were quiet for the outage, so without B's marker counting as
// relaying, A would not be held and 23 would go out before 22 (the fault matrix saw it).
TEST(EventDeduplicator, AfterARedisRestartTheLaterSubscriptionWaitsForTheEarlierOne) {
  Copies c;
  for (const char* p : {"20", "21"}) {
    c.from(kA, p);
    c.from(kB, p);
  }
  c.now += 5s;  // Redis away
  c.take(c.dedup.resubscribed(kB, "timeline:public", c.now));
  c.now += 300ms;
  c.take(c.dedup.resubscribed(kA, "timeline:public", c.now));
  c.now += 200ms;
  c.from(kA, "23");  // A is faster, and never had 22
  c.from(kB, "22");
  c.from(kB, "23");
  c.from(kB, "24");
  c.from(kA, "24");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"20", "21", "22", "23", "24"}));
  EXPECT_FALSE(c.dedup.holding());
}

// A quiet channel: the later subscriber's copies are not held for long when the earlier
// one has nothing to relay (they go at the hold limit, once the other is quiet too).
TEST(EventDeduplicator, AfterARedisRestartNothingIsHeldLongerThanTheLimit) {
  Copies c;
  c.take(c.dedup.resubscribed(kB, "timeline:public", c.now));
  c.take(c.dedup.resubscribed(kA, "timeline:public", c.now));
  c.from(kA, "1");
  EXPECT_TRUE(c.payloads().empty());
  c.now += 2s;
  c.take(c.dedup.release_overdue(c.now));
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1"}));
  c.from(kB, "1");  // late copy: a duplicate
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1"}));
}

// The same after an outage longer than the window: the first copy runs the sweep, and the
// channel, quiet all that time, must not go with the probation the restart just opened.
TEST(EventDeduplicator, AfterALongRedisOutageTheFirstSweepKeepsTheRestartsProbation) {
  Copies c;
  c.from(kA, "0");
  c.from(kB, "0");
  c.now += 30s;  // Redis away; nothing relayed
  c.take(c.dedup.resubscribed(kB, "timeline:public", c.now));
  c.take(c.dedup.resubscribed(kA, "timeline:public", c.now));
  c.from(kA, "2");  // A's subscription came back first and carries a later message
  EXPECT_EQ(c.payloads(), std::vector<std::string>{"0"}) << "A's copy overtook what B may still carry";
  c.from(kB, "1");
  c.from(kB, "2");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"0", "1", "2"}));
}

// SLUICE_BROKER_DEDUP_WINDOW_MS may be as short as the 2 s hold limit: a sweep can then
// come while a probation opened against a source that has just fallen silent is still
// within its limit, on a channel with nothing left to remember. It must stay.
TEST(EventDeduplicator, AShortWindowKeepsAProbationWithinItsLimit) {
  Copies c(2s);
  c.from(kB, "0");
  c.now += 1900ms;
  c.take(c.dedup.reopened(kA, {"timeline:public"}, c.now));  // held against B until 3.9 s
  c.now += 200ms;
  c.from(kB, "x", "timeline:hashtag:other");  // the sweep, with timeline:public empty
  c.from(kA, "2");  // A came back ahead of B
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"0", "x"})) << "A's copy overtook what B may still carry";
  c.from(kB, "1");
  c.from(kB, "2");
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"0", "x", "1", "2"}));
}

// Three brokers: each channel is on two, so a broker whose stream reopens carries only
// some of the channels the others relay. Held against them on the rest, it would wait
// for as long as they relay, the supervisor scanning every channel ten times a second.
TEST(EventDeduplicator, AReopenedStreamRejoinsOnlyTheChannelsItCarries) {
  Copies c;
  c.from(kA, "1", "timeline:1");  // A and B hold timeline:1; A and C timeline:2
  c.from(kB, "1", "timeline:1");
  c.from(kA, "2", "timeline:2");
  c.from(kC, "2", "timeline:2");
  c.take(c.dedup.reopened(kC, {"timeline:2"}, c.now));
  EXPECT_TRUE(c.dedup.holding());  // on timeline:2, against A
  c.now += 3s;  // timeline:2 quiet since; A and B go on relaying timeline:1
  c.from(kA, "3", "timeline:1");
  c.from(kB, "3", "timeline:1");
  c.take(c.dedup.release_overdue(c.now));
  EXPECT_FALSE(c.dedup.holding_copies());
  // C's probation on timeline:2 is past its limit with A silent there: C's next copy
  // ends it and goes out at once.
  c.from(kC, "4", "timeline:2");
  EXPECT_FALSE(c.dedup.holding());
  EXPECT_EQ(c.payloads(), (std::vector<std::string>{"1", "2", "3", "4"}));
}

// The system channels reach every stream (the broker marks them): a reopened stream
// rejoins them too, as it may be ahead of or behind the others there as anywhere.
TEST(EventDeduplicator, AReopenedStreamRejoinsTheSystemChannels) {
  Copies c;
  auto token_killed = std::make_shared<v1::ChannelEvent>();
  token_killed->set_channel("timeline:access_token:7");
  token_killed->set_event("kill");
  token_killed->set_system_channel(v1::SYSTEM_CHANNEL_ACCESS_TOKEN);
  EventDeduplicator::Event kill = token_killed;
  c.take(c.dedup.offer(kA, kill, c.now));
  c.take(c.dedup.offer(kC, kill, c.now));
  c.take(c.dedup.reopened(kC, {}, c.now));
  EXPECT_TRUE(c.dedup.holding());
  c.take(c.dedup.offer(kC, kill, c.now));  // a replay of what A delivered: dropped
  c.now += 3s;
  c.take(c.dedup.release_overdue(c.now));
  EXPECT_EQ(c.delivered.size(), 1u);
}

TEST(EventDeduplicator, ThreeCopiesOfABroadcastAreOne) {
  Copies c;
  for (int source : {kA, kB, kC}) c.from(source, "", "system");
  EXPECT_EQ(c.delivered.size(), 1u);
}

// A busy channel (a home timeline) keeps its deliveries of the window, not thousands:
// over 50,000 such channels the difference is gigabytes.
TEST(EventDeduplicator, TheDeliveryLogKeepsOnlyTheWindow) {
  Copies c;
  for (int i = 0; i < 3000; ++i) {
    c.from(kA, std::to_string(i));
    c.from(kB, std::to_string(i));
  }
  c.now += 6s;
  for (const char* recent : {"r1", "r2", "r3"}) {
    c.from(kA, recent);
    c.from(kB, recent);
  }
  EXPECT_EQ(c.dedup.logged(), 3003u);
  c.now += 5s;
  c.from(kA, "new");  // the sweep runs on the way: the first 3,000 are past the window
  EXPECT_EQ(c.dedup.logged(), 4u);
  c.from(kB, "new");
  EXPECT_EQ(c.delivered.size(), 3004u);
}

TEST(EventDeduplicator, ForgetsContentsNotSeenForTheWindow) {
  Copies c;
  c.from(kA, "1");
  c.from(kB, "1");
  EXPECT_EQ(c.dedup.remembered(), 1u);
  c.now += 11s;
  c.from(kA, "2");  // the sweep runs on the way and forgets "1"
  EXPECT_EQ(c.dedup.remembered(), 1u);
  // A copy arriving later than the window counts as new: the window must exceed any
  // delay difference between two brokers.
  c.now += 11s;
  c.from(kB, "2");
  EXPECT_EQ(c.delivered.size(), 3u);
}

std::vector<BrokerTarget> brokers(int n) {
  std::vector<BrokerTarget> out;
  for (int i = 0; i < n; ++i) out.push_back({"10.0.0." + std::to_string(i + 1) + ":50051", ""});
  return out;
}

// Streams the test drives by hand in place of brokers: each opened stream's receiver is
// kept under its broker's address, and events are reported through it.
class HandDrivenBrokers {
 public:
  BrokerSet::StreamFactory factory() {
    return [this](const BrokerTarget& target) -> BrokerStreamOpener {
      return [this, address = target.address](BrokerStream::Receiver& receiver) {
        return std::make_unique<Stream>(*this, address, receiver);
      };
    };
  }
  // Waits until `address` has an open stream that asked for `channel`.
  bool wait_subscribed(const std::string& address, const std::string& channel) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] {
      auto it = streams_.find(address);
      return it != streams_.end() && it->second.channels.count(channel) > 0;
    });
  }
  // The broker ends `address`'s stream (a restart): the process opens another.
  void end_stream(const std::string& address) {
    BrokerStream::Receiver* receiver;
    {
      std::lock_guard lock(mutex_);
      receiver = streams_.at(address).receiver;
      streams_.erase(address);
    }
    receiver->on_done();
  }
  size_t largest_subscribe(const std::string& address) {
    std::lock_guard lock(mutex_);
    return streams_.at(address).largest_subscribe;
  }
  void relay(const std::string& address, const std::string& channel, const std::string& payload) {
    BrokerStream::Receiver* receiver;
    {
      std::lock_guard lock(mutex_);
      receiver = streams_.at(address).receiver;
    }
    receiver->on_events({Copies::event(channel, "update", payload)});
  }

 private:
  struct Open {
    BrokerStream::Receiver* receiver = nullptr;
    std::set<std::string> channels;
    size_t largest_subscribe = 0;  // bytes
  };
  class Stream final : public BrokerStream {
   public:
    Stream(HandDrivenBrokers& brokers, std::string address, Receiver& receiver)
        : brokers_(brokers), address_(std::move(address)), receiver_(receiver) {}
    ~Stream() override {
      if (ending_.joinable()) ending_.join();
    }
    bool start(std::vector<v1::GatewayMessage> initial) override {
      std::lock_guard lock(brokers_.mutex_);
      auto& open = brokers_.streams_[address_];
      open.receiver = &receiver_;
      for (const auto& message : initial) note(open, message);
      brokers_.changed_.notify_all();
      return true;
    }
    void send(v1::GatewayMessage message) override {
      std::lock_guard lock(brokers_.mutex_);
      auto open = brokers_.streams_.find(address_);
      if (open == brokers_.streams_.end()) return;  // cancelled: nobody reads it
      note(open->second, message);
      brokers_.changed_.notify_all();
    }
    void cancel() override {
      {
        std::lock_guard lock(brokers_.mutex_);
        brokers_.streams_.erase(address_);
      }
      if (!ending_.joinable()) ending_ = std::thread([this] { receiver_.on_done(); });
    }

   private:
    static void note(Open& open, const v1::GatewayMessage& message) {
      if (!message.has_subscribe()) return;
      open.channels.insert(message.subscribe().channels().begin(), message.subscribe().channels().end());
      open.largest_subscribe = std::max(open.largest_subscribe, message.ByteSizeLong());
    }
    HandDrivenBrokers& brokers_;
    std::string address_;
    Receiver& receiver_;
    std::thread ending_;
  };

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Open> streams_;
};

// A broker named by DNS is alone for a while (its peer's pod restarting) and relays
// `alone`; then another joins under a new address, and the two relay `steps` (1: the
// first broker, 2: the newcomer). What the process delivers.
std::vector<std::string> after_a_broker_joins_a_lone_one(const std::vector<std::string>& alone,
                                                         const std::vector<std::pair<int, std::string>>& steps) {
  const std::string channel = "timeline:public";
  const std::string first = "10.0.0.1:50051", second = "10.0.0.2:50051";
  HandDrivenBrokers brokers;
  std::mutex resolved_mutex;
  std::vector<std::string> resolved = {first};  // as a resolver answers: address and port
  std::mutex got_mutex;
  std::vector<std::string> got;
  BrokerSetOptions options;
  options.addresses = "dns:///brokers.test:50051";
  options.resolve_interval = 50ms;
  BrokerSet set(
      options, brokers.factory(), "membership-unit-test",
      [&](BrokerLink::Events events) {
        std::lock_guard lock(got_mutex);
        for (const auto& event : events) got.push_back(event->payload());
      },
      {},
      [&](const std::string&, const std::string&) -> std::optional<std::vector<std::string>> {
        std::lock_guard lock(resolved_mutex);
        return resolved;
      });
  set.start();
  set.acquire(channel, false);
  EXPECT_TRUE(brokers.wait_subscribed(first, channel));
  for (const auto& payload : alone) brokers.relay(first, channel, payload);
  {
    std::lock_guard lock(resolved_mutex);
    resolved = {first, second};
  }
  EXPECT_TRUE(brokers.wait_subscribed(second, channel)) << "the channel never reached the new broker";
  for (const auto& [broker, payload] : steps) brokers.relay(broker == 1 ? first : second, channel, payload);
  set.stop();
  std::lock_guard lock(got_mutex);
  return got;
}

// A stream names every channel it holds when it opens: in messages of about 1 MiB, not
// one that could pass what the broker accepts (64 MiB) and be refused at every reopening.
TEST(BrokerSetMembership, AnOpeningStreamNamesItsChannelsInBoundedMessages) {
  HandDrivenBrokers brokers;
  BrokerSetOptions options;
  options.addresses = "10.0.0.1:50051";
  BrokerSet set(options, brokers.factory(), "opening-unit-test", [](BrokerLink::Events) {});
  std::vector<std::string> channels;
  set.start();
  for (int i = 0; i < 6; ++i) {  // 2.4 MiB of long hashtags
    channels.push_back("timeline:hashtag:" + std::to_string(i) + std::string(400 << 10, 'x'));
    set.acquire(channels.back(), true);
  }
  for (const auto& channel : channels) ASSERT_TRUE(brokers.wait_subscribed(options.addresses, channel));
  brokers.end_stream(options.addresses);  // the next stream opens holding all six
  for (const auto& channel : channels) ASSERT_TRUE(brokers.wait_subscribed(options.addresses, channel));
  EXPECT_LE(brokers.largest_subscribe(options.addresses), (1u << 20) + 4096);
  EXPECT_GE(brokers.largest_subscribe(options.addresses), 2u * (400u << 10));  // not one message per channel
  set.stop();
}

TEST(BrokerSetMembership, ABrokerJoiningALoneOneIsMatchedAgainstWhatThatOneDeliveredAlone) {
  const std::vector<std::string> all = {"e1", "e2", "e3", "e4", "e5"};
  // The newcomer subscribed before e3 was published, which the first had delivered
  // alone: its e3 is a replay.
  EXPECT_EQ(after_a_broker_joins_a_lone_one({"e1", "e2", "e3"}, {{2, "e3"}, {2, "e4"}, {1, "e4"}, {2, "e5"}, {1, "e5"}}),
            all);
  // The newcomer subscribed after e3 was published, and runs ahead of the first, which
  // has yet to relay e3: its copies wait for the first's.
  EXPECT_EQ(after_a_broker_joins_a_lone_one({"e1", "e2"}, {{2, "e4"}, {2, "e5"}, {1, "e3"}, {1, "e4"}, {1, "e5"}}), all);
}

TEST(Placement, TwoDistinctBrokersTheSameEverywhere) {
  auto three = brokers(3);
  for (int i = 0; i < 200; ++i) {
    std::string channel = "timeline:" + std::to_string(i);
    auto placed = place_channel(channel, three, 2);
    ASSERT_EQ(placed.size(), 2u);
    EXPECT_NE(placed[0], placed[1]);
    EXPECT_EQ(placed, place_channel(channel, three, 2));  // deterministic
  }
  EXPECT_EQ(place_channel("timeline:1", brokers(1), 2).size(), 1u);
  EXPECT_TRUE(place_channel("timeline:1", {}, 2).empty());
}

TEST(Placement, SpreadsEvenlyAndMovesOnlyWhatANewBrokerTakes) {
  auto three = brokers(3), four = brokers(4);
  std::map<size_t, int> load;
  int moved = 0, total = 3000;
  for (int i = 0; i < total; ++i) {
    std::string channel = "timeline:" + std::to_string(i);
    auto before = place_channel(channel, three, 2);
    for (size_t b : before) ++load[b];
    auto after = place_channel(channel, four, 2);
    std::set<std::string> was, is;
    for (size_t b : before) was.insert(three[b].address);
    for (size_t b : after) is.insert(four[b].address);
    for (const auto& address : is) {
      if (was.count(address)) continue;
      ++moved;
      EXPECT_EQ(address, four[3].address) << channel << ": only the new broker gains channels";
    }
  }
  // Each of 3 brokers holds about 2/3 of the channels.
  for (auto [broker, count] : load) EXPECT_NEAR(count, total * 2 / 3, total / 10) << broker;
  // The fourth takes about half of the channels' one replica each (2/4 of them).
  EXPECT_NEAR(moved, total / 2, total / 10);
}

TEST(BrokerAddresses, ItemsAndDnsNames) {
  EXPECT_EQ(broker_address_items("127.0.0.1:50051"), std::vector<std::string>{"127.0.0.1:50051"});
  EXPECT_EQ(broker_address_items("a:1, b:2"), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_THROW(broker_address_items("a:1,,b:2"), ConfigError);
  EXPECT_THROW(broker_address_items(""), ConfigError);
  EXPECT_THROW(broker_address_items("dns:///sluice-broker"), ConfigError);

  Resolver fake = [](const std::string& host, const std::string& port) -> std::optional<std::vector<std::string>> {
    if (host != "sluice-broker") return std::nullopt;
    return std::vector<std::string>{"ipv4:10.1.0.1:" + port, "ipv4:10.1.0.2:" + port};
  };
  auto plain = expand_broker_item("broker-0:50051", fake);
  ASSERT_TRUE(plain);
  EXPECT_EQ(*plain, (std::vector<BrokerTarget>{{"broker-0:50051", ""}}));
  auto named = expand_broker_item("dns:///sluice-broker:50051", fake);
  ASSERT_TRUE(named);
  EXPECT_EQ(*named, (std::vector<BrokerTarget>{{"ipv4:10.1.0.1:50051", "sluice-broker"},
                                               {"ipv4:10.1.0.2:50051", "sluice-broker"}}));
  EXPECT_FALSE(expand_broker_item("dns:///unknown:50051", fake));

  // Dual stack: two pods, each by an IPv4 and an IPv6 address, are two brokers, not four
  // (else a channel's two replicas could be one pod); IPv6 alone is kept as it is.
  Resolver dual = [](const std::string& host, const std::string& port) -> std::optional<std::vector<std::string>> {
    if (host == "v6-only") return std::vector<std::string>{"ipv6:[fd00::1]:" + port, "ipv6:[fd00::2]:" + port};
    return std::vector<std::string>{"ipv4:10.1.0.1:" + port, "ipv4:10.1.0.2:" + port, "ipv6:[fd00::1]:" + port,
                                    "ipv6:[fd00::2]:" + port};
  };
  EXPECT_EQ(*expand_broker_item("dns:///sluice-broker:50051", dual),
            (std::vector<BrokerTarget>{{"ipv4:10.1.0.1:50051", "sluice-broker"},
                                       {"ipv4:10.1.0.2:50051", "sluice-broker"}}));
  EXPECT_EQ(*expand_broker_item("dns:///v6-only:50051", dual),
            (std::vector<BrokerTarget>{{"ipv6:[fd00::1]:50051", "v6-only"}, {"ipv6:[fd00::2]:50051", "v6-only"}}));
}

TEST(BrokerAddresses, SystemResolverFindsLoopback) {
  auto found = system_resolver()("127.0.0.1", "50051");
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, std::vector<std::string>{"ipv4:127.0.0.1:50051"});
}

TEST(BrokerAddresses, SettingsFromTheEnvironment) {
  auto options = BrokerSetOptions::from_env(Env::from_map({{"SLUICE_BROKER_ADDR", "a:1,b:2"},
                                                            {"SLUICE_BROKER_DEDUP_WINDOW_MS", "3000"}}),
                                            "127.0.0.1:50051");
  EXPECT_EQ(options.addresses, "a:1,b:2");
  EXPECT_EQ(options.replicas, 2u);
  EXPECT_EQ(options.dedup_window, 3000ms);
  EXPECT_EQ(BrokerSetOptions::from_env(Env::from_map({}), "127.0.0.1:50051").addresses, "127.0.0.1:50051");
  EXPECT_THROW(BrokerSetOptions::from_env(Env::from_map({{"SLUICE_BROKER_REPLICAS", "0"}}), "x:1"), ConfigError);
  EXPECT_THROW(BrokerSetOptions::from_env(Env::from_map({{"SLUICE_BROKER_ADDR", "a:1,"}}), "x:1"), ConfigError);
  // 0 would forget every first copy before its second arrived: each event twice.
  EXPECT_THROW(BrokerSetOptions::from_env(Env::from_map({{"SLUICE_BROKER_DEDUP_WINDOW_MS", "0"}}), "x:1"), ConfigError);
  EXPECT_THROW(BrokerSetOptions::from_env(Env::from_map({{"SLUICE_BROKER_DEDUP_WINDOW_MS", "1999"}}), "x:1"),
               ConfigError);
  EXPECT_EQ(BrokerSetOptions::from_env(Env::from_map({{"SLUICE_BROKER_DEDUP_WINDOW_MS", "2000"}}), "x:1").dedup_window,
            2000ms);
}

}  // namespace
}  // namespace sluice
