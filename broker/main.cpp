// sluice-broker: the broker tier on its own (gRPC Broker service, Redis).
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include "broker/broker_tier.hpp"
#include "common/admin_http.hpp"
#include "common/config_error.hpp"
#include "common/env.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/signals.hpp"

namespace {

constexpr const char* kServiceName = "sluice.v1.Broker";

int run() {
  using namespace sluice;
  // Before any thread starts, so that every thread inherits the mask.
  block_termination_signals();

  const char* env_dir = std::getenv("SLUICE_ENV_DIR");
  load_dotenv_into_process(env_dir ? env_dir : "");
  Env env = Env::from_process();
  log::configure("sluice-broker", env.get_or("LOG_LEVEL", ""), env.get_or("NODE_ENV", ""));
  BrokerConfig config = BrokerConfig::from_env(env);

  metrics::register_process_metrics(metrics::Registry::global());
  BrokerTier tier(config);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials());
  builder.RegisterService(tier.service());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) throw ConfigError("cannot listen on " + config.listen + " (SLUICE_BROKER_LISTEN)");
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  auto set_health = [health](bool serving) {
    if (!health) return;
    health->SetServingStatus(kServiceName, serving);
    health->SetServingStatus(serving);
  };
  set_health(false);
  tier.set_readiness_callback(set_health);

  AdminHttpServer admin(config.admin_listen, [&tier] { return tier.ready(); });
  admin.start();

  tier.start();
  log::info("sluice-broker listening",
            {{"listen", config.listen}, {"admin", config.admin_listen}, {"redis", config.redis.describe()}});

  int signal = wait_for_termination_signal();
  log::info("sluice-broker shutting down", {{"signal", signal}});
  tier.set_readiness_callback({});
  set_health(false);
  // Gateways see UNAVAILABLE and reconnect to another broker.
  tier.stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  admin.stop();
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const sluice::ConfigError& error) {
    std::fprintf(stderr, "sluice-broker: %s\n", error.what());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sluice-broker: %s\n", error.what());
    return 1;
  }
}
