#pragma once
// The broker's one subscriber connection (docs/protocol.md#shared-redis-subscriptions): keeps Redis'
// SUBSCRIBEs in
// line with what the gateways want, holds the two system-channel patterns for good
// (design "Channels worth sharing"), parses every message once and hands the same
// immutable BrokerMessage to every interested gateway stream.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "broker/redis_connection.hpp"
#include "broker/redis_link.hpp"
#include "broker/subscription_registry.hpp"
#include "common/metrics.hpp"
#include "broker/redis_message.hpp"
#include "broker/redis_config.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice::broker {

class RedisSubscriber {
 public:
  struct SystemListener {
    // Every system-channel message (kill, filters_changed).
    std::function<void(const v1::ChannelEvent&)> on_event;
    // The system channels are subscribed again after a lost Redis connection: what was
    // published on them meanwhile was missed. Optional.
    std::function<void()> on_missed = {};
  };

  // One instance's subscriptions on `link`: `config` is the instance's Redis settings
  // (its namespace is written here), `tenant` its name, carried on every event (empty
  // without a tenants file, docs/hosting.md#tenants).
  RedisSubscriber(boost::asio::io_context& io, const RedisConfig& config, std::string tenant,
                  SubscriptionRegistry& registry, RedisLink& link);

  // start() and stop() run on the Redis thread: they attach to and detach from the
  // link; stop() also gives back what this instance holds on a connection that stays.
  void start();
  void stop();

  // Any thread: bring Redis in line with the registry for these channels.
  void channels_changed(std::vector<std::string> channels);
  // True while the subscriber connection is up and subscribed.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // The system patterns are subscribed on the current connection, and after a reconnect
  // the listeners have been told what was missed: kills reach them from now on. Any thread.
  bool system_channels_live() const { return system_channels_live_.load(std::memory_order_acquire); }
  // Called on the Redis thread on every readiness change. Replacing it (with nullptr, to
  // detach) waits for a call in progress, so the old callback's target may go away after.
  // The callback must not call this.
  void set_readiness_callback(std::function<void(bool)> callback);
  // Called on the Redis thread for every system-channel message (kill, filters_changed).
  void add_system_listener(SystemListener listener);

  const std::string& tenant() const { return tenant_; }
  const std::string& redis_namespace() const { return config_.redis_namespace; }
  // The two system-channel patterns held for good, with the namespace.
  const std::vector<std::string>& patterns() const { return patterns_; }

  // From the link (Redis thread): the connection is up, or lost; a message, a
  // pattern message, a SUBSCRIBE or PSUBSCRIBE confirmed.
  void on_ready();
  void on_lost();
  void deliver(std::string_view redis_channel, std::string_view text);
  void deliver_system(std::string_view redis_channel, std::string_view text);
  void confirmed(std::string_view redis_channel);
  void pattern_confirmed();

 private:
  // A copy, so that listeners run without the lock.
  std::vector<SystemListener> system_listeners() const;
  void reconcile(const std::vector<std::string>& channels);
  void send_in_batches(const char* command, const std::vector<std::string>& channels, size_t per_command);
  struct Parsed {
    std::string_view channel;
    std::shared_ptr<sluice::v1::BrokerMessage> message;
    RedisMessageVerdict verdict;
  };
  Parsed parse(std::string_view redis_channel, std::string_view text);
  // Counts and logs a message that cannot be delivered.
  void drop(RedisMessageVerdict verdict, std::string_view channel, std::string_view text);
  void notify_readiness(bool ready);
  RedisConnection& connection() { return link_.subscriber_connection(); }

  boost::asio::io_context& io_;
  const RedisConfig& config_;
  const std::string tenant_;
  SubscriptionRegistry& registry_;
  RedisLink& link_;
  const std::vector<std::string> patterns_;
  bool attached_ = false;

  // Channels (without namespace) SUBSCRIBEd on the current connection and not
  // UNSUBSCRIBEd since. Redis thread only.
  std::unordered_set<std::string> subscribed_;
  // Channels re-SUBSCRIBEd by on_ready() whose confirmation has not come yet: each
  // confirmation tells the channel's gateway streams (Resubscribed) where the restarted
  // subscription begins. Redis thread only.
  std::unordered_set<std::string> awaiting_confirmation_;
  // Whether a connection was ready before: only a reconnect restarts subscriptions.
  bool was_ready_before_ = false;
  // After a reconnect, the system patterns whose PSUBSCRIBE Redis has yet to confirm.
  size_t patterns_awaiting_ = 0;
  bool resubscribing_ = false;  // the patterns awaited are a reconnect's
  std::atomic<bool> system_channels_live_{false};
  std::atomic<bool> ready_{false};

  std::mutex readiness_mutex_;  // held while the callback runs
  std::function<void(bool)> readiness_callback_;
  mutable std::mutex callbacks_mutex_;
  std::vector<SystemListener> system_listeners_;

  // Rate limit for warnings about dropped messages (one per interval).
  std::chrono::steady_clock::time_point last_drop_warning_{};
  uint64_t drops_since_warning_ = 0;

  metrics::Counter& dropped_invalid_json_;
  metrics::Counter& dropped_not_an_object_;
  metrics::Counter& dropped_no_event_;
  metrics::Counter& dropped_no_payload_;
  metrics::Counter& dropped_invalid_channel_;
};

}  // namespace sluice::broker
