#include "auth/pg_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "auth/worker_pool.hpp"
#include "common/log.hpp"

namespace sluice {
namespace {

// An idle connection has nothing to read unless the server closed it (EOF), said why
// (ErrorResponse 'E', e.g. 57P01 on shutdown), or sent an asynchronous ParameterStatus,
// notice or notification. Peeking at the socket tells these apart without sending a
// query down a dead connection (libpqxx 6 would then reconnect behind our back and
// leak the failed result). TLS records cannot be read this way: any pending bytes
// there count as dead, which costs at most one reconnect.
bool idle_connection_alive(pqxx::connection& connection) {
  int fd = connection.sock();
  if (fd < 0) return false;
  char first = 0;
  ssize_t n = ::recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) return false;
  return first == 'S' || first == 'N' || first == 'A';
}

}  // namespace

PgPool::PgPool(PgConfig config, Prepare prepare, std::chrono::milliseconds checkout_timeout,
               ConnectionBudget* budget)
    : config_(std::move(config)),
      conninfo_(config_.conninfo()),
      prepare_(std::move(prepare)),
      checkout_timeout_(checkout_timeout),
      budget_(budget),
      // Help strings as the reference's metrics.js writes them (docs/protocol.md#metrics).
      total_gauge_(metrics::Registry::global().gauge(
          "pg_pool_total_connections", "The total number of clients existing within the pool")),
      idle_gauge_(metrics::Registry::global().gauge(
          "pg_pool_idle_connections", "The number of clients which are not checked out but are currently idle in the pool")),
      waiting_gauge_(metrics::Registry::global().gauge(
          "pg_pool_waiting_queries",
          "The number of queued requests waiting on a client when all clients are checked out")) {
  if (budget_) budget_->add(this);
}

PgPool::~PgPool() {
  // First out of the budget's registry: from here on it calls nothing of this pool.
  if (budget_) budget_->remove(this);
  close();
  {
    std::lock_guard lock(mutex_);
    while (!idle_.empty()) {
      idle_.pop_back();
      idle_gauge_.dec();
      count_out_locked();
    }
    report_activity_locked();
  }
  if (budget_) budget_->wake_waiters();
}

void PgPool::count_out_locked() {
  --total_;
  total_gauge_.dec();
  if (budget_) budget_->release();
}

void PgPool::report_activity_locked() {
  if (!budget_) return;
  bool active = total_ > 0 || waiting_ > 0;
  if (active != active_) budget_->pool_active(active);
  active_ = active;
}

void PgPool::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    available_.notify_all();
  }
  cancel_running();
}

void PgPool::cancel_running() {
  std::lock_guard lock(mutex_);
  // Under the lock: a connection leaves in_use_ (and may be destroyed) only under it.
  for (auto* connection : in_use_) {
    try {
      connection->cancel_query();
    } catch (const std::exception& e) {
      log::warn("cancelling a running statement failed", {{"database", config_.describe()}, {"error", e.what()}});
    }
  }
}

bool PgPool::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

int PgPool::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

int PgPool::idle() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(idle_.size());
}

int PgPool::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

PgPool::Lease PgPool::checkout() {
  std::unique_lock lock(mutex_);
  const auto deadline = Clock::now() + checkout_timeout_;
  for (;;) {
    if (closed_) throw service_stopping();
    if (!idle_.empty()) {
      Lease lease{std::move(idle_.back().connection), true};
      idle_.pop_back();
      idle_gauge_.dec();
      if (lease.connection->is_open() && idle_connection_alive(*lease.connection)) {
        in_use_.insert(lease.connection.get());
        return lease;
      }
      // Closed under us (e.g. PostgreSQL restarted): count it out and look again.
      count_out_locked();
      if (budget_) {
        lock.unlock();
        budget_->wake_waiters();
        lock.lock();
      }
      continue;
    }
    bool for_slot = false;
    // While another pool waits for a slot, one at or above its fair share waits for
    // its own connections instead of taking more.
    const bool yield_slots = budget_ && total_ > 0 && total_ >= budget_->fair_share() &&
                             budget_->others_waiting(slot_waiters_ > 0);
    if (total_ < config_.pool_size && !yield_slots) {
      if (!budget_ || budget_->try_take()) break;
      // Every slot of the budget is taken: ask for one, then wait to be told one is free.
      for_slot = true;
      ++waiting_;
      if (++slot_waiters_ == 1) budget_->pool_waiting(true);
      report_activity_locked();
      const int holding = total_;
      const uint64_t wakes = budget_->wakes();
      lock.unlock();
      const bool freed = budget_->reclaim_for(this, holding);
      lock.lock();
      // A slot released (or a connection left idle) while this lock was not held woke
      // nobody here: look again rather than wait (a wake after this look needs the lock,
      // so it reaches the wait).
      const bool got_slot = !freed && budget_->try_take();
      const bool look_again = freed || (!got_slot && budget_->wakes() != wakes);
      if (look_again || got_slot) {
        --waiting_;
        if (--slot_waiters_ == 0) budget_->pool_waiting(false);
        report_activity_locked();
        if (!got_slot) continue;
        if (!closed_ && total_ < config_.pool_size) break;
        // Not needed any more (closed, or the pool filled up meanwhile): give it on.
        budget_->release();
        lock.unlock();
        budget_->wake_waiters();
        lock.lock();
        continue;
      }
    } else {
      ++waiting_;
    }
    waiting_gauge_.inc();
    bool timed_out = available_.wait_until(lock, deadline) == std::cv_status::timeout;
    --waiting_;
    waiting_gauge_.dec();
    if (for_slot && --slot_waiters_ == 0) budget_->pool_waiting(false);
    report_activity_locked();
    const bool no_slot = for_slot && budget_->taken() >= budget_->max();
    if (timed_out && idle_.empty() && (total_ >= config_.pool_size || closed_ || no_slot || yield_slots)) {
      throw DatabaseError("timeout exceeded when trying to connect");
    }
  }

  // Open a new connection outside the lock: connecting can take up to connect_timeout.
  // Its budget slot is already taken.
  ++total_;
  total_gauge_.inc();
  report_activity_locked();
  lock.unlock();
  std::unique_ptr<pqxx::connection> connection;
  try {
    connection = std::make_unique<pqxx::connection>(conninfo_);
    {
      // In use from here on, so that close() can cancel the queries `prepare_` sends
      // (the auth tier's reads the catalogue): they can wait on locks like any query.
      std::lock_guard relock(mutex_);
      if (closed_) throw service_stopping();
      in_use_.insert(connection.get());
    }
    if (prepare_) prepare_(*connection);
    return Lease{std::move(connection), false};
  } catch (const ServiceStopping&) {
    discard(std::move(connection));
    throw;
  } catch (const std::exception& e) {
    discard(std::move(connection));
    // prepare_'s queries cancelled by close(): the stop, not a database failure.
    if (closed()) throw service_stopping();
    log::warn("postgresql connection failed", {{"database", config_.describe()}, {"error", e.what()}});
    throw DatabaseError(e.what());
  }
}

