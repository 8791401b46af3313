// docs/scale-out.md#brokers: with two brokers every channel is held through both, and
// the gateway delivers each Redis message once. Killing (SIGKILL) or stopping
// (SIGTERM) either broker while events flow loses, duplicates and reorders nothing,
// on SSE and WebSocket, on public, hashtag and user streams; two identical publishes
// are both delivered.
#include <gtest/gtest.h>

#include <csignal>
#include <nlohmann/json.hpp>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

struct Listener {
  std::string name;
  std::string channel;
  std::unique_ptr<SseClient> sse;
  std::unique_ptr<WsClient> ws;

  // Every payload up to and including "end", in arrival order.
  std::vector<std::string> read_until_end() {
    std::vector<std::string> got;
    for (;;) {
      std::string payload;
      if (sse) {
        auto event = sse->next_event(10s);
        if (!event) break;
        if (event->event != "delete") continue;
        payload = event->data;
      } else {
        auto text = ws->next_text(10s);
        if (!text) break;
        auto frame = nlohmann::json::parse(*text);
        if (frame.value("event", "") != "delete") continue;
        payload = frame["payload"].get<std::string>();
      }
      got.push_back(payload);
      if (payload == "end") return got;
    }
    ADD_FAILURE() << name << ": \"end\" never arrived after " << got.size() << " events";
    return got;
  }
};

long long metric(int admin_port, const std::string& name) {
  auto response = http_request(admin_port, "GET", "/metrics");
  size_t at = response.body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(response.body.substr(at + name.size() + 2));
}

TEST(BrokerReplication, EitherBrokerDiesAndClientsMissNothing) {
  int admin_port = free_port();
  Cluster cluster(Deployment::split, {{"SLUICE_GATEWAY_ADMIN_LISTEN", "127.0.0.1:" + std::to_string(admin_port)}},
                  ClusterOptions{.brokers = 2});
  auto alice = create_account(suite_postgres(), "replica_alice");
  auto bob = create_account(suite_postgres(), "replica_bob");
  const std::string tag = "replicated" + std::to_string(::getpid());

  std::vector<Listener> listeners;
  auto sse = [&](std::string name, std::string channel, std::string target, const std::string& token) {
    Listener l{std::move(name), std::move(channel), std::make_unique<SseClient>(cluster.port(), target, bearer(token)), nullptr};
    ASSERT_EQ(l.sse->response().status, 200) << l.name;
    listeners.push_back(std::move(l));
  };
  auto ws = [&](std::string name, std::string channel, std::string target, const std::string& token) {
    Listener l{std::move(name), std::move(channel), nullptr, std::make_unique<WsClient>(cluster.port(), target, bearer(token))};
    ASSERT_TRUE(l.ws->upgraded()) << l.name;
    listeners.push_back(std::move(l));
  };
  sse("sse public", "timeline:public", "/api/v1/streaming/public", alice.token);
  ws("ws public", "timeline:public", "/api/v1/streaming?stream=public", bob.token);
  sse("sse hashtag", "timeline:hashtag:" + tag, "/api/v1/streaming/hashtag?tag=" + tag, bob.token);
  ws("ws hashtag", "timeline:hashtag:" + tag, "/api/v1/streaming?stream=hashtag&tag=" + tag, alice.token);
  sse("sse user", "timeline:" + std::to_string(alice.account_id), "/api/v1/streaming/user", alice.token);
  ws("ws user", "timeline:" + std::to_string(bob.account_id), "/api/v1/streaming?stream=user", bob.token);

  std::vector<std::string> channels;
  for (const auto& l : listeners) {
    if (std::find(channels.begin(), channels.end(), l.channel) == channels.end()) channels.push_back(l.channel);
  }
  auto both_brokers_hold_every_channel = [&] {
    for (const auto& channel : channels) {
      if (!wait_numsub(channel, 2, 20s)) return ::testing::AssertionFailure() << channel << " is not on both brokers";
    }
    return ::testing::AssertionSuccess();
  };
  ASSERT_TRUE(both_brokers_hold_every_channel()) << cluster.logs();

  // The same payloads on every channel: "e<i>", and every tenth step a pair of
  // identical publishes ("same" twice), which must both arrive.
  std::vector<std::string> expected;
  int step = 0;
  auto publish_steps = [&](int count) {
    for (int n = 0; n < count; ++n, ++step) {
      std::vector<std::string> payloads = {"e" + std::to_string(step)};
      if (step % 10 == 0) payloads.insert(payloads.end(), {"same", "same"});
      for (const auto& payload : payloads) {
        for (const auto& channel : channels) {
          suite_redis().publish(channel, R"({"event":"delete","payload":")" + payload + R"("})");
        }
        expected.push_back(payload);
      }
    }
  };

  publish_steps(60);
  EXPECT_NE(cluster.stop_tier("broker", SIGKILL), -1);
  publish_steps(60);  // only the second broker relays these
  cluster.restart_broker(0);
  ASSERT_TRUE(both_brokers_hold_every_channel()) << cluster.logs();
  publish_steps(60);
  EXPECT_NE(cluster.stop_tier("broker2", SIGTERM), -1);
  publish_steps(60);  // only the first broker relays these
  cluster.restart_broker(1);
  ASSERT_TRUE(both_brokers_hold_every_channel()) << cluster.logs();
  publish_steps(60);
  for (const auto& channel : channels) suite_redis().publish(channel, R"({"event":"delete","payload":"end"})");
  expected.push_back("end");

  for (auto& l : listeners) {
    auto got = l.read_until_end();
    EXPECT_EQ(got, expected) << l.name << ": every event once, in publish order; " << describe_difference(got, expected);
  }
  // Both brokers relayed (most) events and the gateway dropped the second copies.
  EXPECT_GT(metric(admin_port, "sluice_broker_duplicates_dropped_total"), static_cast<long long>(expected.size()))
      << cluster.logs();
}

}  // namespace
}  // namespace sluice::testing
