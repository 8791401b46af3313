#pragma once
// At most DB_POOL libpqxx connections (docs/protocol.md#postgresql-configuration): opened lazily on first need,
// handed out one caller at a time, checkout bounded by the same 15 s the reference
// allows for connecting, and broken connections dropped and replaced. With several
// tenants, every pool also draws its connections from one ConnectionBudget and closes
// those idle for long (docs/hosting.md#databases).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "auth/connection_budget.hpp"
#include "auth/pg_config.hpp"
#include "common/metrics.hpp"

namespace sluice {

// PostgreSQL could not answer: no connection within the wait, connection refused,
// connection lost, or the statement failed. Reported to the gateway as UNAVAILABLE.
struct DatabaseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class PgPool {
 public:
  using Prepare = std::function<void(pqxx::connection&)>;

  // `prepare` runs once on every new connection, before its first use.
  // With a `budget`, every connection also takes one of its slots; the budget must
  // outlive the pool.
  PgPool(PgConfig config, Prepare prepare,
         std::chrono::milliseconds checkout_timeout = std::chrono::milliseconds(15000),
         ConnectionBudget* budget = nullptr);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Runs `work` on one checked-out connection. A connection found broken while in use is
  // dropped; when it was an idle one (e.g. PostgreSQL restarted meanwhile), `work` is
  // tried once more on a fresh connection. Every failure surfaces as DatabaseError.
  template <class Work>
  auto run(Work&& work) -> decltype(work(std::declval<pqxx::connection&>()));

  // Makes every waiting and later checkout fail at once, and cancels the statements
  // running on checked-out connections, so that shutdown never waits on a query that
  // PostgreSQL holds (a lock, a slow plan).
  void close();
  // Cancels whatever runs on checked-out connections now. A cancel that lands between
  // two statements of a lookup cancels nothing, so shutdown repeats it until the
  // workers have finished (AuthTier::stop).
  void cancel_running();
  // close() has begun: the tier is stopping.
  bool closed() const;

  int total() const;
  int idle() const;
  int waiting() const;
  int max_size() const { return config_.pool_size; }

  // Closes the connections idle for longer than `idle_for` (node-postgres closes
  // them after 10 s). Returns how many it closed.
  int close_idle(std::chrono::milliseconds idle_for);

  // For ConnectionBudget (which calls these holding its registry lock only).
  std::pair<int, int> total_and_idle() const;
  // Closes one idle connection, freeing its budget slot; false when none is idle.
  bool shed_idle_connection();
  // Callers waiting for a budget slot look again.
  void wake_slot_waiters();

 private:
  using Clock = std::chrono::steady_clock;
  struct Idle {
    std::unique_ptr<pqxx::connection> connection;
    Clock::time_point since;
  };
  struct Lease {
    std::unique_ptr<pqxx::connection> connection;
    bool reused = false;
  };
  Lease checkout();
  // Lost connection, server shutdown (57P*) or connection failure (08*): the connection
  // cannot be used again.
  static bool is_broken(const pqxx::failure& error, pqxx::connection& connection);
  void give_back(std::unique_ptr<pqxx::connection> connection);
  // A connection that broke in use (or, with nullptr, one that failed to open).
  void discard(std::unique_ptr<pqxx::connection> connection = nullptr);
  // One connection fewer (closed, lost or never opened): counters, gauge, budget slot.
  // Under mutex_; the caller calls budget_->wake_waiters() once unlocked.
  void count_out_locked();
  // Tells the budget when this pool starts or stops holding or wanting connections.
  // Under mutex_, after any change to total_, waiting_ or slot_waiters_.
  void report_activity_locked();

  const PgConfig config_;
  const std::string conninfo_;
  const Prepare prepare_;
  const std::chrono::milliseconds checkout_timeout_;

  mutable std::mutex mutex_;
  std::condition_variable available_;
  ConnectionBudget* const budget_;
  std::vector<Idle> idle_;  // most recently returned last
  int total_ = 0;    // open connections plus connections being opened
  int waiting_ = 0;  // callers blocked in checkout
  int slot_waiters_ = 0;  // of which waiting for a budget slot
  bool active_ = false;   // as last reported to the budget
  std::unordered_set<pqxx::connection*> in_use_;  // checked out: what close() cancels
  bool closed_ = false;

  // The reference's pool gauges; several pools in one process add up.
  metrics::Gauge& total_gauge_;
  metrics::Gauge& idle_gauge_;
  metrics::Gauge& waiting_gauge_;
};

template <class Work>
auto PgPool::run(Work&& work) -> decltype(work(std::declval<pqxx::connection&>())) {
  for (int attempt = 0;; ++attempt) {
    Lease lease = checkout();
    try {
      if constexpr (std::is_void_v<decltype(work(*lease.connection))>) {
        work(*lease.connection);
        give_back(std::move(lease.connection));
        return;
      } else {
        auto result = work(*lease.connection);
        give_back(std::move(lease.connection));
        return result;
      }
    } catch (const pqxx::failure& e) {
      if (!is_broken(e, *lease.connection)) {
        // A statement error on a healthy connection: the caller decides what it means.
        give_back(std::move(lease.connection));
        throw;
      }
      discard(std::move(lease.connection));
      if (lease.reused && attempt == 0) continue;
      throw DatabaseError(e.what());
    } catch (...) {
      give_back(std::move(lease.connection));
      throw;
    }
  }
}

}  // namespace sluice
