#pragma once
// Which gateway stream wants which channel (docs/protocol.md#shared-redis-subscriptions, across gateways).
// A channel is wanted while at least one stream has subscribed it: the broker
// SUBSCRIBEs on the first and UNSUBSCRIBEs after the last. Listener lists are
// copy-on-write snapshots so that the Redis thread takes the lock only to copy
// one pointer per message.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/event_sink.hpp"

namespace sluice::broker {

class SubscriptionRegistry {
 public:
  using StreamId = uint64_t;
  using Sinks = std::vector<std::shared_ptr<EventSink>>;
  using SinksSnapshot = std::shared_ptr<const Sinks>;

  // What Redis must be told after a change.
  struct Change {
    // Channels that became wanted or stopped being wanted: to (UN)SUBSCRIBE.
    std::vector<std::string> toggled;
    // Channels whose `subscribed:` key must be SET now (docs/protocol.md#subscription-heartbeat-keys).
    std::vector<std::string> heartbeat;
  };

  SubscriptionRegistry();

  // A gateway stream joins: it receives system-channel broadcasts from now on.
  void add_stream(StreamId id, std::shared_ptr<EventSink> sink);
  // Subscribing an already subscribed channel again only refreshes its heartbeat.
  Change subscribe(StreamId id, const std::vector<std::string>& channels, bool heartbeat);
  Change unsubscribe(StreamId id, const std::vector<std::string>& channels);
  // The channels of `channels` that stream `id` holds with a heartbeat: a Touch may
  // SET only those keys, whatever a gateway sends.
  std::vector<std::string> held_with_heartbeat(StreamId id, const std::vector<std::string>& channels) const;
  // Releases everything the stream held; a no-op for an unknown stream.
  Change remove_stream(StreamId id);
  // The channels stream `id` holds, each with whether it asked for a heartbeat.
  std::map<std::string, bool> channels_of(StreamId id) const;

  bool wanted(std::string_view channel) const;
  std::vector<std::string> wanted_channels() const;
  // Channels some stream subscribed with heartbeat=true.
  std::vector<std::string> heartbeat_channels() const;
  // Streams listening on `channel` (never null).
  SinksSnapshot listeners(std::string_view channel) const;
  // Every stream (for system-channel broadcasts; never null).
  SinksSnapshot streams() const;
  size_t stream_count() const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  struct Channel {
    // stream → subscribed with heartbeat
    std::unordered_map<StreamId, bool> listeners;
    size_t heartbeat_listeners = 0;
    SinksSnapshot sinks;
  };
  struct Stream {
    std::shared_ptr<EventSink> sink;
    std::unordered_map<std::string, bool, StringHash, std::equal_to<>> channels;
  };

  void rebuild_sinks(Channel& channel);
  void rebuild_streams();
  // Removes one listener; true when the channel is no longer wanted.
  bool drop_listener(const std::string& name, StreamId id);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, Channel, StringHash, std::equal_to<>> channels_;
  std::unordered_map<StreamId, Stream> streams_;
  SinksSnapshot all_sinks_;
  SinksSnapshot empty_;
};

}  // namespace sluice::broker
