#pragma once
// A token bucket (docs/protocol.md#admission-limits): `rate` events per second on
// average, bursts of up to `rate`. The caller passes the time, so tests move it by
// hand. Small enough to live in every WebSocket session.
#include <algorithm>
#include <chrono>
#include <cstdint>

#include "gateway/clock.hpp"

namespace sluice::gateway {

class TokenBucket {
 public:
  // rate 0: no limit.
  explicit TokenBucket(uint32_t rate) : rate_(rate), tokens_(static_cast<float>(rate)) {}

  // True when one more event may pass at `now`, and takes its token.
  bool take(SteadyClock::time_point now) {
    if (!available(now)) return false;
    tokens_ -= 1.0f;
    return true;
  }
  // True when one more event may pass at `now`, without taking its token.
  bool available(SteadyClock::time_point now) {
    if (rate_ == 0) return true;
    refill(now);
    return tokens_ >= 1.0f;
  }
  // Gives back a token taken for an event that turned out not to count.
  void refund() {
    if (rate_ != 0) tokens_ = std::min(static_cast<float>(rate_), tokens_ + 1.0f);
  }
  // True when the bucket is full again: it remembers nothing a new one would not.
  bool full(SteadyClock::time_point now) {
    refill(now);
    return tokens_ >= static_cast<float>(rate_);
  }

 private:
  void refill(SteadyClock::time_point now) {
    if (refilled_at_ != SteadyClock::time_point{}) {
      float seconds = std::chrono::duration<float>(now - refilled_at_).count();
      if (seconds > 0) tokens_ = std::min(static_cast<float>(rate_), tokens_ + seconds * static_cast<float>(rate_));
    }
    refilled_at_ = now;
  }

  uint32_t rate_;
  float tokens_;
  SteadyClock::time_point refilled_at_{};
};

}  // namespace sluice::gateway
