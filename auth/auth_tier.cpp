#include "auth/auth_tier.hpp"

#include <atomic>
#include <thread>

#include "common/config_error.hpp"
#include "common/log.hpp"
#include "common/thread_name.hpp"

namespace sluice {

AuthConfig AuthConfig::from_env(const Env& env) {
  AuthConfig config;
  config.pg = pg_config_from_env(env);
  config.cache = AuthCacheSettings::from_env(env);
  config.listen = env.non_empty("SLUICE_AUTH_LISTEN").value_or("127.0.0.1:50052");
  config.admin_listen = env.get_or("SLUICE_AUTH_ADMIN_LISTEN", "127.0.0.1:9092");
  config.internal_token = env.get_or("SLUICE_INTERNAL_TOKEN", "");
  // One auth worker thread per connection, as DB_POOL: a number no host could run stops
  // here (checked before it is narrowed to an int).
  const int64_t connections_max = env.non_negative("SLUICE_AUTH_DB_CONNECTIONS_MAX", 50);
  if (connections_max < 1 || connections_max > 10000) {
    throw ConfigError("Invalid SLUICE_AUTH_DB_CONNECTIONS_MAX environment variable: must be 1 to 10000");
  }
  config.db_connections_max = static_cast<int>(connections_max);
  config.db_idle_timeout = std::chrono::milliseconds(env.non_negative("SLUICE_AUTH_DB_IDLE_TIMEOUT_MS", 10000));
  return config;
}

namespace {
// With a tenants file, the tier queues at most this many instances' SLUICE_AUTH_QUEUE_MAX.
constexpr size_t kQueuedInstancesMax = 4;

AuthTenants make_tenants(const AuthConfig& config, const Tenants* tenants, WorkerPool& workers,
                         ConnectionBudget* budget) {
  if (!tenants) return AuthTenants(TenantAuthSettings{config.pg, config.cache}, config.checkout_timeout, workers);
  return AuthTenants(*tenants, config.checkout_timeout, workers, *budget);
}
}  // namespace

AuthTier::AuthTier(AuthConfig config, std::shared_ptr<const Tenants> tenants)
    : config_(std::move(config)),
      budget_(tenants ? std::make_unique<ConnectionBudget>(config_.db_connections_max) : nullptr),
      // One thread per connection the tier may hold: more would only wait for one. With
      // a tenants file each instance's queue is bounded (its lane, never above the
      // tier's SLUICE_AUTH_QUEUE_MAX), so that one whose database hangs cannot fill the
      // tier's and have every other instance's lookups refused; the tier's bound, a few
      // instances' worth, still caps the memory queued lookups hold when many are
      // flooded at once (docs/hosting.md#databases).
      workers_(tenants ? config_.db_connections_max : config_.pg.pool_size,
               tenants ? kQueuedInstancesMax * config_.cache.queue_max : config_.cache.queue_max,
               tenants ? config_.cache.queue_max : 0),
      tenants_(make_tenants(config_, tenants.get(), workers_, budget_.get())),
      service_(tenants_, config_.internal_token) {
  probe_ = std::thread([this] {
    name_this_thread("auth-probe");
    probe_loop();
  });
}

AuthTier::~AuthTier() { stop(); }

bool AuthTier::ready() const {
  std::lock_guard lock(callback_mutex_);
  return ready_;
}

void AuthTier::set_readiness_callback(std::function<void(bool)> callback) {
  std::lock_guard lock(callback_mutex_);
  callback_ = std::move(callback);
  if (callback_) callback_(ready_);
}

void AuthTier::report(bool ready, const std::string& why) {
  std::lock_guard lock(callback_mutex_);
  // Logged on every change of state or of reason, the first "not ready" too (the state
  // starts so): an operator learns why a replica never became ready.
  if (ready == ready_ && why == not_ready_because_) return;
  const bool changed = ready != ready_;
  ready_ = ready;
  not_ready_because_ = why;
  if (tenants_.multi_tenant()) {
    log::info("serving the instances of the tenants file", {{"db_connections_max", config_.db_connections_max}});
  } else if (ready) {
    log::info("postgresql is reachable", {{"database", config_.pg.describe()}});
  } else {
    log::warn("postgresql cannot serve lookups", {{"database", config_.pg.describe()}, {"error", why}});
  }
  if (changed && callback_) callback_(ready);
}

void AuthTier::probe_loop() {
  for (;;) {
    bool ok = true;
    std::string why;
    if (tenants_.multi_tenant()) {
      // Connections an instance no longer uses go back to the budget.
      tenants_.for_each_built([this](TenantAuth& tenant) { tenant.pool().close_idle(config_.db_idle_timeout); });
    } else {
      try {
        tenants_.find_built("")->queries().ping();
      } catch (const std::exception& e) {
        ok = false;
        why = e.what();
      }
    }
    std::unique_lock lock(stop_mutex_);
    if (stopping_) return;
    lock.unlock();
    report(ok, why);
    lock.lock();
    if (stop_wake_.wait_for(lock, config_.readiness_interval, [this] { return stopping_; })) return;
  }
}

void AuthTier::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_wake_.notify_all();
  tenants_.for_each_built([](TenantAuth& tenant) { tenant.pool().close(); });
  // Until every worker has finished, keep cancelling: a statement that started just
  // after a cancel (the next one of a lookup) would otherwise wait on PostgreSQL for
  // as long as whatever holds it there.
  std::atomic<bool> workers_done{false};
  std::thread canceller([this, &workers_done] {
    name_this_thread("auth-cancel");
    while (!workers_done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!workers_done.load()) tenants_.for_each_built([](TenantAuth& tenant) { tenant.pool().cancel_running(); });
    }
  });
  workers_.stop();
  workers_done = true;
  canceller.join();
  std::lock_guard lock(join_mutex_);
  if (probe_.joinable()) probe_.join();
}

}  // namespace sluice
