// sluice-gateway: the client-facing tier, talking to sluice-broker and sluice-auth.
#include "common/admin_http.hpp"
#include "common/env.hpp"
#include "common/grpc_channel.hpp"
#include "common/log.hpp"
#include "common/service_main.hpp"
#include "common/signals.hpp"
#include "gateway/gateway.hpp"

namespace {

int run(const sluice::Env& env) {
  using namespace sluice;
  auto config = gateway::GatewayConfig::from_env(env);
  auto tls = InternalTls::from_env(env);
  auto auth_channel = sluice::auth_channel(config.auth_address, tls);
  std::string admin_listen = config.admin_listen;
  gateway::Gateway gateway(std::move(config), [tls](const BrokerTarget& broker) { return broker_channel(broker, tls); },
                           auth_channel);
  gateway.start();
  AdminHttpServer admin(admin_listen, [&gateway] { return gateway.ready(); });
  admin.start();
  int sig = wait_for_termination_signal();
  log::info("shutting down", {{"signal", sig}});
  // The drain first, while the admin port still answers: /readyz says 503 and
  // /metrics shows the drain until the last client has gone (docs/drain.md).
  gateway.stop();
  admin.stop();
  return 0;
}

}  // namespace

int main() { return sluice::run_service("sluice-gateway", run); }
