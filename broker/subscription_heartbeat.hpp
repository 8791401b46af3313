#pragma once
// Keeps `subscribed:<channel>` keys alive (docs/protocol.md#subscription-heartbeat-keys) on the broker's command
// connection (docs/protocol.md#shared-redis-subscriptions: a separate connection
// does the SETs). Rails reads them to
// decide whether to publish home, list, notification and direct events at all.
// One timer for every channel; keys are never deleted, they expire by themselves.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string>
#include <unordered_set>
#include <vector>

#include "broker/redis_connection.hpp"
#include "broker/redis_link.hpp"
#include "broker/subscription_registry.hpp"
#include "broker/redis_config.hpp"

namespace sluice::broker {

class SubscriptionHeartbeat {
 public:
  static constexpr std::chrono::seconds kInterval{360};
  static constexpr int kTtlSeconds = 1080;

  // One instance's keys, SET with its namespace on `link`'s command connection.
  SubscriptionHeartbeat(boost::asio::io_context& io, const RedisConfig& config, SubscriptionRegistry& registry,
                        RedisLink& link, std::chrono::milliseconds interval = kInterval);

  // start() and stop() run on the Redis thread: they attach to and detach from the link.
  void start();
  void stop();
  // From the link: the command connection is up (again).
  void on_ready();
  // Any thread: SET the keys of these channels now (a Subscribe named them).
  void touch(std::vector<std::string> channels);
  // Any thread: SET these keys within kCoalesceWindow, once per channel however
  // many gateways and clients asked meanwhile (a reconnect storm stays a few SETs).
  void touch_coalesced(std::vector<std::string> channels);
  static constexpr std::chrono::milliseconds kCoalesceWindow{100};
  bool ready() const { return link_.command_connection().ready(); }

 private:
  void set_keys(const std::vector<std::string>& channels);
  void arm_timer();

  boost::asio::io_context& io_;
  const RedisConfig& config_;
  SubscriptionRegistry& registry_;
  RedisLink& link_;
  std::chrono::milliseconds interval_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer coalesce_timer_;
  std::unordered_set<std::string> coalescing_;
  // SETs owed while Redis is down; done on reconnect (docs/protocol.md#subscription-heartbeat-keys).
  std::unordered_set<std::string> owed_;
  bool stopping_ = false;
};

}  // namespace sluice::broker
