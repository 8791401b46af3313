#include "broker/redis_link.hpp"

#include <algorithm>

#include "broker/redis_subscriber.hpp"
#include "broker/subscription_heartbeat.hpp"
#include "common/log.hpp"

namespace sluice::broker {
namespace {

std::string_view text_of(const redisReply* reply) {
  if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS)) return {};
  return {reply->str, reply->len};
}

template <class T>
void erase_value(std::vector<T*>& items, T* item) {
  items.erase(std::remove(items.begin(), items.end(), item), items.end());
}

}  // namespace

RedisLink::RedisLink(boost::asio::io_context& io, const RedisConfig& config, bool shared)
    : shared_(shared),
      subscriber_(io, config, "subscriber",
                  RedisConnection::Callbacks{[this] { on_subscriber_ready(); }, [this] { on_subscriber_lost(); },
                                             [this](redisReply* reply) { on_push(reply); }}),
      command_(io, config, "command", RedisConnection::Callbacks{[this] { on_command_ready(); }, {}, {}}),
      subscriptions_gauge_(metrics::Registry::global().gauge(
          "redis_subscriptions", "The number of Redis channels the streaming server is subscribed to")),
      messages_received_(metrics::Registry::global().counter(
          "redis_messages_received_total",
          "The total number of messages the streaming server has received from redis subscriptions")),
      subscriptions_refused_(metrics::Registry::global().counter(
          "sluice_redis_subscriptions_refused_total",
          "Subscription commands Redis answered with an error (their channels get no messages)")) {}

void RedisLink::start() {
  subscriber_.start();
  command_.start();
}

void RedisLink::stop() {
  subscriber_.stop();
  command_.stop();
  subscriptions_gauge_.add(-subscriptions_);
  subscriptions_ = 0;
}

void RedisLink::attach(RedisSubscriber& subscriber) {
  subscribers_.push_back(&subscriber);
  by_namespace_[subscriber.redis_namespace()] = &subscriber;
  for (const auto& pattern : subscriber.patterns()) by_pattern_[pattern] = &subscriber;
}

void RedisLink::detach(RedisSubscriber& subscriber) {
  erase_value(subscribers_, &subscriber);
  by_namespace_.erase(subscriber.redis_namespace());
  for (const auto& pattern : subscriber.patterns()) by_pattern_.erase(pattern);
}

void RedisLink::attach(SubscriptionHeartbeat& heartbeat) { heartbeats_.push_back(&heartbeat); }

void RedisLink::detach(SubscriptionHeartbeat& heartbeat) { erase_value(heartbeats_, &heartbeat); }

// Every Mastodon channel starts with "timeline:", and the instances on one Redis have
// different namespaces (BrokerTenants refuses two with the same), so the namespace is
// what precedes a ":timeline:"; the longest one attached wins. Without a tenants file
// the one instance gets every message, its namespace cut off blindly as the reference
// does (docs/protocol.md#redis-namespace); with one, a message of an instance just
// removed from a shared Redis must not reach the instance left.
RedisSubscriber* RedisLink::route(std::string_view redis_channel) const {
  if (!shared_) return subscribers_.empty() ? nullptr : subscribers_.front();
  constexpr std::string_view kTimeline = "timeline:";
  for (size_t end = redis_channel.rfind(":timeline:"); end != std::string_view::npos;
       end = end == 0 ? std::string_view::npos : redis_channel.rfind(":timeline:", end - 1)) {
    auto it = by_namespace_.find(std::string(redis_channel.substr(0, end)));
    if (it != by_namespace_.end()) return it->second;
  }
  if (redis_channel.substr(0, kTimeline.size()) == kTimeline) {
    auto it = by_namespace_.find("");
    if (it != by_namespace_.end()) return it->second;
  }
  return nullptr;
}

void RedisLink::on_subscriber_ready() {
  // Copies: a callback may attach or detach.
  for (RedisSubscriber* subscriber : std::vector<RedisSubscriber*>(subscribers_)) subscriber->on_ready();
}

void RedisLink::on_subscriber_lost() {
  subscriptions_gauge_.add(-subscriptions_);
  subscriptions_ = 0;
  for (RedisSubscriber* subscriber : std::vector<RedisSubscriber*>(subscribers_)) subscriber->on_lost();
}

void RedisLink::on_command_ready() {
  for (SubscriptionHeartbeat* heartbeat : std::vector<SubscriptionHeartbeat*>(heartbeats_)) heartbeat->on_ready();
}

void RedisLink::on_push(redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR) {
    // As the reference logs a failed subscribe, and goes on: each SUBSCRIBE names one
    // channel (redis_subscriber.cpp), so the others still work; Redis' message says why.
    subscriptions_refused_.inc();
    log::error("Redis refused a subscription", {{"error", std::string(reply->str, reply->len)}});
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  std::string_view kind = text_of(reply->element[0]);
  if (kind == "message") {
    messages_received_.inc();
    std::string_view channel = text_of(reply->element[1]);
    if (RedisSubscriber* subscriber = route(channel)) subscriber->deliver(channel, text_of(reply->element[2]));
  } else if (kind == "pmessage" && reply->elements >= 4) {
    messages_received_.inc();
    auto it = by_pattern_.find(std::string(text_of(reply->element[1])));
    if (it != by_pattern_.end()) it->second->deliver_system(text_of(reply->element[2]), text_of(reply->element[3]));
  } else if (kind == "subscribe" || kind == "unsubscribe" || kind == "psubscribe" || kind == "punsubscribe") {
    // Redis' count covers channels and patterns of this connection, so the system
    // patterns are included.
    if (reply->element[2]->type == REDIS_REPLY_INTEGER) {
      subscriptions_gauge_.add(reply->element[2]->integer - subscriptions_);
      subscriptions_ = reply->element[2]->integer;
    }
    if (kind == "subscribe") {
      std::string_view channel = text_of(reply->element[1]);
      if (RedisSubscriber* subscriber = route(channel)) subscriber->confirmed(channel);
    } else if (kind == "psubscribe") {
      auto it = by_pattern_.find(std::string(text_of(reply->element[1])));
      if (it != by_pattern_.end()) it->second->pattern_confirmed();
    }
  }
}

}  // namespace sluice::broker
