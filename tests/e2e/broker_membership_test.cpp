// docs/scale-out.md#brokers: brokers join and leave a process's set as a DNS name
// re-resolves (here a resolver the test controls, in front of real sluice-broker
// processes and the suite's Redis). Channels move to their new brokers, the old ones
// let go after the handover, and the events published meanwhile arrive once each, in
// order.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <mutex>

#include "common/broker_set.hpp"
#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

struct Broker {
  std::string address;
  int admin_port;
  std::unique_ptr<Process> process;

  long long metric(const std::string& name) const {
    auto body = http_request(admin_port, "GET", "/metrics").body;
    size_t at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
  }
};

Broker start_broker(const TempDir& dir, int n) {
  Broker broker{"127.0.0.1:" + std::to_string(free_port()), free_port(), nullptr};
  broker.process = std::make_unique<Process>(
      std::vector<std::string>{bin_dir() + "/sluice-broker"},
      std::map<std::string, std::string>{{"REDIS_URL", suite_redis().url()},
                                         {"SLUICE_BROKER_LISTEN", broker.address},
                                         {"SLUICE_BROKER_ADMIN_LISTEN", "127.0.0.1:" + std::to_string(broker.admin_port)},
                                         {"LOG_LEVEL", "info"}},
      dir.path() + "/broker" + std::to_string(n) + ".log");
  return broker;
}

TEST(BrokerMembership, ChannelsMoveAsBrokersJoinAndLeaveWithoutLossOrDuplicates) {
  TempDir dir;
  std::vector<Broker> brokers;
  for (int n = 1; n <= 3; ++n) brokers.push_back(start_broker(dir, n));
  for (const auto& broker : brokers) {
    ASSERT_TRUE(wait_for_port(broker.admin_port, 20s)) << "broker at " << broker.address << " did not start";
  }

  std::mutex resolved_mutex;
  std::vector<std::string> resolved = {brokers[0].address, brokers[1].address};
  auto resolve_to = [&](std::vector<std::string> addresses) {
    std::lock_guard lock(resolved_mutex);
    resolved = std::move(addresses);
  };

  const int kChannels = 16;
  std::vector<std::string> channels;
  for (int i = 0; i < kChannels; ++i) channels.push_back("timeline:hashtag:member" + std::to_string(::getpid()) + "_" + std::to_string(i));
  std::mutex got_mutex;
  std::map<std::string, std::vector<std::string>> got;

  BrokerSetOptions options;
  options.addresses = "dns:///brokers.test:50051";
  options.resolve_interval = 100ms;
  options.handover = 300ms;
  BrokerSet set(
      options,
      [](const BrokerTarget& target) {
        return grpc_broker_streams(grpc::CreateChannel(target.address, grpc::InsecureChannelCredentials()), "");
      },
      "membership-test",
      [&](BrokerLink::Events events) {
        std::lock_guard lock(got_mutex);
        for (const auto& event : events) got[event->channel()].push_back(event->payload());
      },
      {},
      [&](const std::string&, const std::string&) -> std::optional<std::vector<std::string>> {
        std::lock_guard lock(resolved_mutex);
        return resolved;
      });
  set.start();
  for (const auto& channel : channels) set.acquire(channel, false);
  auto total_subscriptions = [&] {
    long long total = 0;
    for (const auto& channel : channels) total += suite_redis().numsub(channel);
    return total;
  };
  ASSERT_TRUE(eventually([&] { return total_subscriptions() == 2 * kChannels && set.connected(); }, 20s))
      << "every channel on two brokers";

  // A steady publisher for the whole test: the same payload on every channel, in turn,
  // each step once the previous one has come through on the first channel (at most 10 s:
  // a lost event shows in the final comparison, not as a hang).
  std::atomic<bool> publishing{true};
  std::atomic<int> published{0};
  std::thread publisher([&] {
    while (publishing.load()) {
      int n = published.load();
      for (const auto& channel : channels) {
        suite_redis().publish(channel, R"({"event":"delete","payload":"p)" + std::to_string(n) + R"("})");
      }
      published.store(n + 1);
      eventually(
          [&] {
            std::lock_guard lock(got_mutex);
            return got[channels[0]].size() >= static_cast<size_t>(n + 1);
          },
          10s);
    }
  });
  struct JoinOnExit {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~JoinOnExit() {
      flag.store(false);
      if (thread.joinable()) thread.join();
    }
  } join_on_exit{publishing, publisher};
  auto published_at_least = [&](int more) {
    int target = published.load() + more;
    return eventually([&] { return published.load() >= target; }, 20s);
  };

  ASSERT_TRUE(published_at_least(50));
  // A third broker joins: it takes about half of the channels' second copies.
  long long third_before = brokers[2].metric("redis_subscriptions");
  resolve_to({brokers[0].address, brokers[1].address, brokers[2].address});
  EXPECT_TRUE(eventually([&] { return set.broker_count() == 3u; }, 10s));
  EXPECT_TRUE(eventually([&] { return brokers[2].metric("redis_subscriptions") > third_before; }, 10s))
      << "the new broker took no channel";
  EXPECT_TRUE(eventually([&] { return total_subscriptions() == 2 * kChannels; }, 10s)) << "the handover never ended";
  ASSERT_TRUE(published_at_least(50));

  // The first leaves: its channels move, and after the handover its stream ends.
  resolve_to({brokers[1].address, brokers[2].address});
  EXPECT_TRUE(eventually([&] { return brokers[0].metric("sluice_broker_gateway_streams") == 0; }, 10s))
      << "the leaving broker's stream was never closed";
  EXPECT_TRUE(eventually([&] { return total_subscriptions() == 2 * kChannels; }, 10s));
  brokers[0].process->stop(SIGKILL, 10s);  // gone for good: nothing may depend on it
  ASSERT_TRUE(published_at_least(50));

  // Every channel is on both remaining brokers: either one can die.
  brokers[1].process->stop(SIGKILL, 10s);
  ASSERT_TRUE(published_at_least(50));
  publishing.store(false);
  publisher.join();

  const int total = published.load();
  bool complete = eventually(
      [&] {
        std::lock_guard lock(got_mutex);
        for (const auto& channel : channels) {
          if (got[channel].size() < static_cast<size_t>(total)) return false;
        }
        return true;
      },
      10s);
  EXPECT_TRUE(complete) << "some channel is short of its " << total << " events";
  std::lock_guard lock(got_mutex);
  std::vector<std::string> expected;
  for (int n = 0; n < total; ++n) expected.push_back("p" + std::to_string(n));
  for (const auto& channel : channels) {
    EXPECT_EQ(got[channel], expected) << channel << ": " << describe_difference(got[channel], expected);
  }
  set.stop();
}

}  // namespace
}  // namespace sluice::testing
