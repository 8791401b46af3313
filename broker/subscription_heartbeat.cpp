#include "broker/subscription_heartbeat.hpp"

#include <boost/asio/post.hpp>

namespace sluice::broker {

SubscriptionHeartbeat::SubscriptionHeartbeat(boost::asio::io_context& io, const RedisConfig& config,
                                             SubscriptionRegistry& registry, RedisLink& link,
                                             std::chrono::milliseconds interval)
    : io_(io),
      config_(config),
      registry_(registry),
      link_(link),
      interval_(interval),
      timer_(io),
      coalesce_timer_(io) {}

void SubscriptionHeartbeat::start() {
  link_.attach(*this);
  arm_timer();
  if (link_.command_connection().ready()) on_ready();
}

void SubscriptionHeartbeat::stop() {
  if (stopping_) return;
  stopping_ = true;
  timer_.cancel();
  coalesce_timer_.cancel();
  link_.detach(*this);
}

void SubscriptionHeartbeat::arm_timer() {
  timer_.expires_after(interval_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    set_keys(registry_.heartbeat_channels());
    arm_timer();
  });
}

void SubscriptionHeartbeat::touch(std::vector<std::string> channels) {
  if (channels.empty()) return;
  boost::asio::post(io_, [this, channels = std::move(channels)] { set_keys(channels); });
}

void SubscriptionHeartbeat::touch_coalesced(std::vector<std::string> channels) {
  if (channels.empty()) return;
  boost::asio::post(io_, [this, channels = std::move(channels)] {
    if (stopping_) return;
    bool armed = !coalescing_.empty();
    coalescing_.insert(channels.begin(), channels.end());
    if (armed) return;
    coalesce_timer_.expires_after(kCoalesceWindow);
    coalesce_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      std::vector<std::string> due(coalescing_.begin(), coalescing_.end());
      coalescing_.clear();
      set_keys(due);
    });
  });
}

void SubscriptionHeartbeat::set_keys(const std::vector<std::string>& channels) {
  if (stopping_) return;  // an instance removed by a reload: its keys expire
  const std::string ttl = std::to_string(kTtlSeconds);
  for (const auto& channel : channels) {
    // Replies are ignored, as in the reference.
    if (!link_.command_connection().command({"SET", config_.with_namespace("subscribed:" + channel), "1", "EX", ttl})) {
      owed_.insert(channel);
    }
  }
}

void SubscriptionHeartbeat::on_ready() {
  std::unordered_set<std::string> due = std::move(owed_);
  owed_.clear();
  for (auto& channel : registry_.heartbeat_channels()) due.insert(std::move(channel));
  set_keys(std::vector<std::string>(due.begin(), due.end()));
}

}  // namespace sluice::broker
