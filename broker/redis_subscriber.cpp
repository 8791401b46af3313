#include "broker/redis_subscriber.hpp"

#include <boost/asio/post.hpp>

#include "common/log.hpp"

namespace sluice::broker {
namespace {

// Redis refuses a whole SUBSCRIBE for one channel it will not give (an ACL without it):
// so each SUBSCRIBE names one channel, as the reference subscribes them one at a time,
// and a refusal costs that channel alone. UNSUBSCRIBE is never refused: its channels go
// in commands of a reasonable size when many go at once.
constexpr size_t kSubscribesPerCommand = 1;
constexpr size_t kUnsubscribesPerCommand = 512;
constexpr auto kDropWarningInterval = std::chrono::seconds(10);

// REDIS_NAMESPACE is literal text in a PSUBSCRIBE pattern.
std::string glob_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* reason_of(RedisMessageVerdict verdict) {
  switch (verdict) {
    case RedisMessageVerdict::invalid_json: return "invalid_json";
    case RedisMessageVerdict::not_an_object: return "not_an_object";
    case RedisMessageVerdict::no_event: return "no_event";
    case RedisMessageVerdict::system_only: return "no_payload";
    case RedisMessageVerdict::invalid_channel: return "invalid_channel";
    case RedisMessageVerdict::deliver: return "deliver";
  }
  return "unknown";
}

metrics::Counter& dropped(const char* reason) {
  return metrics::Registry::global().counter("sluice_redis_dropped_messages_total",
                                             "Redis messages dropped before delivery, by reason",
                                             {{"reason", reason}});
}

std::vector<std::string> system_patterns(const RedisConfig& config) {
  std::string prefix = config.redis_namespace.empty() ? "" : glob_escape(config.with_namespace(""));
  return {prefix + "timeline:access_token:*", prefix + "timeline:system:*"};
}

}  // namespace

RedisSubscriber::RedisSubscriber(boost::asio::io_context& io, const RedisConfig& config, std::string tenant,
                                 SubscriptionRegistry& registry, RedisLink& link)
    : io_(io),
      config_(config),
      tenant_(std::move(tenant)),
      registry_(registry),
      link_(link),
      patterns_(system_patterns(config)),
      dropped_invalid_json_(dropped("invalid_json")),
      dropped_not_an_object_(dropped("not_an_object")),
      dropped_no_event_(dropped("no_event")),
      dropped_no_payload_(dropped("no_payload")),
      dropped_invalid_channel_(dropped("invalid_channel")) {}

void RedisSubscriber::start() {
  if (attached_) return;
  attached_ = true;
  link_.attach(*this);
  // Joining a connection that is up already (an instance added by a reload).
  if (connection().ready()) on_ready();
}

void RedisSubscriber::stop() {
  if (!attached_) return;
  attached_ = false;
  // The connection may stay for the link's other instances: give back what is held.
  if (connection().ready()) {
    send_in_batches("UNSUBSCRIBE", std::vector<std::string>(subscribed_.begin(), subscribed_.end()),
                    kUnsubscribesPerCommand);
    std::vector<std::string> punsubscribe = {"PUNSUBSCRIBE"};
    punsubscribe.insert(punsubscribe.end(), patterns_.begin(), patterns_.end());
    connection().subscription_command(punsubscribe);
  }
  link_.detach(*this);
  subscribed_.clear();
  awaiting_confirmation_.clear();
  system_channels_live_.store(false, std::memory_order_release);
  bool was_ready = ready_.exchange(false);
  if (was_ready) notify_readiness(false);
}

void RedisSubscriber::set_readiness_callback(std::function<void(bool)> callback) {
  std::lock_guard lock(readiness_mutex_);
  readiness_callback_ = std::move(callback);
}

std::vector<RedisSubscriber::SystemListener> RedisSubscriber::system_listeners() const {
  std::lock_guard lock(callbacks_mutex_);
  return system_listeners_;
}

void RedisSubscriber::add_system_listener(SystemListener listener) {
  std::lock_guard lock(callbacks_mutex_);
  system_listeners_.push_back(std::move(listener));
}

void RedisSubscriber::notify_readiness(bool ready) {
  std::lock_guard lock(readiness_mutex_);
  if (readiness_callback_) readiness_callback_(ready);
}

void RedisSubscriber::channels_changed(std::vector<std::string> channels) {
  if (channels.empty()) return;
  boost::asio::post(io_, [this, channels = std::move(channels)] { reconcile(channels); });
}

void RedisSubscriber::send_in_batches(const char* command, const std::vector<std::string>& channels,
                                      size_t per_command) {
  for (size_t start = 0; start < channels.size(); start += per_command) {
    std::vector<std::string> args = {command};
    size_t end = std::min(channels.size(), start + per_command);
    for (size_t i = start; i < end; ++i) args.push_back(config_.with_namespace(channels[i]));
    connection().subscription_command(args);
  }
}

// Compares what the gateways want now with what this connection has asked for, so
// that the order in which changes were posted does not matter.
void RedisSubscriber::reconcile(const std::vector<std::string>& channels) {
  if (!attached_ || !connection().ready()) return;  // on_ready() subscribes everything wanted
  std::vector<std::string> subscribe, unsubscribe;
  for (const auto& channel : channels) {
    bool wanted = registry_.wanted(channel);
    bool held = subscribed_.count(channel) > 0;
    if (wanted && !held) {
      subscribed_.insert(channel);
      subscribe.push_back(channel);
    } else if (!wanted && held) {
      subscribed_.erase(channel);
      unsubscribe.push_back(channel);
    }
  }
  send_in_batches("SUBSCRIBE", subscribe, kSubscribesPerCommand);
  send_in_batches("UNSUBSCRIBE", unsubscribe, kUnsubscribesPerCommand);
}

void RedisSubscriber::on_ready() {
  subscribed_.clear();
  // The system channels of every connection, as two patterns held for good (one per
  // command, as channels are).
  for (const auto& pattern : patterns_) connection().subscription_command({"PSUBSCRIBE", pattern});
  std::vector<std::string> wanted = registry_.wanted_channels();
  subscribed_.insert(wanted.begin(), wanted.end());
  // The first connection starts subscriptions, which gateways align with when they ask
  // for them; a reconnect restarts them under streams that stayed open.
  if (was_ready_before_) awaiting_confirmation_ = std::unordered_set<std::string>(wanted.begin(), wanted.end());
  patterns_awaiting_ = patterns_.size();
  resubscribing_ = was_ready_before_;
  was_ready_before_ = true;
  send_in_batches("SUBSCRIBE", wanted, kSubscribesPerCommand);
  log::info("Redis subscriptions restored", log::for_tenant(tenant_, {{"channels", wanted.size()}}));
  ready_.store(true, std::memory_order_release);
  notify_readiness(true);
}

void RedisSubscriber::on_lost() {
  // Messages published while disconnected are lost (docs/protocol.md#redis-configuration); gateways stay connected.
  subscribed_.clear();
  awaiting_confirmation_.clear();
  patterns_awaiting_ = 0;
  system_channels_live_.store(false, std::memory_order_release);
  ready_.store(false, std::memory_order_release);
  notify_readiness(false);
}

// Redis answers a SUBSCRIBE before it sends any message of that channel, so a marker
// sent now precedes, in every stream, whatever the restarted subscription carries.
void RedisSubscriber::confirmed(std::string_view redis_channel) {
  if (awaiting_confirmation_.empty()) return;
  auto it = awaiting_confirmation_.find(std::string(config_.without_namespace(redis_channel)));
  if (it == awaiting_confirmation_.end()) return;
  auto marker = std::make_shared<v1::BrokerMessage>();
  marker->mutable_resubscribed()->add_channels(*it);
  marker->mutable_resubscribed()->set_tenant(tenant_);
  std::shared_ptr<const v1::BrokerMessage> shared = std::move(marker);
  auto listeners = registry_.listeners(*it);
  awaiting_confirmation_.erase(it);
  for (const auto& sink : *listeners) sink->deliver(shared);
}

// Once both system patterns are confirmed after a reconnect (Redis confirms before it
// sends any message of them): listeners and every stream learn that system events
// published while the connection was down were missed.
void RedisSubscriber::pattern_confirmed() {
  if (patterns_awaiting_ == 0 || --patterns_awaiting_ > 0) return;
  if (!resubscribing_) {
    system_channels_live_.store(true, std::memory_order_release);
    return;
  }
  log::info("system channels subscribed again; kills published meanwhile were missed", log::for_tenant(tenant_, {}));
  const std::vector<SystemListener> listeners = system_listeners();
  for (const auto& listener : listeners) {
    if (listener.on_missed) listener.on_missed();
  }
  // Live only now that what was missed is forgotten.
  system_channels_live_.store(true, std::memory_order_release);
  auto marker = std::make_shared<v1::BrokerMessage>();
  marker->mutable_resubscribed()->set_tenant(tenant_);
  marker->mutable_resubscribed()->set_system_channels(true);
  std::shared_ptr<const v1::BrokerMessage> shared = std::move(marker);
  auto streams = registry_.streams();
  for (const auto& sink : *streams) sink->deliver(shared);
}

// The one parse of a Redis message (docs/protocol.md#shared-redis-subscriptions), shared by normal and system channels.
RedisSubscriber::Parsed RedisSubscriber::parse(std::string_view redis_channel, std::string_view text) {
  Parsed parsed;
  int64_t received_at = now_us();
  parsed.channel = config_.without_namespace(redis_channel);
  parsed.message = std::make_shared<v1::BrokerMessage>();
  v1::ChannelEvent& event = *parsed.message->mutable_event();
  parsed.verdict = parse_redis_message(parsed.channel, text, event);
  event.set_tenant(tenant_);
  event.set_received_at_us(received_at);
  return parsed;
}

void RedisSubscriber::deliver(std::string_view redis_channel, std::string_view text) {
  Parsed parsed = parse(redis_channel, text);
  std::string_view channel = parsed.channel;
  // Only messages with a truthy event and payload reach streams (docs/protocol.md#messages-from-rails); e.g.
  // filters_changed on timeline:<id> is for the system channel only.
  if (parsed.verdict != RedisMessageVerdict::deliver) {
    drop(parsed.verdict, channel, text);
    return;
  }
  std::shared_ptr<const v1::BrokerMessage> shared = std::move(parsed.message);
  auto listeners = registry_.listeners(channel);
  for (const auto& sink : *listeners) sink->deliver(shared);
}

void RedisSubscriber::deliver_system(std::string_view redis_channel, std::string_view text) {
  Parsed parsed = parse(redis_channel, text);
  // A system channel needs an event but no payload (docs/protocol.md#system-channels).
  if (parsed.verdict != RedisMessageVerdict::deliver && parsed.verdict != RedisMessageVerdict::system_only) {
    drop(parsed.verdict, parsed.channel, text);
    return;
  }
  // Clients never see system-channel payloads; gateways only need the event.
  v1::ChannelEvent& event = *parsed.message->mutable_event();
  event.clear_payload();
  event.clear_status();
  std::shared_ptr<const v1::BrokerMessage> shared = std::move(parsed.message);
  // Listeners (the all-in-one's auth cache) first: once a gateway has closed a
  // killed connection, a reconnect with the same token must already be refused.
  const std::vector<SystemListener> listeners = system_listeners();
  for (const auto& listener : listeners) listener.on_event(shared->event());
  auto streams = registry_.streams();
  for (const auto& sink : *streams) sink->deliver(shared);
}

void RedisSubscriber::drop(RedisMessageVerdict verdict, std::string_view channel, std::string_view text) {
  switch (verdict) {
    case RedisMessageVerdict::invalid_json: dropped_invalid_json_.inc(); break;
    case RedisMessageVerdict::not_an_object: dropped_not_an_object_.inc(); break;
    case RedisMessageVerdict::no_event: dropped_no_event_.inc(); break;
    case RedisMessageVerdict::system_only: dropped_no_payload_.inc(); break;
    case RedisMessageVerdict::invalid_channel: dropped_invalid_channel_.inc(); break;
    case RedisMessageVerdict::deliver: return;
  }
  // A message without payload on a normal channel is expected (Rails sends
  // filters_changed to timeline:<id> too): debug only.
  if (verdict == RedisMessageVerdict::system_only) {
    log::debug("Redis message without payload not forwarded", log::for_tenant(tenant_, {{"channel", channel}}));
    return;
  }
  constexpr size_t kExcerpt = 200;
  nlohmann::json fields = log::for_tenant(tenant_, {{"channel", channel},
                                                    {"reason", reason_of(verdict)},
                                                    {"message", std::string(text.substr(0, kExcerpt))}});
  log::debug("Redis message dropped", fields);
  // Warn at most once per interval so that a misbehaving publisher cannot flood the log.
  ++drops_since_warning_;
  auto now = std::chrono::steady_clock::now();
  if (now - last_drop_warning_ >= kDropWarningInterval) {
    fields["dropped_since_last_warning"] = drops_since_warning_;
    log::warn("Dropped an invalid Redis message", fields);
    last_drop_warning_ = now;
    drops_since_warning_ = 0;
  }
}

}  // namespace sluice::broker
