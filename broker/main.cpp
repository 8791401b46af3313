// sluice-broker: the broker tier on its own (gRPC Broker service, Redis).
#include <grpcpp/grpcpp.h>

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
#include "common/grpc_channel.hpp"
#include "common/internal_server.hpp"
#include "common/service_main.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/tenants_file.hpp"

namespace {

constexpr const char* kServiceName = "sluice.v1.Broker";

int run(const sluice::Env& env) {
  using namespace sluice;

  BrokerConfig config = BrokerConfig::from_env(env);
  auto tls = InternalTls::from_env(env);

  // docs/hosting.md#tenants: several instances from one file, or the environment's one.
  std::unique_ptr<TenantsFile> tenants_file = TenantsFile::from_env(env);
  BrokerTier tier(config, starting_tenants(tenants_file.get()));
  FollowTenants follow_tenants{tenants_file.get(),
                               [&tier](std::shared_ptr<const Tenants> tenants) { tier.update_tenants(std::move(tenants)); }};

  InternalServer server({config.listen, "SLUICE_BROKER_LISTEN", tls}, {{kServiceName, tier.service()}});
  ReportReadiness report_readiness{tier, server, kServiceName};

  AdminHttpServer admin(config.admin_listen, [&tier] { return tier.ready(); });
  admin.start();

  tier.start();
  log::info("sluice-broker listening",
            {{"listen", config.listen},
             {"admin", config.admin_listen},
             {"redis", tenants_file ? "per tenant, " + tenants_file->path() : config.redis.describe()}});

  int signal = wait_for_termination_reloading(tenants_file.get());
  log::info("sluice-broker shutting down", {{"signal", signal}});
  report_readiness.stop();
  // Gateways see UNAVAILABLE and reconnect to another broker.
  tier.stop();
  server.shutdown(std::chrono::seconds(5));
  admin.stop();
  return 0;
}

}  // namespace

int main() { return sluice::run_service("sluice-broker", run); }
