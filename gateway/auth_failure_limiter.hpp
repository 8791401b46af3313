#pragma once
// Failed token lookups per client address (docs/protocol.md#auth-overload): an
// address that presented more invalid tokens than its budget is refused (429) before
// its next lookup reaches the auth tier, so random tokens cost PostgreSQL nothing
// once the budget is spent. Every lookup reserves a unit of the budget when it is
// sent, and gets it back unless the token was invalid: lookups in flight at once
// cannot overdraw it, and valid tokens never spend it. Shared by the gateway's workers.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "gateway/clock.hpp"
#include "gateway/token_bucket.hpp"

namespace sluice::gateway {

class AuthFailureLimiter {
 public:
  // `per_second` failures on average, bursts of as many; 0 turns the limit off.
  // At most `max_addresses` are remembered: beyond, addresses whose budget is whole
  // again are forgotten, and if that is not enough, all are.
  AuthFailureLimiter(uint32_t per_second, size_t max_addresses = 65536);

  // Reserves one failure for a lookup from `address`; false (nothing reserved) when
  // its budget is spent at `now`.
  bool reserve(const std::string& address, SteadyClock::time_point now);
  // The lookup did not fail on an invalid token: its reservation comes back.
  void refund(const std::string& address);
  size_t remembered() const;

 private:
  const uint32_t per_second_;
  const size_t max_addresses_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, TokenBucket> budgets_;
};

}  // namespace sluice::gateway
