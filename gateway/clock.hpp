#pragma once
// Everything timed in the gateway reads the time through one function, so tests
// can hold it still or move it on instead of sleeping.
#include <chrono>
#include <functional>

namespace sluice::gateway {

using SteadyClock = std::chrono::steady_clock;
using NowFunction = std::function<SteadyClock::time_point()>;

inline NowFunction real_clock() {
  return [] { return SteadyClock::now(); };
}

}  // namespace sluice::gateway
