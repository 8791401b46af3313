#pragma once
// One cap on PostgreSQL connections across every tenant's pool
// (SLUICE_AUTH_DB_CONNECTIONS_MAX, docs/hosting.md#databases). A pool opens a
// connection only with a slot from here. When every slot is taken and a pool needs
// one, an idle connection of a pool holding more than the asking one is closed for
// it, and a pool above its fair share (the cap divided among the pools that hold or
// want connections) closes a busy one when it is returned. A single-instance
// deployment has no budget: its pool is DB_POOL.
//
// Locking: pools call try_take / release / fair_share / others_waiting under their
// own mutex, so those touch only atomics. reclaim_for and wake_waiters take the
// registry mutex and then a pool's mutex; pools call them holding no lock of theirs.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace sluice {

class PgPool;

class ConnectionBudget {
 public:
  explicit ConnectionBudget(int max_connections);
  ConnectionBudget(const ConnectionBudget&) = delete;
  ConnectionBudget& operator=(const ConnectionBudget&) = delete;

  int max() const { return max_; }
  int taken() const { return taken_.load(); }

  // A slot for one new connection; false when all are taken.
  bool try_take();
  // A connection closed: its slot is free. Call wake_waiters() once unlocked.
  void release();

  // What a pool may keep while another pool waits for a slot: the cap divided among
  // the active pools (those holding or waiting for connections), at least 1.
  int fair_share() const;
  // True when a pool other than the caller (whose own waiting counts as `self_waiting`)
  // waits for a slot.
  bool others_waiting(bool self_waiting) const;
  // Pools report their transitions: active (holds or wants a connection) and waiting
  // for a slot.
  void pool_active(bool now_active) { active_pools_ += now_active ? 1 : -1; }
  void pool_waiting(bool now_waiting) { waiting_pools_ += now_waiting ? 1 : -1; }

  void add(PgPool* pool);
  void remove(PgPool* pool);
  // For a pool holding `requester_total` connections that found no free slot: closes
  // one idle connection of the pool holding the most, if that is more than the
  // requester holds (so a move never makes the split less even). True when that
  // freed a slot.
  bool reclaim_for(const PgPool* requester, int requester_total);
  // Tells the pools waiting for a slot that one may be free.
  void wake_waiters();
  // How many times wake_waiters was called: a pool that saw it change while it held no
  // lock looks again instead of waiting for a wake-up that already came.
  uint64_t wakes() const { return wakes_.load(); }

 private:
  const int max_;
  std::atomic<int> taken_{0};
  std::atomic<int> active_pools_{0};
  std::atomic<int> waiting_pools_{0};
  std::atomic<uint64_t> wakes_{0};
  std::mutex registry_mutex_;
  std::vector<PgPool*> pools_;
};

}  // namespace sluice
