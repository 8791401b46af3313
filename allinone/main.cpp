// sluice: gateway, broker and auth in one process, serving clients on PORT/BIND or
// SOCKET, with no internal ports: the gateway asks auth over an in-process gRPC
// channel, and takes the broker's events by hand (broker/local_gateway_stream.hpp).
// The default deployment for a single-host Mastodon instance and for the quick start.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "auth/auth_tier.hpp"
#include "auth/system_events.hpp"
#include "broker/broker_tier.hpp"
#include "common/admin_http.hpp"
#include "common/config_error.hpp"
#include "common/env.hpp"
#include "common/service_main.hpp"
#include "common/grpc_channel.hpp"
#include "common/internal_server.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/tenants_file.hpp"
#include "gateway/gateway.hpp"

namespace {

int run(const sluice::Env& env) {
  using namespace sluice;
  // Read every tier's settings first so that any mistake stops us before we start.
  AuthConfig auth_config = AuthConfig::from_env(env);
  BrokerConfig broker_config = BrokerConfig::from_env(env);
  auto gateway_config = gateway::GatewayConfig::from_env(env);

  // docs/hosting.md#tenants: several instances from one file, or the environment's one.
  std::unique_ptr<TenantsFile> tenants_file = TenantsFile::from_env(env);
  std::shared_ptr<const Tenants> tenants = starting_tenants(tenants_file.get());

  AuthTier auth(std::move(auth_config), tenants);
  BrokerTier broker(std::move(broker_config), tenants);
  broker.add_system_listener({[&auth](const sluice::v1::ChannelEvent& event) { apply_system_event(auth.tenants(), event); },
                              // Kills published while the broker's Redis connection was down were missed.
                              [&auth] { system_events_missed(auth.tenants()); }});
  // While an instance's Redis connection is down its kills are missed: its cached tokens
  // are not trusted meanwhile.
  auth.set_system_events_live([&broker](const std::string& tenant) { return broker.system_events_live(tenant); });

  InternalServer server({}, {{"sluice.v1.Auth", auth.service()}, {"sluice.v1.Broker", broker.service()}});
  ReportReadiness report_auth_readiness{auth, server, "sluice.v1.Auth"};
  ReportReadiness report_broker_readiness{broker, server, "sluice.v1.Broker"};
  broker.start();

  auto channel_args = internal_channel_arguments();
  std::string admin_listen = gateway_config.admin_listen;
  // The in-process broker is the only one, whatever SLUICE_BROKER_ADDR says.
  gateway_config.brokers.addresses = "in-process";
  gateway::Gateway gateway(std::move(gateway_config),
                           [local = broker.local_streams()](const BrokerTarget&) { return local; },
                           server.in_process_channel(channel_args));
  if (tenants_file) gateway.update_tenants(tenants);
  FollowTenants follow_tenants{tenants_file.get(), [&](std::shared_ptr<const Tenants> reloaded) {
                                 auth.update_tenants(reloaded);
                                 broker.update_tenants(reloaded);
                                 gateway.update_tenants(reloaded);
                               }};
  gateway.start();
  AdminHttpServer admin(admin_listen, [&] { return gateway.ready() && broker.ready() && auth.ready(); });
  admin.start();

  int signal = wait_for_termination_reloading(tenants_file.get());
  log::info("shutting down", {{"signal", signal}});
  gateway.stop();  // the drain, with /readyz answering 503 meanwhile (docs/drain.md)
  admin.stop();
  report_auth_readiness.stop();
  report_broker_readiness.stop();
  auth.stop();
  broker.stop();
  server.shutdown(std::chrono::seconds(2));
  return 0;
}

}  // namespace

int main() { return sluice::run_service("sluice", run); }
