#include "tests/e2e/cluster.hpp"

#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace sluice::testing {

namespace {
std::unique_ptr<RedisServer> g_redis;
std::unique_ptr<PostgresServer> g_postgres;

class ServersEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    g_redis.reset();
    g_postgres.reset();
  }
};
const auto* g_environment = ::testing::AddGlobalTestEnvironment(new ServersEnvironment);

}  // namespace

RedisServer& suite_redis() {
  if (!g_redis) g_redis = std::make_unique<RedisServer>();
  return *g_redis;
}

PostgresServer& suite_postgres() {
  if (!g_postgres) g_postgres = std::make_unique<PostgresServer>();
  return *g_postgres;
}

size_t count_occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

std::string describe_difference(const std::vector<std::string>& got, const std::vector<std::string>& expected) {
  size_t first = 0;
  while (first < got.size() && first < expected.size() && got[first] == expected[first]) ++first;
  auto around = [&](const std::vector<std::string>& events) {
    std::string text;
    for (size_t i = first >= 3 ? first - 3 : 0; i < std::min(events.size(), first + 4); ++i) text += events[i] + " ";
    return text;
  };
  return std::to_string(got.size()) + " received of " + std::to_string(expected.size()) + "; first difference at " +
         std::to_string(first) + ": received " + around(got) + "where the publishes were " + around(expected);
}

std::map<std::string, std::string> bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

bool wait_numsub(const std::string& channel, long long count, std::chrono::milliseconds timeout) {
  return eventually([&] { return suite_redis().numsub(channel) == count; }, timeout);
}

double metric(int port, const std::string& series) {
  auto text = http_request(port, "GET", "/metrics").body;
  auto pos = text.find("\n" + series + " ");
  EXPECT_NE(pos, std::string::npos) << series << " is missing from /metrics";
  return pos == std::string::npos ? -1 : std::stod(text.substr(pos + series.size() + 2));
}

std::string ws_settle(WsClient& ws) {
  static int counter = 0;
  std::string tag = "marker" + std::to_string(::getpid()) + "x" + std::to_string(++counter);
  ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":")" + tag + R"("})");
  EXPECT_TRUE(wait_numsub("timeline:hashtag:" + tag, 1)) << "marker subscription never reached Redis";
  return tag;
}

std::vector<std::string> ws_texts_before_marker(WsClient& ws, const std::string& marker_tag) {
  const std::string marker = R"({"stream":["hashtag",")" + marker_tag + R"("],"event":"delete","payload":"marker"})";
  suite_redis().publish("timeline:hashtag:" + marker_tag, R"({"event":"delete","payload":"marker"})");
  std::vector<std::string> before;
  for (;;) {
    auto text = ws.next_text(10s);
    if (!text) {
      ADD_FAILURE() << "the marker never arrived";
      return before;
    }
    if (*text == marker) return before;
    before.push_back(*text);
  }
}

Cluster::Cluster(Deployment deployment, std::map<std::string, std::string> extra_env, ClusterOptions options)
    : deployment_(deployment), port_(free_port()) {
  env_ = {{"REDIS_URL", suite_redis().url()},
          {"DATABASE_URL", suite_postgres().url()},
          {"PORT", std::to_string(port_)},
          {"BIND", "127.0.0.1"},
          {"LOG_LEVEL", "info"},
          {"NODE_ENV", "production"},
          {"SLUICE_ENV_DIR", dir_.path()},
          {"SLUICE_BROKER_ADMIN_LISTEN", ""},
          {"SLUICE_AUTH_ADMIN_LISTEN", ""},
          {"SLUICE_GATEWAY_ADMIN_LISTEN", ""}};
  for (const auto& [k, v] : extra_env) env_[k] = v;
  port_ = std::atoi(env_["PORT"].c_str());  // a test may pick its own PORT
  if (deployment_ == Deployment::split) {
    std::string auth_address = "127.0.0.1:" + std::to_string(free_port());
    std::string all_brokers;
    for (int i = 0; i < std::max(1, options.brokers); ++i) {
      broker_addresses_.push_back("127.0.0.1:" + std::to_string(free_port()));
      all_brokers += (i ? "," : "") + broker_addresses_.back();
    }
    env_["SLUICE_BROKER_ADDR"] = all_brokers;
    env_["SLUICE_AUTH_LISTEN"] = auth_address;
    env_["SLUICE_AUTH_ADDR"] = auth_address;
    brokers_.resize(broker_addresses_.size());
    for (size_t i = 0; i < brokers_.size(); ++i) start_broker(static_cast<int>(i));
    auth_ = std::make_unique<Process>(std::vector<std::string>{bin_dir() + "/sluice-auth"}, env_,
                                      dir_.path() + "/auth.log");
    if (options.second_auth_without_database) {
      auto second_env = env_;
      std::string second_address = "127.0.0.1:" + std::to_string(free_port());
      second_env["SLUICE_AUTH_LISTEN"] = second_address;
      second_env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/nowhere";
      second_auth_ = std::make_unique<Process>(std::vector<std::string>{bin_dir() + "/sluice-auth"}, second_env,
                                               dir_.path() + "/auth2.log");
      env_["SLUICE_AUTH_ADDR"] = "ipv4:" + auth_address + "," + second_address;
    }
    gateway_ = std::make_unique<Process>(std::vector<std::string>{bin_dir() + "/sluice-gateway"}, env_,
                                         dir_.path() + "/gateway.log");
  } else {
    gateway_ = std::make_unique<Process>(std::vector<std::string>{bin_dir() + "/sluice"}, env_,
                                         dir_.path() + "/sluice.log");
  }
  wait_ready();
}

