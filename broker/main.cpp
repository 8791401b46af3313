// sluice-broker: the broker tier on its own (gRPC Broker service, Redis).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "broker/broker_tier.hpp"
#include "common/env.hpp"
#include "common/service_main.hpp"
#include "common/standalone_tier.hpp"
#include "common/tenants_file.hpp"

namespace {

// The gRPC service, and the name its health is reported under (k8s/README.md: the
// readiness probes ask for it).
constexpr const char* kServiceName = "sluice.v1.Broker";

int run(const sluice::Env& env) {
  using namespace sluice;

  // A stop ends every stream from here, after a grace for what is queued; each channel
  // is still held through its other broker, and gateways move it at their next DNS
  // resolution (docs/scale-out.md#brokers: why a broker in a rollout waits first).
  StandaloneTier<BrokerTier> process(env, BrokerConfig::from_env(env),
                                     {"sluice-broker", kServiceName, "SLUICE_BROKER_LISTEN", std::chrono::seconds(5)});
  BrokerTier& tier = process.tier();
  tier.start();
  const BrokerConfig& config = tier.config();
  const TenantsFile* tenants_file = process.tenants_file();
  return process.serve({{"listen", config.listen},
                        {"admin", config.admin_listen},
                        {"redis", tenants_file ? "per tenant, " + tenants_file->path() : config.redis.describe()}});
}

}  // namespace

int main() { return sluice::run_service("sluice-broker", run); }
