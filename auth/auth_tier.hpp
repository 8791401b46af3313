#pragma once
// The auth tier as a component: the PostgreSQL pool, the queries, the caches (one set
// per tenant when a tenants file names several instances, docs/hosting.md#tenants), the
// worker threads and the gRPC service, plus a readiness probe. It owns no grpc::Server:
// sluice-auth registers service() on its own server and the all-in-one binary on its
// in-process one.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "auth/auth_service.hpp"
#include "auth/auth_tenants.hpp"
#include "auth/connection_budget.hpp"
#include "auth/pg_config.hpp"
#include "auth/worker_pool.hpp"
#include "common/env.hpp"
#include "common/tenants.hpp"

namespace sluice {

struct AuthConfig {
  PgConfig pg;                                 // docs/protocol.md#postgresql-configuration
  AuthCacheSettings cache;                     // SLUICE_*_TTL_MS, SLUICE_AUTH_CACHE_MAX_ENTRIES
  std::string listen = "127.0.0.1:50052";      // SLUICE_AUTH_LISTEN
  std::string admin_listen = "127.0.0.1:9092"; // SLUICE_AUTH_ADMIN_LISTEN; empty disables
  std::string internal_token;                  // SLUICE_INTERNAL_TOKEN
  // How often readiness asks PostgreSQL `SELECT 1`.
  std::chrono::milliseconds readiness_interval{2000};
  // The longest a query waits for a pool connection (the reference's 15 s).
  std::chrono::milliseconds checkout_timeout{15000};
  // With a tenants file (docs/hosting.md#databases): the PostgreSQL connections of all
  // tenants together, and how long one stays open unused (node-postgres's 10 s).
  int db_connections_max = 50;                          // SLUICE_AUTH_DB_CONNECTIONS_MAX
  std::chrono::milliseconds db_idle_timeout{10000};     // SLUICE_AUTH_DB_IDLE_TIMEOUT_MS

  // Throws ConfigError naming the variable.
  static AuthConfig from_env(const Env& env);
};

class AuthTier {
 public:
  // Starts the worker threads and the readiness probe; connects to nothing before the
  // first query or probe (pool connections are opened lazily, docs/protocol.md#postgresql-configuration).
  // With `tenants`, serves those instances (config.pg and config.cache then come from
  // each tenant's variables) and throws ConfigError when one's are wrong.
  explicit AuthTier(AuthConfig config, std::shared_ptr<const Tenants> tenants = nullptr);
  ~AuthTier();
  AuthTier(const AuthTier&) = delete;
  AuthTier& operator=(const AuthTier&) = delete;

  grpc::Service* service() { return &service_; }
  // See AuthService::set_system_events_live.
  void set_system_events_live(AuthService::SystemEventsLive live) { service_.set_system_events_live(std::move(live)); }
  AuthTenants& tenants() { return tenants_; }
  // The one instance's caches (no tenants file).
  AuthCache& cache() { return tenants_.find_built("")->cache(); }
  const AuthConfig& config() const { return config_; }
  // A reloaded tenants file (docs/hosting.md#tenants).
  void update_tenants(std::shared_ptr<const Tenants> tenants) { tenants_.update(*tenants); }

  // One instance: true while PostgreSQL answers the probe. Several: true once started,
  // for one instance's database being down must not take the others' lookups out of
  // rotation; that instance's lookups answer UNAVAILABLE.
  bool ready() const;
  // Called at once with the current state, then on every change, from the probe thread.
  // It must not call set_readiness_callback itself.
  void set_readiness_callback(std::function<void(bool)> callback);

  // Fails new and queued database work at once, finishes the calls in progress and
  // stops the threads. Call it before the grpc::Server serving service() is destroyed.
  // Idempotent.
  void stop();

 private:
  void probe_loop();
  // `why`: what the probe met when not ready.
  void report(bool ready, const std::string& why = "");

  const AuthConfig config_;
  const std::unique_ptr<ConnectionBudget> budget_;  // with tenants only
  WorkerPool workers_;
  AuthTenants tenants_;
  AuthService service_;

  mutable std::mutex callback_mutex_;  // guards ready_ and callback_, orders reports
  bool ready_ = false;
  std::string not_ready_because_;  // what the probe last met
  std::function<void(bool)> callback_;

  std::mutex stop_mutex_;
  std::condition_variable stop_wake_;
  bool stopping_ = false;
  std::mutex join_mutex_;  // stop() may be called from two threads
  std::thread probe_;
};

}  // namespace sluice
