#include "auth/pg_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

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

PgPool::PgPool(PgConfig config, Prepare prepare, std::chrono::milliseconds checkout_timeout)
    : config_(std::move(config)),
      conninfo_(config_.conninfo()),
      prepare_(std::move(prepare)),
      checkout_timeout_(checkout_timeout),
      // Help strings as the reference's metrics.js writes them (docs/protocol.md#metrics).
      total_gauge_(metrics::Registry::global().gauge(
          "pg_pool_total_connections", "The total number of clients existing within the pool")),
      idle_gauge_(metrics::Registry::global().gauge(
          "pg_pool_idle_connections", "The number of clients which are not checked out but are currently idle in the pool")),
      waiting_gauge_(metrics::Registry::global().gauge(
          "pg_pool_waiting_queries",
          "The number of queued requests waiting on a client when all clients are checked out")) {}

PgPool::~PgPool() {
  close();
  std::lock_guard lock(mutex_);
  total_gauge_.add(-static_cast<int64_t>(idle_.size()));
  idle_gauge_.add(-static_cast<int64_t>(idle_.size()));
  total_ -= static_cast<int>(idle_.size());
  idle_.clear();
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
      log::warn("cancelling a running statement failed", {{"error", e.what()}});
    }
  }
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
  const auto deadline = std::chrono::steady_clock::now() + checkout_timeout_;
  for (;;) {
    if (closed_) throw DatabaseError("the connection pool is shut down");
    if (!idle_.empty()) {
      Lease lease{std::move(idle_.back()), true};
      idle_.pop_back();
      idle_gauge_.dec();
      if (lease.connection->is_open() && idle_connection_alive(*lease.connection)) {
        in_use_.insert(lease.connection.get());
        return lease;
      }
      // Closed under us (e.g. PostgreSQL restarted): count it out and look again.
      --total_;
      total_gauge_.dec();
      continue;
    }
    if (total_ < config_.pool_size) break;
    ++waiting_;
    waiting_gauge_.inc();
    bool timed_out = available_.wait_until(lock, deadline) == std::cv_status::timeout;
    --waiting_;
    waiting_gauge_.dec();
    if (timed_out && idle_.empty() && (total_ >= config_.pool_size || closed_)) {
      throw DatabaseError("timeout exceeded when trying to connect");
    }
  }

  // Open a new connection outside the lock: connecting can take up to connect_timeout.
  ++total_;
  total_gauge_.inc();
  lock.unlock();
  std::unique_ptr<pqxx::connection> connection;
  try {
    connection = std::make_unique<pqxx::connection>(conninfo_);
    {
      // In use from here on, so that close() can cancel the statements `prepare_`
      // sends: preparing takes table locks and can wait on them like any query.
      std::lock_guard relock(mutex_);
      if (closed_) throw DatabaseError("the connection pool is shut down");
      in_use_.insert(connection.get());
    }
    if (prepare_) prepare_(*connection);
    return Lease{std::move(connection), false};
  } catch (const std::exception& e) {
    discard(std::move(connection));
    log::warn("postgresql connection failed", {{"error", e.what()}});
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
  std::lock_guard lock(mutex_);
  in_use_.erase(connection.get());
  if (!connection || !connection->is_open() || closed_) {
    connection.reset();
    --total_;
    total_gauge_.dec();
  } else {
    idle_.push_back(std::move(connection));
    idle_gauge_.inc();
  }
  available_.notify_one();
}

void PgPool::discard(std::unique_ptr<pqxx::connection> connection) {
  std::lock_guard lock(mutex_);
  in_use_.erase(connection.get());
  connection.reset();
  --total_;
  total_gauge_.dec();
  available_.notify_one();
}

}  // namespace sluice
