#include "broker/subscription_registry.hpp"

namespace sluice::broker {

SubscriptionRegistry::SubscriptionRegistry()
    : all_sinks_(std::make_shared<const Sinks>()), empty_(std::make_shared<const Sinks>()) {}

void SubscriptionRegistry::rebuild_sinks(Channel& channel) {
  auto sinks = std::make_shared<Sinks>();
  sinks->reserve(channel.listeners.size());
  for (const auto& [id, heartbeat] : channel.listeners) {
    auto it = streams_.find(id);
    if (it != streams_.end()) sinks->push_back(it->second.sink);
  }
  channel.sinks = std::move(sinks);
}

void SubscriptionRegistry::rebuild_streams() {
  auto sinks = std::make_shared<Sinks>();
  sinks->reserve(streams_.size());
  for (const auto& [id, stream] : streams_) sinks->push_back(stream.sink);
  all_sinks_ = std::move(sinks);
}

void SubscriptionRegistry::add_stream(StreamId id, std::shared_ptr<EventSink> sink) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = streams_.try_emplace(id);
  if (!inserted) return;
  it->second.sink = std::move(sink);
  rebuild_streams();
}

SubscriptionRegistry::Change SubscriptionRegistry::subscribe(StreamId id, const std::vector<std::string>& channels,
                                                             bool heartbeat) {
  Change change;
  std::lock_guard lock(mutex_);
  auto stream = streams_.find(id);
  if (stream == streams_.end()) return change;
  for (const auto& name : channels) {
    auto [entry, first] = channels_.try_emplace(name);
    Channel& channel = entry->second;
    auto [listener, added] = channel.listeners.try_emplace(id, heartbeat);
    if (added) {
      if (heartbeat) ++channel.heartbeat_listeners;
      rebuild_sinks(channel);
    } else if (listener->second != heartbeat) {
      // The same stream subscribed again with the other heartbeat choice.
      if (heartbeat) {
        ++channel.heartbeat_listeners;
      } else {
        --channel.heartbeat_listeners;
      }
      listener->second = heartbeat;
    }
    stream->second.channels[name] = heartbeat;
    if (first) change.toggled.push_back(name);
    if (heartbeat) change.heartbeat.push_back(name);
  }
  return change;
}

std::vector<std::string> SubscriptionRegistry::held_with_heartbeat(StreamId id,
                                                                  const std::vector<std::string>& channels) const {
  std::vector<std::string> held;
  std::lock_guard lock(mutex_);
  auto stream = streams_.find(id);
  if (stream == streams_.end()) return held;
  for (const auto& name : channels) {
    auto channel = stream->second.channels.find(name);
    if (channel != stream->second.channels.end() && channel->second) held.push_back(name);
  }
  return held;
}

bool SubscriptionRegistry::drop_listener(const std::string& name, StreamId id) {
  auto entry = channels_.find(name);
  if (entry == channels_.end()) return false;
  Channel& channel = entry->second;
  auto listener = channel.listeners.find(id);
  if (listener == channel.listeners.end()) return false;
  if (listener->second) --channel.heartbeat_listeners;
  channel.listeners.erase(listener);
  if (channel.listeners.empty()) {
    channels_.erase(entry);
    return true;
  }
  rebuild_sinks(channel);
  return false;
}

SubscriptionRegistry::Change SubscriptionRegistry::unsubscribe(StreamId id, const std::vector<std::string>& channels) {
  Change change;
  std::lock_guard lock(mutex_);
  auto stream = streams_.find(id);
  if (stream == streams_.end()) return change;
  for (const auto& name : channels) {
    if (stream->second.channels.erase(name) == 0) continue;
    if (drop_listener(name, id)) change.toggled.push_back(name);
  }
  return change;
}

SubscriptionRegistry::Change SubscriptionRegistry::remove_stream(StreamId id) {
  Change change;
  std::lock_guard lock(mutex_);
  auto stream = streams_.find(id);
  if (stream == streams_.end()) return change;
  auto held = std::move(stream->second.channels);
  streams_.erase(stream);
  for (const auto& [name, heartbeat] : held) {
    if (drop_listener(name, id)) change.toggled.push_back(name);
  }
  rebuild_streams();
  return change;
}

std::map<std::string, bool> SubscriptionRegistry::channels_of(StreamId id) const {
  std::lock_guard lock(mutex_);
  auto stream = streams_.find(id);
  if (stream == streams_.end()) return {};
  return std::map<std::string, bool>(stream->second.channels.begin(), stream->second.channels.end());
}

bool SubscriptionRegistry::wanted(std::string_view channel) const {
  std::lock_guard lock(mutex_);
  return channels_.find(channel) != channels_.end();
}

std::vector<std::string> SubscriptionRegistry::wanted_channels() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  out.reserve(channels_.size());
  for (const auto& [name, channel] : channels_) out.push_back(name);
  return out;
}

std::vector<std::string> SubscriptionRegistry::heartbeat_channels() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, channel] : channels_) {
    if (channel.heartbeat_listeners > 0) out.push_back(name);
  }
  return out;
}

SubscriptionRegistry::SinksSnapshot SubscriptionRegistry::listeners(std::string_view channel) const {
  std::lock_guard lock(mutex_);
  auto it = channels_.find(channel);
  if (it == channels_.end() || !it->second.sinks) return empty_;
  return it->second.sinks;
}

SubscriptionRegistry::SinksSnapshot SubscriptionRegistry::streams() const {
  std::lock_guard lock(mutex_);
  return all_sinks_;
}

size_t SubscriptionRegistry::stream_count() const {
  std::lock_guard lock(mutex_);
  return streams_.size();
}

}  // namespace sluice::broker
