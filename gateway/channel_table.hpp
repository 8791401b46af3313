#pragma once
// Which subscriptions on one worker hear each Redis channel, and the broker
// subscriptions that follow: a channel's first listener on the worker acquires it
// through the broker set, its last one releases it, and a listener joining a channel
// already held refreshes the channel's subscription heartbeat key
// (docs/protocol.md#subscription-heartbeat-keys). Worker thread only.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice {
class BrokerSet;
}

namespace sluice::gateway {

struct Subscription;
class ChannelWorkers;

class ChannelTable {
 public:
  struct Listener {
    Subscription* subscription;
    uint32_t channel_index;  // which of the subscription's plan channels this is
  };

  // `worker`: this worker's index in `workers`, told of its first and last listener of each channel.
  ChannelTable(BrokerSet& brokers, ChannelWorkers& workers, unsigned worker)
      : brokers_(brokers), workers_(workers), worker_(worker) {}

  void attach(Subscription& subscription);
  void detach(Subscription& subscription);
  // The listeners of a channel, or null when nobody on this worker hears it.
  const std::vector<Listener>* listeners(const std::string& channel) const;

 private:
  BrokerSet& brokers_;
  ChannelWorkers& workers_;
  const unsigned worker_;
  std::unordered_map<std::string, std::vector<Listener>> listeners_;
};

}  // namespace sluice::gateway
