// sluice-gateway: the client-facing tier, talking to sluice-broker and sluice-auth.
#include <cstdio>
#include <cstdlib>

#include "common/admin_http.hpp"
#include "common/config_error.hpp"
#include "common/env.hpp"
#include "common/grpc_channel.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/signals.hpp"
#include "gateway/gateway.hpp"

int main() {
  using namespace sluice;
  block_termination_signals();
  try {
    const char* dir = std::getenv("SLUICE_ENV_DIR");
    load_dotenv_into_process(dir ? dir : "");
    Env env = Env::from_process();
    log::configure("sluice-gateway", env.get_or("LOG_LEVEL", ""), env.get_or("NODE_ENV", "development"));
    auto config = gateway::GatewayConfig::from_env(env);
    auto broker_channel = internal_channel(config.broker_address);
    auto auth_channel = internal_channel(config.auth_address);
    metrics::register_process_metrics(metrics::Registry::global());
    std::string admin_listen = config.admin_listen;
    gateway::Gateway gateway(std::move(config), broker_channel, auth_channel);
    gateway.start();
    AdminHttpServer admin(admin_listen, [&gateway] { return gateway.ready(); });
    admin.start();
    int sig = wait_for_termination_signal();
    log::info("shutting down", {{"signal", sig}});
    admin.stop();
    gateway.stop();
    return 0;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "sluice-gateway: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice-gateway: %s\n", e.what());
    return 1;
  }
}
