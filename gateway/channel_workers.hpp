#pragma once
// Which workers of this gateway have listeners on each channel, so that an event from
// the broker is handed only to them: on an instance where most channels are home
// timelines with one or two listeners, handing every event to every worker would wake
// each thread for nothing (docs/benchmarks.md#the-headline-a-realistic-load-2026-12-03). Written by the
// workers (a channel's first / last listener on a worker), read by the thread that
// receives events.
#include <bitset>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace sluice::gateway {

class ChannelWorkers {
 public:
  static constexpr unsigned kMaxWorkers = 256;  // SLUICE_GATEWAY_THREADS is at most 256
  using Workers = std::bitset<kMaxWorkers>;

  void add(const std::string& channel, unsigned worker) {
    std::unique_lock lock(mutex_);
    workers_[channel].set(worker);
  }
  void remove(const std::string& channel, unsigned worker) {
    std::unique_lock lock(mutex_);
    auto it = workers_.find(channel);
    if (it == workers_.end()) return;
    it->second.reset(worker);
    if (it->second.none()) workers_.erase(it);
  }
  // An event published before a worker's first listener of the channel was added is not
  // handed to that worker: it was published before that client subscribed.
  Workers of(const std::string& channel) const {
    std::shared_lock lock(mutex_);
    auto it = workers_.find(channel);
    return it == workers_.end() ? Workers{} : it->second;
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, Workers> workers_;
};

}  // namespace sluice::gateway
