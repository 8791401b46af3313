#include "gateway/channel_table.hpp"

#include "common/broker_set.hpp"
#include "gateway/channel_workers.hpp"
#include "gateway/client.hpp"

namespace sluice::gateway {

void ChannelTable::attach(Subscription& subscription) {
  const auto& channels = subscription.plan.channels;
  subscription.slots.resize(channels.size());
  for (size_t i = 0; i < channels.size(); ++i) {
    auto& list = listeners_[channels[i]];
    subscription.slots[i] = static_cast<uint32_t>(list.size());
    list.push_back(Listener{&subscription, static_cast<uint32_t>(i)});
    if (list.size() == 1) {
      workers_.add(channels[i], worker_);
      brokers_.acquire(channels[i], /*heartbeat=*/true);
    } else {
      brokers_.touch(channels[i]);
    }
  }
}

void ChannelTable::detach(Subscription& subscription) {
  const auto& channels = subscription.plan.channels;
  for (size_t i = 0; i < channels.size() && i < subscription.slots.size(); ++i) {
    auto it = listeners_.find(channels[i]);
    if (it == listeners_.end()) continue;
    auto& list = it->second;
    const uint32_t slot = subscription.slots[i];
    if (slot >= list.size() || list[slot].subscription != &subscription) continue;
    list[slot] = list.back();
    list[slot].subscription->slots[list[slot].channel_index] = slot;
    list.pop_back();
    if (list.empty()) {
      listeners_.erase(it);
      workers_.remove(channels[i], worker_);
      brokers_.release(channels[i]);
    }
  }
  subscription.slots.clear();
}

const std::vector<ChannelTable::Listener>* ChannelTable::listeners(const std::string& channel) const {
  auto it = listeners_.find(channel);
  return it == listeners_.end() ? nullptr : &it->second;
}

}  // namespace sluice::gateway
