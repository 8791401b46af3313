// Every binary stops cleanly with work in flight (issue: shutdown safety): token
// lookups waiting on PostgreSQL, broker streams carrying a flood of events, and
// clients with unwritten data. The binaries are the sanitizer build, so a use after
// free, a leak or an abort shows as a non-zero exit; a hang as no exit.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <pqxx/pqxx>
#include <thread>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class ShutdownSafety : public ::testing::TestWithParam<Deployment> {};

// Work in flight on a cluster: a publisher flooding a channel with listeners (some
// that never read), and token lookups held at PostgreSQL by a table lock.
class InFlight {
 public:
  InFlight(Cluster& cluster, const TestAccount& viewer) : cluster_(cluster), locker_(suite_postgres().conninfo()) {
    channel_ = "timeline:" + std::to_string(viewer.account_id);
    for (int i = 0; i < 3; ++i) {
      readers_.push_back(std::make_unique<SseClient>(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token)));
      EXPECT_EQ(readers_.back()->response().status, 200);
      auto stalled = std::make_unique<Connection>("127.0.0.1", cluster.port(), /*receive_buffer=*/4096);
      stalled->send("GET /api/v1/streaming?stream=user HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer " +
                    viewer.token + "\r\n\r\n");
      stalled_.push_back(std::move(stalled));
    }
    EXPECT_TRUE(wait_numsub(channel_, 1));
    publisher_ = std::thread([this] {
      std::string payload = R"({"event":"notification","payload":{"id":"1","pad":")" + std::string(1500, 'f') + R"("}})";
      while (!stop_) suite_redis().publish(channel_, payload);
    });
    lock_.emplace(locker_);
    (*lock_).exec("LOCK TABLE oauth_access_tokens IN ACCESS EXCLUSIVE MODE");
    for (int i = 0; i < 6; ++i) {
      auto pending = std::make_unique<Connection>("127.0.0.1", cluster.port());
      pending->send("GET /api/v1/streaming/public HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer in-flight-" +
                    std::to_string(i) + "\r\n\r\n");
      pending_.push_back(std::move(pending));
    }
    // The lookups have reached PostgreSQL and wait there.
    EXPECT_TRUE(eventually([] {
      return suite_postgres().query_value(
                 "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%oauth_access_tokens%'") == "t";
    }, 10s));
  }
  ~InFlight() {
    stop_ = true;
    if (publisher_.joinable()) publisher_.join();
    if (lock_) lock_->abort();
  }

 private:
  Cluster& cluster_;
  std::string channel_;
  pqxx::connection locker_;
  std::optional<pqxx::work> lock_;
  std::vector<std::unique_ptr<SseClient>> readers_;
  std::vector<std::unique_ptr<Connection>> stalled_;
  std::vector<std::unique_ptr<Connection>> pending_;
  std::atomic<bool> stop_{false};
  std::thread publisher_;
};

void expect_clean_exit(int status, const std::string& who) {
  ASSERT_NE(status, -1) << who << " did not exit within 15 s";
  EXPECT_TRUE(WIFEXITED(status)) << who << " ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0) << who;
}

TEST_P(ShutdownSafety, GatewayStopsWithLookupsStreamsAndWritesInFlight) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "shutdown_gateway");
  InFlight work(cluster, viewer);
  int status = -1;
  cluster.stop_gateway(SIGTERM, &status);
  expect_clean_exit(status, GetParam() == Deployment::split ? "sluice-gateway" : "sluice");
}

TEST(ShutdownSafetySplit, BrokerAndAuthStopWithStreamsAndLookupsInFlight) {
  Cluster cluster(Deployment::split);
  auto viewer = create_account(suite_postgres(), "shutdown_tiers");
  InFlight work(cluster, viewer);
  expect_clean_exit(cluster.stop_tier("broker", SIGTERM), "sluice-broker");
  expect_clean_exit(cluster.stop_tier("auth", SIGTERM), "sluice-auth");
  int status = -1;
  cluster.stop_gateway(SIGTERM, &status);
  expect_clean_exit(status, "sluice-gateway");
}

INSTANTIATE_TEST_SUITE_P(Deployments, ShutdownSafety, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
