#pragma once
// The Mastodon instances one auth tier serves (docs/hosting.md#tenants), each with its
// own PostgreSQL pool and caches, so that no token, relation or
// filter of one instance is ever answered to another. Without a tenants file there is
// one, named "", built from the process environment at start. With one, a tenant's
// pool and caches are built on its first lookup, from its variables, and its pool
// draws connections from the tier's ConnectionBudget.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "auth/auth_cache.hpp"
#include "auth/auth_queries.hpp"
#include "auth/connection_budget.hpp"
#include "auth/pg_config.hpp"
#include "auth/pg_pool.hpp"
#include "auth/worker_pool.hpp"
#include "common/tenants.hpp"

namespace sluice {

// What one instance's lookups need from its variables.
struct TenantAuthSettings {
  PgConfig pg;              // docs/protocol.md#postgresql-configuration
  AuthCacheSettings cache;  // SLUICE_*_TTL_MS, SLUICE_AUTH_CACHE_MAX_ENTRIES

  // Throws ConfigError naming the variable.
  static TenantAuthSettings from_env(const Env& env);
};

// One instance's pool, queries and caches.
class TenantAuth {
 public:
  TenantAuth(std::string name, const TenantAuthSettings& settings, std::chrono::milliseconds checkout_timeout,
             WorkerPool& workers, ConnectionBudget* budget);
  TenantAuth(const TenantAuth&) = delete;
  TenantAuth& operator=(const TenantAuth&) = delete;

  const std::string& name() const { return name_; }
  const PgConfig& pg() const { return pg_; }
  PgPool& pool() { return pool_; }
  AuthQueries& queries() { return queries_; }
  AuthCache& cache() { return cache_; }

 private:
  const std::string name_;
  const PgConfig pg_;
  PgPool pool_;
  AuthQueries queries_;
  AuthCache cache_;
};

class AuthTenants {
 public:
  // One instance from `settings` (no tenants file).
  AuthTenants(TenantAuthSettings settings, std::chrono::milliseconds checkout_timeout, WorkerPool& workers);
  // The instances of a tenants file; their pools share `budget`. Throws ConfigError,
  // naming the tenant, when one's variables are wrong: a bad file stops the process.
  AuthTenants(const Tenants& tenants, std::chrono::milliseconds checkout_timeout, WorkerPool& workers,
              ConnectionBudget& budget);

  bool multi_tenant() const { return budget_ != nullptr; }

  struct Found {
    std::shared_ptr<TenantAuth> tenant;  // null when `error` says why:
    bool unknown = false;                // a tenant this tier does not serve,
    std::string error;                   // or one whose variables are wrong
  };
  // The instance named `name`, built on first use. A caller keeps the pointer for as
  // long as its lookup runs: a tenant removed by a reload goes away after its last one.
  Found find(const std::string& name);
  // The instance if it was built already; for invalidations, which concern nothing
  // that was never looked up.
  std::shared_ptr<TenantAuth> find_built(const std::string& name);
  // Every built instance, and the removed ones whose last lookups still run: a stop
  // must close and cancel those too, or a lookup held by a database that no longer
  // answers would keep the stop waiting.
  void for_each_built(const std::function<void(TenantAuth&)>& visit);

  // A reloaded tenants file: removed instances are dropped (with their connections,
  // once their last lookup finishes), instances whose variables changed are built
  // again on next use, the others keep their pools and caches. An instance whose new
  // variables are wrong answers FAILED_PRECONDITION with the reason until fixed.
  void update(const Tenants& tenants);

 private:
  struct Entry {
    std::map<std::string, std::string, std::less<>> variables;  // to see what changed
    std::optional<TenantAuthSettings> settings;                 // unset: `error`
    std::string error;
    std::shared_ptr<TenantAuth> built;
  };
  static Entry entry_for(const Tenant& tenant);

  const std::chrono::milliseconds checkout_timeout_;
  WorkerPool& workers_;
  ConnectionBudget* const budget_;

  std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::weak_ptr<TenantAuth>> removed_;  // by reloads; pruned once gone
};

}  // namespace sluice
