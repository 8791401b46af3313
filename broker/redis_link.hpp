#pragma once
// One distinct Redis (docs/hosting.md#redis): its subscriber connection and its command
// connection, shared by every instance that uses that Redis under its own namespace.
// Each instance keeps its own RedisSubscriber and SubscriptionHeartbeat; the link
// starts the two connections, tells every attached one when they come and go, and
// hands each pub/sub message to the subscriber whose namespace it carries. With one
// instance, one link serves it exactly as its own connections did.
// Redis thread only, like the connections.
#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/redis_config.hpp"
#include "broker/redis_connection.hpp"
#include "common/metrics.hpp"

namespace sluice::broker {

class RedisSubscriber;
class SubscriptionHeartbeat;

class RedisLink {
 public:
  // `config`: the connection settings (its namespace is not used here). `shared`: the
  // link of a tenants file, whose messages are always routed by namespace; otherwise
  // the one instance gets every message, its namespace cut blindly as the reference
  // does (docs/protocol.md#redis-namespace).
  RedisLink(boost::asio::io_context& io, const RedisConfig& config, bool shared);
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  void start();
  void stop();

  RedisConnection& subscriber_connection() { return subscriber_; }
  RedisConnection& command_connection() { return command_; }

  // An instance's subscriber and heartbeat join or leave the link. A subscriber's
  // namespace and patterns must differ from every other attached one's.
  void attach(RedisSubscriber& subscriber);
  void detach(RedisSubscriber& subscriber);
  void attach(SubscriptionHeartbeat& heartbeat);
  void detach(SubscriptionHeartbeat& heartbeat);
  bool empty() const { return subscribers_.empty() && heartbeats_.empty(); }

  // The attached subscriber a message of `redis_channel` belongs to, or null.
  RedisSubscriber* route(std::string_view redis_channel) const;

 private:
  void on_subscriber_ready();
  void on_subscriber_lost();
  void on_push(redisReply* reply);
  void on_command_ready();

  const bool shared_;
  RedisConnection subscriber_;
  RedisConnection command_;
  std::vector<RedisSubscriber*> subscribers_;
  std::vector<SubscriptionHeartbeat*> heartbeats_;
  std::unordered_map<std::string, RedisSubscriber*> by_namespace_;
  std::unordered_map<std::string, RedisSubscriber*> by_pattern_;
  // This connection's (P)SUBSCRIBE count as Redis last reported it: its share of the
  // process-wide gauge.
  int64_t subscriptions_ = 0;
  metrics::Gauge& subscriptions_gauge_;
  metrics::Counter& messages_received_;
  metrics::Counter& subscriptions_refused_;
};

}  // namespace sluice::broker
