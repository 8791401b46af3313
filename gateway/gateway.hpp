#pragma once
// The gateway tier: client connections in, one stream to each broker, lookups to
// the auth service. Used by sluice-gateway and by the all-in-one binary.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "gateway/auth_client.hpp"
#include "common/broker_set.hpp"
#include "gateway/gateway_config.hpp"
#include "gateway/gateway_context.hpp"

namespace sluice::gateway {

class Worker;
class Listener;

class Gateway {
 public:
  // `connect_broker` makes the channel to each broker of config.brokers.
  Gateway(GatewayConfig config, BrokerSet::StreamFactory connect_broker, std::shared_ptr<grpc::Channel> auth_channel);
  ~Gateway();

  // docs/hosting.md#routing: serve the instances of a tenants file (any thread; a
  // reloaded file takes effect for the next request, and the clients of instances it
  // no longer lists are told to go away). Without a call, every request is the
  // environment's one instance.
  void update_tenants(std::shared_ptr<const Tenants> tenants);
  // Binds (throws ConfigError when it cannot), starts the workers and the broker stream.
  void start();
  // Fails readiness at once, stops accepting, tells every client to go away at a
  // random moment within the configured drain window (SLUICE_DRAIN_SECONDS; SSE ends,
  // WebSocket closes 1001), waits for them up to the window plus `flush_grace`, stops.
  void stop(std::chrono::milliseconds flush_grace = std::chrono::milliseconds(2000));

  int port() const;
  // False from the start of a drain on: load balancers send new clients elsewhere.
  bool ready() const { return !draining_.load() && broker_.connected(); }
  size_t client_count() const;

 private:
  void log_write_mode() const;
  void on_events(BrokerLink::Events events);

  AuthClient auth_;
  BrokerSet broker_;
  GatewayContext context_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Listener> listener_;
  bool started_ = false;
  std::atomic<bool> draining_{false};
};

}  // namespace sluice::gateway
