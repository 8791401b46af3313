// sluice-auth: the auth tier on its own (gRPC service sluice.v1.Auth, the standard
// grpc.health.v1.Health service, and an admin HTTP listener for /metrics and probes).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>

#include "auth/auth_tier.hpp"
#include "auth/system_events.hpp"
#include "common/broker_set.hpp"
#include "common/env.hpp"
#include "common/grpc_channel.hpp"
#include "common/service_main.hpp"
#include "common/standalone_tier.hpp"

namespace {

// The gRPC service, and the name its health is reported under (k8s/README.md: the
// readiness probes ask for it).
constexpr const char* kServiceName = "sluice.v1.Auth";

int run(const sluice::Env& env) {
  using namespace sluice;

  // Gateways re-resolve their `dns:///` auth target when a connection ends: closing
  // connections after a while (calls in flight get the grace to finish) lets them find
  // replicas added by a scale-up. Lookups are unary, so no client notices.
  StandaloneTier<AuthTier> process(env, AuthConfig::from_env(env),
                                   {"sluice-auth", kServiceName, "SLUICE_AUTH_LISTEN", std::chrono::seconds(2),
                                    [](grpc::ServerBuilder& builder) {
                                      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 5 * 60 * 1000);
                                      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30 * 1000);
                                    }});
  AuthTier& tier = process.tier();
  const AuthConfig& settings = tier.config();

  // Revocations (kill) and filter changes reach this cache through the broker's
  // broadcast of the system channels; without SLUICE_BROKER_ADDR a revoked token is
  // refused at the latest when its cache entry expires (SLUICE_TOKEN_CACHE_TTL_MS).
  std::unique_ptr<BrokerSet> system_events;
  // Before system_events goes (also when a throw unwinds past serve()), calls stop asking it.
  struct ForgetSystemEvents {
    AuthTier& tier;
    ~ForgetSystemEvents() { tier.set_system_events_live({}); }
  } forget_system_events{tier};
  if (env.non_empty("SLUICE_BROKER_ADDR")) {
    system_events = std::make_unique<BrokerSet>(
        BrokerSetOptions::from_env(env, ""),
        [tls = process.tls(), token = settings.internal_token](const BrokerTarget& broker) {
          return grpc_broker_streams(broker_channel(broker, tls), token);
        },
        "sluice-auth",
        [&tier](BrokerLink::Events events) {
          for (const auto& event : events) apply_system_event(tier.tenants(), *event);
        },
        // Kills published while the stream was down, or while its broker had lost Redis,
        // were missed: forget what they would have.
        [&tier] { system_events_missed(tier.tenants()); });
    // While no broker stream is up, kills may be missed: cached tokens are not trusted.
    tier.set_system_events_live([events = system_events.get()](const std::string&) { return events->connected(); });
    system_events->start();
  }

  return process.serve({{"grpc", settings.listen}, {"admin", settings.admin_listen}, {"database", settings.pg.describe()}},
                       [&system_events] {
                         if (system_events) system_events->stop();
                       });
}

}  // namespace

int main() { return sluice::run_service("sluice-auth", run); }
