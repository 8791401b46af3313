#include "gateway/auth_failure_limiter.hpp"

namespace sluice::gateway {

AuthFailureLimiter::AuthFailureLimiter(uint32_t per_second, size_t max_addresses)
    : per_second_(per_second), max_addresses_(max_addresses) {}

bool AuthFailureLimiter::reserve(const std::string& address, SteadyClock::time_point now) {
  if (per_second_ == 0 || address.empty()) return true;
  std::lock_guard lock(mutex_);
  auto it = budgets_.find(address);
  if (it == budgets_.end()) {
    if (budgets_.size() >= max_addresses_) {
      for (auto sweep = budgets_.begin(); sweep != budgets_.end();) {
        sweep = sweep->second.full(now) ? budgets_.erase(sweep) : std::next(sweep);
      }
      if (budgets_.size() >= max_addresses_) budgets_.clear();
    }
    it = budgets_.emplace(address, TokenBucket(per_second_)).first;
  }
  return it->second.take(now);
}

void AuthFailureLimiter::refund(const std::string& address) {
  if (per_second_ == 0 || address.empty()) return;
  std::lock_guard lock(mutex_);
  auto it = budgets_.find(address);
  if (it != budgets_.end()) it->second.refund();
}

size_t AuthFailureLimiter::remembered() const {
  std::lock_guard lock(mutex_);
  return budgets_.size();
}

}  // namespace sluice::gateway
