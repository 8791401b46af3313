// sluice-auth: the auth tier on its own (gRPC service sluice.v1.Auth, the standard
// grpc.health.v1.Health service, and an admin HTTP listener for /metrics and probes).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "auth/auth_tier.hpp"
#include "auth/system_events.hpp"
#include "common/broker_set.hpp"
#include "common/grpc_channel.hpp"
#include "common/internal_server.hpp"
#include "common/admin_http.hpp"
#include "common/config_error.hpp"
#include "common/env.hpp"
#include "common/service_main.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/tenants_file.hpp"

namespace {

constexpr const char* kServiceName = "sluice.v1.Auth";

int run(const sluice::Env& env) {
  using namespace sluice;

  AuthConfig config = AuthConfig::from_env(env);
  auto tls = InternalTls::from_env(env);
  // docs/hosting.md#tenants: several instances from one file, or the environment's one.
  std::unique_ptr<TenantsFile> tenants_file = TenantsFile::from_env(env);

  AuthTier tier(std::move(config), starting_tenants(tenants_file.get()));
  FollowTenants follow_tenants{tenants_file.get(),
                               [&tier](std::shared_ptr<const Tenants> tenants) { tier.update_tenants(*tenants); }};
  const AuthConfig& settings = tier.config();

  // Gateways re-resolve their `dns:///` auth target when a connection ends: closing
  // connections after a while (calls in flight get the grace to finish) lets them find
  // replicas added by a scale-up. Lookups are unary, so no client notices.
  InternalServer server({settings.listen, "SLUICE_AUTH_LISTEN", tls}, {{kServiceName, tier.service()}},
                        [](grpc::ServerBuilder& builder) {
                          builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 5 * 60 * 1000);
                          builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30 * 1000);
                        });
  // Serving only while PostgreSQL answers (design: readiness means the tier can serve).
  // The probe thread must stop calling into the server before it goes away, on every
  // path out of here.
  ReportReadiness report_readiness{tier, server, kServiceName};

  // Revocations (kill) and filter changes reach this cache through the broker's
  // broadcast of the system channels; without SLUICE_BROKER_ADDR a revoked token is
  // refused at the latest when its cache entry expires (SLUICE_TOKEN_CACHE_TTL_MS).
  std::unique_ptr<BrokerSet> system_events;
  if (env.non_empty("SLUICE_BROKER_ADDR")) {
    system_events = std::make_unique<BrokerSet>(
        BrokerSetOptions::from_env(env, ""),
        [tls, token = settings.internal_token](const BrokerTarget& broker) {
          return grpc_broker_streams(broker_channel(broker, tls), token);
        },
        "sluice-auth",
        [&tier](BrokerLink::Events events) {
          for (const auto& event : events) apply_system_event(tier.tenants(), *event);
        },
        // Kills published while the stream was down, or while its broker had lost Redis,
        // were missed: forget what they would have.
        [&tier] { system_events_missed(tier.tenants()); });
    system_events->start();
  }

  AdminHttpServer admin(settings.admin_listen, [&tier] { return tier.ready(); });
  admin.start();
  log::info("sluice-auth listening",
            {{"grpc", settings.listen}, {"admin", settings.admin_listen}, {"database", settings.pg.describe()}});

  int signal = wait_for_termination_reloading(tenants_file.get());
  log::info("shutting down", {{"signal", signal}});
  report_readiness.stop();
  // Fail queued database work first so that in-flight calls finish quickly, then stop
  // the server with a short deadline.
  if (system_events) system_events->stop();
  tier.stop();
  server.shutdown(std::chrono::seconds(2));
  admin.stop();
  return 0;
}

}  // namespace

int main() { return sluice::run_service("sluice-auth", run); }
