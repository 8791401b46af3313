// sluice-gateway: the client-facing tier, talking to sluice-broker and sluice-auth.
#include <functional>
#include <memory>

#include "common/admin_http.hpp"
#include "common/env.hpp"
#include "common/grpc_channel.hpp"
#include "common/log.hpp"
#include "common/service_main.hpp"
#include "common/tenants_file.hpp"
#include "gateway/gateway.hpp"

namespace {

int run(const sluice::Env& env) {
  using namespace sluice;
  auto config = gateway::GatewayConfig::from_env(env);
  auto tls = InternalTls::from_env(env);
  // docs/hosting.md#routing: several instances by Host, or the environment's one.
  std::unique_ptr<TenantsFile> tenants_file = TenantsFile::from_env(env);
  auto auth_channel = sluice::auth_channel(config.auth_address, tls);
  std::string admin_listen = config.admin_listen;
  std::string internal_token = config.internal_token;
  gateway::Gateway gateway(
      std::move(config),
      [tls, internal_token](const BrokerTarget& broker) {
        return grpc_broker_streams(broker_channel(broker, tls), internal_token);
      },
      auth_channel);
  if (tenants_file) gateway.update_tenants(tenants_file->current());
  FollowTenants follow_tenants{
      tenants_file.get(), [&gateway](std::shared_ptr<const Tenants> tenants) { gateway.update_tenants(std::move(tenants)); }};
  gateway.start();
  AdminHttpServer admin(admin_listen, [&gateway] { return gateway.ready(); });
  admin.start();
  int sig = wait_for_termination_reloading(tenants_file.get());
  log::info("shutting down", {{"signal", sig}});
  // The drain first, while the admin port still answers: /readyz says 503 and
  // /metrics shows the drain until the last client has gone (docs/drain.md).
  gateway.stop();
  admin.stop();
  return 0;
}

}  // namespace

int main() { return sluice::run_service("sluice-gateway", run); }
