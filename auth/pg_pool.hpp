#pragma once
// At most DB_POOL libpqxx connections (docs/protocol.md#postgresql-configuration): opened lazily on first need,
// handed out one caller at a time, checkout bounded by the same 15 s the reference
// allows for connecting, and broken connections dropped and replaced.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "common/metrics.hpp"
#include "auth/pg_config.hpp"

namespace sluice {

// PostgreSQL could not answer: no connection within the wait, connection refused,
// connection lost, or the statement failed. Reported to the gateway as UNAVAILABLE.
struct DatabaseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class PgPool {
 public:
  using Prepare = std::function<void(pqxx::connection&)>;

  // `prepare` runs once on every new connection (to declare prepared statements).
  PgPool(PgConfig config, Prepare prepare,
         std::chrono::milliseconds checkout_timeout = std::chrono::milliseconds(15000));
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

  int total() const;
  int idle() const;
  int waiting() const;
  int max_size() const { return config_.pool_size; }

 private:
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

  const PgConfig config_;
  const std::string conninfo_;
  const Prepare prepare_;
  const std::chrono::milliseconds checkout_timeout_;

  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int total_ = 0;    // open connections plus connections being opened
  int waiting_ = 0;  // callers blocked in checkout
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
