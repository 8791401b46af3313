#pragma once
// Sluice as the tests run it: the all-in-one binary, or the three split tiers as
// separate processes, against the suite's real Redis and PostgreSQL.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>
#include <thread>

#include "tests/support/clients.hpp"
#include "tests/support/process.hpp"
#include "tests/support/servers.hpp"

namespace sluice::testing {

enum class Deployment { all_in_one, split };

inline std::string deployment_name(const ::testing::TestParamInfo<Deployment>& info) {
  return info.param == Deployment::all_in_one ? "AllInOne" : "Split";
}

// The suite's shared servers, started once for the whole e2e binary.
RedisServer& suite_redis();
PostgresServer& suite_postgres();

struct ClusterOptions {
  // Split only: a second auth replica whose PostgreSQL is unreachable; the gateway
  // gets both addresses (SLUICE_AUTH_ADDR=ipv4:a,b) and balances over them.
  bool second_auth_without_database = false;
  // Split only: this many broker processes; the gateway and auth get every address
  // (SLUICE_BROKER_ADDR=a,b,…) and hold each channel through two of them.
  int brokers = 1;
};

class Cluster {
 public:
  Cluster(Deployment deployment, std::map<std::string, std::string> extra_env = {}, ClusterOptions options = {});
  ~Cluster();

  int port() const { return port_; }
  // The process clients connect to: the gateway, or the all-in-one.
  pid_t gateway_pid() const;
  Deployment deployment() const { return deployment_; }
  // Split only: starts the broker process `index` again (after stop_tier).
  void restart_broker(int index = 0);
  void stop_gateway(int signal, int* exit_status);
  // Signals the gateway (the all-in-one process) without waiting; then wait_gateway.
  void signal_gateway(int signal);
  int wait_gateway(std::chrono::milliseconds timeout);
  // Split only: signals the broker or the auth process ("broker", "auth"; "broker2",
  // "broker3" for the other brokers); returns its wait status.
  int stop_tier(const std::string& tier, int signal);
  // Split only: signals the broker or the auth process without waiting (SIGSTOP, SIGCONT).
  void signal_tier(const std::string& tier, int signal);
  // The last lines of every process log, for failure messages.
  std::string logs() const;
  // Every process log, whole.
  std::string full_logs() const;
  std::map<std::string, std::string> env() const { return env_; }

 private:
  void start_broker(int index);
  std::unique_ptr<Process>& tier_process(const std::string& tier);
  void wait_ready();

  Deployment deployment_;
  TempDir dir_;
  int port_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Process> gateway_;
  std::vector<std::unique_ptr<Process>> brokers_;
  std::vector<std::string> broker_addresses_;
  std::unique_ptr<Process> auth_;
  std::unique_ptr<Process> second_auth_;
};

// Polls until `PUBSUB NUMSUB channel` reaches `count` (the broker really subscribed).
bool wait_numsub(const std::string& channel, long long count, std::chrono::milliseconds timeout = 10s);

// Positive markers instead of sleeps (a test that waits for something NOT to happen
// waits for a later thing that must happen after it). Requests of one WebSocket run
// in the order sent: once a subscription sent after others is in Redis, every earlier
// request of that socket has been handled. Subscribes `ws` to a fresh marker hashtag,
// waits for it, and returns its tag.
std::string ws_settle(WsClient& ws);
// Publishes a marker on the marker hashtag of ws_settle and returns every text the
// socket received before it. Events of one client arrive in publish order, so
// nothing published earlier can come after the marker.
std::vector<std::string> ws_texts_before_marker(WsClient& ws, const std::string& marker_tag);


// One series of a gateway's /metrics, e.g. `sluice_admission_refusals_total{limit="messages"}`.
// A series that is not there (a renamed metric) fails the test instead of reading as 0.
double metric(int port, const std::string& series);

std::map<std::string, std::string> bearer(const std::string& token);
size_t count_occurrences(const std::string& text, const std::string& needle);
// For a failure message: sizes, and where two sequences first differ, with context.
std::string describe_difference(const std::vector<std::string>& got, const std::vector<std::string>& expected);

}  // namespace sluice::testing
