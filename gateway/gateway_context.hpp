#pragma once
// What every worker and session of one gateway process shares.
#include "gateway/auth_client.hpp"
#include "gateway/auth_failure_limiter.hpp"
#include "gateway/channel_workers.hpp"
#include "gateway/clock.hpp"
#include "gateway/connection_limits.hpp"
#include "common/broker_set.hpp"
#include "gateway/gateway_config.hpp"
#include "gateway/gateway_metrics.hpp"
#include "gateway/recent_kills.hpp"
#include "gateway/tenant_router.hpp"

namespace sluice::gateway {

class GatewayContext {
 public:
  GatewayContext(GatewayConfig c, AuthClient& a, BrokerSet& b, NowFunction clock = real_clock())
      : config(std::move(c)),
        now(std::move(clock)),
        auth(a),
        broker(b),
        recent_kills(now),
        connection_limits(config.max_connections, config.max_connections_per_address, metrics.open_connections),
        auth_failures(config.auth_failures_per_address_per_second) {}
  const GatewayConfig config;
  // The gateway's clock (gateway/clock.hpp): staleness bounds, kill windows, drain.
  const NowFunction now;
  GatewayMetrics metrics;
  AuthClient& auth;
  BrokerSet& broker;
  RecentKills recent_kills;
  ChannelWorkers channel_workers;
  ConnectionLimits connection_limits;
  AuthFailureLimiter auth_failures;
  // docs/hosting.md#routing: which instance a request's Host names.
  TenantRouter tenants;

  // A token lookup that asks again, bypassing the auth cache, when the answer
  // names a token or account killed recently. `done` runs on a gRPC thread.
  void authenticate(const std::string& tenant, const std::string& token, std::function<void(TokenResult)> done);
};

}  // namespace sluice::gateway
