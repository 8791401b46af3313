// ChannelWorkers: which workers an event goes to (gateway/channel_workers.hpp).
#include <gtest/gtest.h>

#include "common/config_error.hpp"
#include "common/env.hpp"
#include "gateway/channel_workers.hpp"
#include "gateway/gateway_config.hpp"

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

// A worker past the set's size would throw at the first event every worker gets (a
// system channel's): a host with more CPUs than that gets as many workers as it names.
TEST(ChannelWorkers, TheDefaultWorkerCountNeverPassesWhatTheSetCanName) {
  EXPECT_EQ(default_worker_threads(384), ChannelWorkers::kMaxWorkers);
  EXPECT_EQ(default_worker_threads(ChannelWorkers::kMaxWorkers), ChannelWorkers::kMaxWorkers);
  EXPECT_EQ(default_worker_threads(8), 8u);
  EXPECT_EQ(default_worker_threads(0), 1u);  // the count could not be read
  const unsigned cpus = usable_cpus();
  EXPECT_GE(cpus, 1u);
  EXPECT_EQ(GatewayConfig::from_env(Env::from_map({})).threads, default_worker_threads(cpus));
  EXPECT_EQ(GatewayConfig::from_env(Env::from_map({{"SLUICE_GATEWAY_THREADS", "256"}})).threads, 256u);
  EXPECT_THROW(GatewayConfig::from_env(Env::from_map({{"SLUICE_GATEWAY_THREADS", "257"}})), ConfigError);
  ChannelWorkers workers;
  workers.add("timeline:1", ChannelWorkers::kMaxWorkers - 1);
  EXPECT_TRUE(workers.of("timeline:1").test(ChannelWorkers::kMaxWorkers - 1));
}

}  // namespace
}  // namespace sluice::gateway