Cluster::~Cluster() {
  if (::testing::Test::HasFailure()) std::cerr << "---- sluice logs ----\n" << logs() << "---------------------\n";
  gateway_.reset();
  brokers_.clear();
  auth_.reset();
  second_auth_.reset();
}

void Cluster::start_broker(int index) {
  auto env = env_;
  env["SLUICE_BROKER_LISTEN"] = broker_addresses_.at(static_cast<size_t>(index));
  std::string log = index == 0 ? "broker.log" : "broker" + std::to_string(index + 1) + ".log";
  // Appends: a restarted broker's log follows the killed one's.
  brokers_.at(static_cast<size_t>(index)) =
      std::make_unique<Process>(std::vector<std::string>{bin_dir() + "/sluice-broker"}, env, dir_.path() + "/" + log);
}

void Cluster::restart_broker(int index) {
  ASSERT_EQ(deployment_, Deployment::split);
  brokers_.at(static_cast<size_t>(index)).reset();
  start_broker(index);
}

std::unique_ptr<Process>& Cluster::tier_process(const std::string& tier) {
  static std::unique_ptr<Process> none;
  if (tier == "auth") return auth_;
  size_t index = tier == "broker" ? 0 : tier.starts_with("broker") ? std::stoul(tier.substr(6)) - 1 : brokers_.size();
  return index < brokers_.size() ? brokers_[index] : none;
}

void Cluster::stop_gateway(int signal, int* exit_status) {
  *exit_status = gateway_->stop(signal, std::chrono::seconds(15));
}

pid_t Cluster::gateway_pid() const { return gateway_->pid(); }

void Cluster::signal_gateway(int signal) { ::kill(gateway_->pid(), signal); }

int Cluster::wait_gateway(std::chrono::milliseconds timeout) { return gateway_->wait(timeout); }

int Cluster::stop_tier(const std::string& tier, int signal) {
  auto& process = tier_process(tier);
  if (!process) return -1;
  return process->stop(signal, std::chrono::seconds(15));
}

void Cluster::signal_tier(const std::string& tier, int signal) {
  auto& process = tier_process(tier);
  if (process) ::kill(process->pid(), signal);
}

void Cluster::wait_ready() {
  if (!wait_for_port(port_, std::chrono::seconds(30))) {
    ADD_FAILURE() << "Sluice did not open its port\n" << logs();
    return;
  }
  // Health answers as soon as the listener is up; a real request proves the auth
  // path works end to end.
  auto health = http_request(port_, "GET", "/api/v1/streaming/health");
  EXPECT_EQ(health.status, 200) << logs();
  // Both broker streams (gateway's and, split, auth's) must be up before a test
  // publishes anything: events published before would be lost, as with Redis.
  std::vector<std::string> followers = {deployment_ == Deployment::split ? "gateway.log" : "sluice.log"};
  if (deployment_ == Deployment::split) followers.push_back("auth.log");
  // One stream per broker.
  size_t streams = std::max<size_t>(1, brokers_.size());
  for (const auto& log : followers) {
    EXPECT_TRUE(eventually([&] { return count_occurrences(read_file(dir_.path() + "/" + log), "broker stream ready") >= streams; },
                           20s))
        << log << " never reported its broker streams\n" << logs();
  }
}

std::string Cluster::full_logs() const {
  std::string out;
  for (const char* name : {"sluice.log", "gateway.log", "broker.log", "broker2.log", "broker3.log", "auth.log", "auth2.log"}) out += read_file(dir_.path() + "/" + name);
  return out;
}

std::string Cluster::logs() const {
  std::string out;
  for (const char* name : {"sluice.log", "gateway.log", "broker.log", "broker2.log", "broker3.log", "auth.log", "auth2.log"}) {
    std::string text = read_file(dir_.path() + "/" + name);
    if (text.empty()) continue;
    if (text.size() > 6000) text = "…" + text.substr(text.size() - 6000);
    out += std::string("== ") + name + "\n" + text;
  }
  return out;
}

}  // namespace sluice::testing
