#pragma once
// A worker's keep-alive schedule, without sockets or timers: SSE clients sit in one
// bucket per second of the heartbeat period, so each hears `:thump` about every period
// after it opened (docs/protocol.md#sse-heartbeat); WebSocket clients are all pinged
// every ping period (docs/protocol.md#keep-alive-and-close). The worker's one-second
// timer only asks advance() what is due at the time of the gateway's clock
// (gateway/clock.hpp), so tests move that clock on instead of sleeping.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace sluice::gateway {

// Where an item sits in the wheel; only the wheel writes it.
struct WheelPlace {
  uint32_t bucket = 0;
  uint32_t slot = 0;
};

// T: any type with a public `WheelPlace wheel_place`. The wheel holds pointers, not
// ownership: an item is removed before it goes.
template <typename T>
class HeartbeatWheel {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::seconds kTick{1};

  HeartbeatWheel(unsigned heartbeat_seconds, unsigned ping_seconds, TimePoint start)
      : buckets_(std::max(1u, heartbeat_seconds)), ping_every_(std::max(1u, ping_seconds)), next_tick_(start + kTick) {}

  // A beat of its own once per heartbeat period, the first a whole period from now.
  void add_beating(T& item) { place(buckets_[tick_ % buckets_.size()], item, static_cast<uint32_t>(tick_ % buckets_.size())); }
  // Beats with every other pinged item, every ping period.
  void add_pinged(T& item) { place(pinged_, item, 0); }
  void remove_beating(T& item) { take(buckets_[item.wheel_place.bucket], item); }
  void remove_pinged(T& item) { take(pinged_, item); }

  // Runs every tick due by `now`: the bucket of that second, and every pinged item on
  // each ping_seconds-th tick. `beat` may remove items (it works on copies). After a
  // stall, at most one revolution is caught up, so nobody is beaten twice in a row.
  template <typename Beat>
  void advance(TimePoint now, Beat&& beat) {
    const uint64_t catch_up = std::max<uint64_t>(buckets_.size(), ping_every_);
    for (uint64_t ran = 0; next_tick_ <= now; ++ran) {
      if (ran == catch_up) {
        next_tick_ = now + kTick;
        break;
      }
      ++tick_;
      next_tick_ += kTick;
      const auto due = buckets_[tick_ % buckets_.size()];
      for (T* item : due) beat(*item);
      if (tick_ % ping_every_ == 0) {
        const auto pinged = pinged_;
        for (T* item : pinged) beat(*item);
      }
    }
  }

  TimePoint next_tick() const { return next_tick_; }

 private:
  static void place(std::vector<T*>& list, T& item, uint32_t bucket) {
    item.wheel_place = WheelPlace{bucket, static_cast<uint32_t>(list.size())};
    list.push_back(&item);
  }
  static void take(std::vector<T*>& list, T& item) {
    const uint32_t slot = item.wheel_place.slot;
    if (slot >= list.size() || list[slot] != &item) return;
    list[slot] = list.back();
    list[slot]->wheel_place.slot = slot;
    list.pop_back();
  }

  std::vector<std::vector<T*>> buckets_;
  std::vector<T*> pinged_;
  unsigned ping_every_;
  uint64_t tick_ = 0;
  TimePoint next_tick_;
};

}  // namespace sluice::gateway
