#include "common/event_deduplicator.hpp"

#include <functional>

namespace sluice {

namespace {
// Content identity within one process (both copies are hashed here). A 64-bit
// collision between two different contents of one channel within the window would
// drop one event; at the rates a channel carries that is below 1 in 10^12 per year.
uint64_t content_key(std::string_view event, std::string_view payload) {
  uint64_t h = std::hash<std::string_view>{}(event);
  return h ^ (std::hash<std::string_view>{}(payload) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}
}  // namespace

uint64_t& EventDeduplicator::sent(Seen& seen, int source) {
  for (auto& [who, count] : seen.sent_by) {
    if (who == source) return count;
  }
  return seen.sent_by.emplace_back(source, 0).second;
}

bool EventDeduplicator::admit(int source, const std::string& channel, std::string_view event,
                              std::string_view payload, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (now - last_sweep_ >= window_) {
    forget_older_than(now - window_);
    last_sweep_ = now;
  }
  Seen& seen = channels_[channel][content_key(event, payload)];
  seen.last_seen = now;
  uint64_t& count = sent(seen, source);
  ++count;
  if (count <= seen.delivered) return false;
  seen.delivered = count;
  return true;
}

void EventDeduplicator::align(int source, const std::string& channel) {
  std::lock_guard lock(mutex_);
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  for (auto& [key, seen] : it->second) sent(seen, source) = seen.delivered;
}

void EventDeduplicator::align_all(int source) {
  std::lock_guard lock(mutex_);
  for (auto& [channel, contents] : channels_) {
    for (auto& [key, seen] : contents) sent(seen, source) = seen.delivered;
  }
}

size_t EventDeduplicator::remembered() const {
  std::lock_guard lock(mutex_);
  size_t total = 0;
  for (const auto& [channel, contents] : channels_) total += contents.size();
  return total;
}

void EventDeduplicator::forget_older_than(Clock::time_point cutoff) {
  for (auto channel = channels_.begin(); channel != channels_.end();) {
    std::erase_if(channel->second, [&](const auto& entry) { return entry.second.last_seen < cutoff; });
    channel = channel->second.empty() ? channels_.erase(channel) : std::next(channel);
  }
}

}  // namespace sluice