bool PgPool::is_broken(const pqxx::failure& error, pqxx::connection& connection) {
  if (dynamic_cast<const pqxx::broken_connection*>(&error)) return true;
  if (!connection.is_open()) return true;
  if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    const std::string& state = sql->sqlstate();
    return state.rfind("57P", 0) == 0 || state.rfind("08", 0) == 0;
  }
  return false;
}

void PgPool::give_back(std::unique_ptr<pqxx::connection> connection) {
  bool wake_budget = false;
  {
    std::lock_guard lock(mutex_);
    in_use_.erase(connection.get());
    // Another pool waits for a slot: what this one holds above its fair share goes
    // back to the budget, and whatever it keeps idle may be claimed.
    const bool others_wait = budget_ && budget_->others_waiting(slot_waiters_ > 0);
    if (!connection || !connection->is_open() || closed_ || (others_wait && total_ > budget_->fair_share())) {
      connection.reset();
      count_out_locked();
    } else {
      idle_.push_back(Idle{std::move(connection), Clock::now()});
      idle_gauge_.inc();
    }
    report_activity_locked();
    available_.notify_one();
    wake_budget = others_wait;
  }
  if (wake_budget) budget_->wake_waiters();
}

void PgPool::discard(std::unique_ptr<pqxx::connection> connection) {
  {
    std::lock_guard lock(mutex_);
    in_use_.erase(connection.get());
    connection.reset();
    count_out_locked();
    report_activity_locked();
    available_.notify_one();
  }
  if (budget_) budget_->wake_waiters();
}

int PgPool::close_idle(std::chrono::milliseconds idle_for) {
  std::vector<std::unique_ptr<pqxx::connection>> closing;
  {
    std::lock_guard lock(mutex_);
    const auto cutoff = Clock::now() - idle_for;
    // idle_ is in the order connections came back, so the oldest lead.
    auto end = idle_.begin();
    while (end != idle_.end() && end->since <= cutoff) ++end;
    for (auto it = idle_.begin(); it != end; ++it) {
      closing.push_back(std::move(it->connection));
      idle_gauge_.dec();
      count_out_locked();
    }
    idle_.erase(idle_.begin(), end);
    report_activity_locked();
  }
  // Closed outside the lock: a goodbye to each server.
  int closed = static_cast<int>(closing.size());
  closing.clear();
  if (closed > 0 && budget_) budget_->wake_waiters();
  return closed;
}

std::pair<int, int> PgPool::total_and_idle() const {
  std::lock_guard lock(mutex_);
  return {total_, static_cast<int>(idle_.size())};
}

bool PgPool::shed_idle_connection() {
  std::unique_ptr<pqxx::connection> closing;
  {
    std::lock_guard lock(mutex_);
    if (idle_.empty()) return false;
    // The one idle longest.
    closing = std::move(idle_.front().connection);
    idle_.erase(idle_.begin());
    idle_gauge_.dec();
    count_out_locked();
    report_activity_locked();
  }
  return true;
}

void PgPool::wake_slot_waiters() {
  std::lock_guard lock(mutex_);
  if (slot_waiters_ > 0) available_.notify_all();
}

}  // namespace sluice
