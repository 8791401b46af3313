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

std::map<std::string, std::string> bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

bool wait_numsub(const std::string& channel, long long count, std::chrono::milliseconds timeout) {
  return eventually([&] { return suite_redis().numsub(channel) == count; }, timeout);
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
    std::string broker_address = "127.0.0.1:" + std::to_string(free_port());
    std::string auth_address = "127.0.0.1:" + std::to_string(free_port());
    env_["SLUICE_BROKER_LISTEN"] = broker_address;
    env_["SLUICE_BROKER_ADDR"] = broker_address;
    env_["SLUICE_AUTH_LISTEN"] = auth_address;
    env_["SLUICE_AUTH_ADDR"] = auth_address;
    start_broker();
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
  broker_.reset();
  auth_.reset();
  second_auth_.reset();
}

void Cluster::start_broker() {
  broker_ = std::make_unique<Process>(std::vector<std::string>{bin_dir() + "/sluice-broker"}, env_,
                                      dir_.path() + "/broker.log");
}

void Cluster::restart_broker() {
  ASSERT_EQ(deployment_, Deployment::split);
  broker_.reset();
  start_broker();
}

void Cluster::stop_gateway(int signal, int* exit_status) {
  *exit_status = gateway_->stop(signal, std::chrono::seconds(15));
}

void Cluster::signal_gateway(int signal) { ::kill(gateway_->pid(), signal); }

int Cluster::wait_gateway(std::chrono::milliseconds timeout) { return gateway_->wait(timeout); }

int Cluster::stop_tier(const std::string& tier, int signal) {
  auto& process = tier == "broker" ? broker_ : auth_;
  if (!process) return -1;
  return process->stop(signal, std::chrono::seconds(15));
}

void Cluster::signal_tier(const std::string& tier, int signal) {
  auto& process = tier == "broker" ? broker_ : auth_;
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
  for (const auto& log : followers) {
    EXPECT_TRUE(eventually([&] { return read_file(dir_.path() + "/" + log).find("broker stream ready") != std::string::npos; },
                           20s))
        << log << " never reported its broker stream\n" << logs();
  }
}

std::string Cluster::full_logs() const {
  std::string out;
  for (const char* name : {"sluice.log", "gateway.log", "broker.log", "auth.log", "auth2.log"}) out += read_file(dir_.path() + "/" + name);
  return out;
}

std::string Cluster::logs() const {
  std::string out;
  for (const char* name : {"sluice.log", "gateway.log", "broker.log", "auth.log", "auth2.log"}) {
    std::string text = read_file(dir_.path() + "/" + name);
    if (text.empty()) continue;
    if (text.size() > 6000) text = "…" + text.substr(text.size() - 6000);
    out += std::string("== ") + name + "\n" + text;
  }
  return out;
}

}  // namespace sluice::testing
