#pragma once
// What every worker and session of one gateway process shares.
#include "gateway/auth_client.hpp"
#include "common/broker_link.hpp"
#include "gateway/gateway_config.hpp"
#include "gateway/gateway_metrics.hpp"

namespace sluice::gateway {

class GatewayContext {
 public:
  GatewayContext(GatewayConfig c, AuthClient& a, BrokerLink& b) : config(std::move(c)), auth(a), broker(b) {}
  const GatewayConfig config;
  GatewayMetrics metrics;
  AuthClient& auth;
  BrokerLink& broker;
};

}  // namespace sluice::gateway
