#pragma once
// The broker tier as a component: Redis subscriptions (one subscriber and one
// command connection per distinct Redis, on a dedicated Redis thread; one Redis and
// one instance without a tenants file, docs/hosting.md#redis) behind the gRPC Broker
// service.
// It owns no grpc::Server: the sluice-broker binary and the all-in-one binary
// register service() on their own server. Shut that server down before
// destroying the tier.
#include <grpcpp/grpcpp.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <atomic>
#include <memory>

#include "broker/broker_service.hpp"
#include "broker/broker_tenants.hpp"
#include "common/broker_link.hpp"
#include "common/env.hpp"
#include "common/tenants.hpp"
#include "broker/redis_config.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice {

struct BrokerConfig {
  RedisConfig redis;
  std::string listen = "127.0.0.1:50051";       // SLUICE_BROKER_LISTEN
  std::string admin_listen = "127.0.0.1:9091";  // SLUICE_BROKER_ADMIN_LISTEN; empty disables
  std::string internal_token;                   // SLUICE_INTERNAL_TOKEN; empty: no check
  size_t gateway_queue = 65536;                 // SLUICE_BROKER_GATEWAY_QUEUE (messages per stream)
  size_t gateway_queue_bytes = 128u << 20;      // SLUICE_BROKER_GATEWAY_QUEUE_BYTES (their bytes)
  // How often `subscribed:` keys are SET again while wanted (360 s,
  // docs/protocol.md#subscription-heartbeat-keys). Tests shorten it.
  std::chrono::milliseconds heartbeat_interval = std::chrono::seconds(360);

  // Throws ConfigError naming the variable.
  static BrokerConfig from_env(const Env& env);
};

class BrokerTier {
 public:
  // With `tenants`, serves those instances (config.redis then comes from each one's
  // variables) and throws ConfigError when one's are wrong.
  explicit BrokerTier(BrokerConfig config, std::shared_ptr<const Tenants> tenants = nullptr);
  ~BrokerTier();
  BrokerTier(const BrokerTier&) = delete;
  BrokerTier& operator=(const BrokerTier&) = delete;

  grpc::Service* service();
  // In-process Events streams for a gateway in the same process (the all-in-one):
  // gRPC's contract without its carriage (broker/local_gateway_stream.hpp).
  BrokerStreamOpener local_streams();
  // Starts the Redis thread and connects (never waits for Redis).
  void start();
  // Finishes every gateway stream with UNAVAILABLE, closes Redis, joins the thread.
  void stop();
  // One instance: its subscriber connection is up and subscribed. Several: started,
  // for one instance's Redis being down must not take the others out of rotation.
  bool ready() const;
  // Whether system-channel messages of `tenant` reach the system listeners now: its Redis
  // subscriber connection is up with the system patterns confirmed, and after a
  // reconnect the listeners were told what was missed.
  bool system_events_live(const std::string& tenant) const;
  // Called (on the Redis thread) on every readiness change; with several instances,
  // at once with the state that does not change until stop.
  void set_readiness_callback(std::function<void(bool)> callback);
  // A reloaded tenants file (any thread; applied on the Redis thread).
  void update_tenants(std::shared_ptr<const Tenants> tenants);
  // Called (on the Redis thread) for every system-channel event (kill,
  // filters_changed on timeline:access_token:* and timeline:system:*), and when such
  // events were missed (RedisSubscriber::SystemListener).
  void add_system_listener(broker::RedisSubscriber::SystemListener listener);

  const BrokerConfig& config() const { return config_; }

 private:
  BrokerConfig config_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<bool> serving_{false};  // between start and stop
  broker::BrokerTenants tenants_;
  broker::BrokerService service_;
};

}  // namespace sluice
