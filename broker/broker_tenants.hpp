#pragma once
// The Mastodon instances one broker serves (docs/hosting.md#redis). Per instance: which
// gateway streams want which of its channels (a SubscriptionRegistry), and the
// RedisSubscriber and SubscriptionHeartbeat that keep them on its Redis under its
// namespace. Per distinct Redis: one RedisLink, the connection pair every instance on
// that Redis shares. Without a tenants file there is one instance, named "", on one
// link, exactly as before.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/event_sink.hpp"
#include "broker/redis_config.hpp"
#include "broker/redis_link.hpp"
#include "broker/redis_subscriber.hpp"
#include "broker/subscription_heartbeat.hpp"
#include "broker/subscription_registry.hpp"
#include "common/tenants.hpp"

namespace sluice::broker {

class TenantBroker {
 public:
  TenantBroker(boost::asio::io_context& io, std::string name, RedisConfig redis, RedisLink& link,
               std::chrono::milliseconds heartbeat_interval);
  TenantBroker(const TenantBroker&) = delete;
  TenantBroker& operator=(const TenantBroker&) = delete;

  const std::string& name() const { return name_; }
  const RedisConfig& redis() const { return redis_; }
  RedisLink& link() { return link_; }
  SubscriptionRegistry& registry() { return registry_; }
  RedisSubscriber& subscriber() { return subscriber_; }
  SubscriptionHeartbeat& heartbeat() { return heartbeat_; }

 private:
  const std::string name_;
  const RedisConfig redis_;
  RedisLink& link_;
  SubscriptionRegistry registry_;
  RedisSubscriber subscriber_;
  SubscriptionHeartbeat heartbeat_;
};

class BrokerTenants {
 public:
  using StreamId = SubscriptionRegistry::StreamId;
  using Sink = std::shared_ptr<EventSink>;

  // One instance from the environment's Redis settings.
  BrokerTenants(boost::asio::io_context& io, const RedisConfig& redis, std::chrono::milliseconds heartbeat_interval);
  // The instances of a tenants file. Throws ConfigError naming the instance when its
  // Redis variables are wrong, or naming two that share a Redis and a namespace (each
  // would receive the other's events).
  BrokerTenants(boost::asio::io_context& io, const Tenants& tenants, std::chrono::milliseconds heartbeat_interval);
  ~BrokerTenants();
  BrokerTenants(const BrokerTenants&) = delete;
  BrokerTenants& operator=(const BrokerTenants&) = delete;

  bool multi_tenant() const { return multi_tenant_; }
  // The single instance (no tenants file).
  TenantBroker& only() const;

  // Any thread. The instance named `name`, or null for one this broker does not serve.
  std::shared_ptr<TenantBroker> find(std::string_view name) const;
  // A gateway stream joins every instance (their system channels reach it) and leaves
  // them all, giving back its channels.
  void add_stream(StreamId id, Sink sink);
  void remove_stream(StreamId id);
  // A stream's subscribe or unsubscribe under instance `tenant`, applied to its registry
  // under the lock a reload removes instances under: a removal that passed between
  // finding the instance and subscribing lost those channels for good. Channels asked
  // for under an instance this broker does not serve (yet) — a gateway whose tenants
  // file was reloaded first — are kept and subscribed when it comes; `tenant` is then
  // null and there is no change to apply. The caller applies `change` to the tenant's
  // subscriber and heartbeat.
  struct Applied {
    std::shared_ptr<TenantBroker> tenant;
    SubscriptionRegistry::Change change;
  };
  Applied subscribe(std::string_view tenant, StreamId id, const std::vector<std::string>& channels, bool heartbeat);
  Applied unsubscribe(std::string_view tenant, StreamId id, const std::vector<std::string>& channels);
  void add_system_listener(RedisSubscriber::SystemListener listener);

  // Redis thread.
  void start();
  void stop();
  // A reloaded tenants file (Redis thread): new instances are served, removed ones
  // stop (their channels are unsubscribed); one whose new settings are refused keeps
  // what it had. An instance whose Redis settings or
  // namespace changed keeps the old ones until the broker restarts (logged): its
  // gateways' subscriptions live on that connection.
  void update(const Tenants& tenants);

 private:
  struct Wanted {
    std::string name;
    RedisConfig redis;
  };
  // Each instance's Redis settings, checked; bad ones throw (`strict`) or are logged,
  // left out and named in `refused`.
  static std::vector<Wanted> wanted_of(const Tenants& tenants, bool strict, std::set<std::string>* refused = nullptr);
  // Under mutex_.
  std::shared_ptr<TenantBroker> build_locked(const Wanted& wanted);
  void start_tenant(TenantBroker& tenant);

  boost::asio::io_context& io_;
  const std::chrono::milliseconds heartbeat_interval_;
  const bool multi_tenant_;
  bool started_ = false;  // Redis thread

  mutable std::mutex mutex_;  // guards what follows
  std::map<std::string, std::shared_ptr<TenantBroker>, std::less<>> tenants_;
  std::map<std::string, std::unique_ptr<RedisLink>> links_;  // by RedisConfig::connection_key()
  std::unordered_map<StreamId, Sink> streams_;
  std::vector<RedisSubscriber::SystemListener> listeners_;
  // tenant → stream → channel → heartbeat
  std::map<std::string, std::unordered_map<StreamId, std::map<std::string, bool>>, std::less<>> unknown_;
  // Removed instances and emptied links, kept until the broker stops: handlers of
  // theirs may still be queued on the Redis thread.
  std::vector<std::shared_ptr<TenantBroker>> retired_;
  std::vector<std::unique_ptr<RedisLink>> retired_links_;
};

}  // namespace sluice::broker
