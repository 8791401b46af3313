#include "auth/connection_budget.hpp"

#include <algorithm>

#include "auth/pg_pool.hpp"

namespace sluice {

ConnectionBudget::ConnectionBudget(int max_connections) : max_(std::max(1, max_connections)) {}

bool ConnectionBudget::try_take() {
  int taken = taken_.load();
  while (taken < max_) {
    if (taken_.compare_exchange_weak(taken, taken + 1)) return true;
  }
  return false;
}

void ConnectionBudget::release() { taken_.fetch_sub(1); }

int ConnectionBudget::fair_share() const { return std::max(1, max_ / std::max(1, active_pools_.load())); }

bool ConnectionBudget::others_waiting(bool self_waiting) const {
  return waiting_pools_.load() - (self_waiting ? 1 : 0) > 0;
}

void ConnectionBudget::add(PgPool* pool) {
  std::lock_guard lock(registry_mutex_);
  pools_.push_back(pool);
}

void ConnectionBudget::remove(PgPool* pool) {
  std::lock_guard lock(registry_mutex_);
  pools_.erase(std::remove(pools_.begin(), pools_.end(), pool), pools_.end());
}

bool ConnectionBudget::reclaim_for(const PgPool* requester, int requester_total) {
  std::lock_guard lock(registry_mutex_);
  PgPool* victim = nullptr;
  int most = requester_total;
  for (PgPool* pool : pools_) {
    if (pool == requester) continue;
    auto [total, idle] = pool->total_and_idle();
    if (idle > 0 && total > most) {
      victim = pool;
      most = total;
    }
  }
  return victim && victim->shed_idle_connection();
}

void ConnectionBudget::wake_waiters() {
  wakes_.fetch_add(1);
  if (waiting_pools_.load() == 0) return;
  std::lock_guard lock(registry_mutex_);
  for (PgPool* pool : pools_) pool->wake_slot_waiters();
}

}  // namespace sluice
