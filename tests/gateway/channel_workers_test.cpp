// ChannelWorkers: which workers an event goes to (gateway/channel_workers.hpp).
#include <gtest/gtest.h>

#include "gateway/channel_workers.hpp"

namespace sluice::gateway {
namespace {

TEST(ChannelWorkers, AnEventGoesOnlyToWorkersWithListeners) {
  ChannelWorkers workers;
  EXPECT_TRUE(workers.of("timeline:1").none());
  workers.add("timeline:1", 0);
  workers.add("timeline:1", 255);
  workers.add("timeline:public", 1);
  auto of_one = workers.of("timeline:1");
  EXPECT_EQ(of_one.count(), 2u);
  EXPECT_TRUE(of_one.test(0));
  EXPECT_TRUE(of_one.test(255));
  EXPECT_FALSE(of_one.test(1));
  EXPECT_EQ(workers.of("timeline:public").count(), 1u);
  EXPECT_TRUE(workers.of("timeline:2").none());
}

TEST(ChannelWorkers, AWorkersLastListenerLeavingTakesOnlyThatWorkerOff) {
  ChannelWorkers workers;
  workers.add("timeline:1", 0);
  workers.add("timeline:1", 1);
  workers.remove("timeline:1", 0);
  EXPECT_EQ(workers.of("timeline:1").count(), 1u);
  EXPECT_TRUE(workers.of("timeline:1").test(1));
  workers.remove("timeline:1", 1);
  EXPECT_TRUE(workers.of("timeline:1").none());
  workers.remove("timeline:1", 1);  // twice, or never added: harmless
  workers.remove("timeline:9", 3);
  EXPECT_TRUE(workers.of("timeline:9").none());
}

}  // namespace
}  // namespace sluice::gateway
