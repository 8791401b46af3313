#include "auth/auth_tenants.hpp"

#include "common/config_error.hpp"
#include "common/log.hpp"

namespace sluice {

TenantAuthSettings TenantAuthSettings::from_env(const Env& env) {
  return TenantAuthSettings{pg_config_from_env(env), AuthCacheSettings::from_env(env)};
}

TenantAuth::TenantAuth(std::string name, const TenantAuthSettings& settings,
                       std::chrono::milliseconds checkout_timeout, WorkerPool& workers, ConnectionBudget* budget)
    : name_(std::move(name)),
      pg_(settings.pg),
      pool_(settings.pg, [this](pqxx::connection& connection) { queries_.detect_schema(connection); }, checkout_timeout,
            budget),
      queries_(pool_),
      // With a tenants file each instance has its lane on the shared threads, at most
      // its DB_POOL running at once and its SLUICE_AUTH_QUEUE_MAX waiting
      // (docs/hosting.md#databases).
      cache_(queries_, workers, settings.cache,
             budget ? WorkerPool::Lane{this, settings.pg.pool_size, settings.cache.queue_max} : WorkerPool::Lane{}) {}

AuthTenants::AuthTenants(TenantAuthSettings settings, std::chrono::milliseconds checkout_timeout, WorkerPool& workers)
    : checkout_timeout_(checkout_timeout), workers_(workers), budget_(nullptr) {
  Entry entry;
  entry.built = std::make_shared<TenantAuth>("", settings, checkout_timeout_, workers_, nullptr);
  entry.settings = std::move(settings);
  entries_.emplace("", std::move(entry));
}

AuthTenants::AuthTenants(const Tenants& tenants, std::chrono::milliseconds checkout_timeout, WorkerPool& workers,
                         ConnectionBudget& budget)
    : checkout_timeout_(checkout_timeout), workers_(workers), budget_(&budget) {
  for (const Tenant& tenant : tenants.all()) {
    Entry entry = entry_for(tenant);
    if (!entry.settings) throw ConfigError(entry.error);
    entries_.emplace(tenant.name, std::move(entry));
  }
}

AuthTenants::Entry AuthTenants::entry_for(const Tenant& tenant) {
  Entry entry;
  entry.variables = tenant.env.all();
  try {
    entry.settings = TenantAuthSettings::from_env(tenant.env);
  } catch (const ConfigError& e) {
    entry.error = "tenant " + tenant.name + ": " + e.what();
  }
  return entry;
}

AuthTenants::Found AuthTenants::find(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return {nullptr, true, "unknown tenant \"" + name + "\""};
  Entry& entry = it->second;
  if (!entry.settings) return {nullptr, false, entry.error};
  if (!entry.built) {
    // Connects to nothing yet: the pool opens its first connection on the first query.
    entry.built = std::make_shared<TenantAuth>(name, *entry.settings, checkout_timeout_, workers_, budget_);
  }
  return {entry.built, false, ""};
}

std::shared_ptr<TenantAuth> AuthTenants::find_built(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.built;
}

void AuthTenants::for_each_built(const std::function<void(TenantAuth&)>& visit) {
  std::vector<std::shared_ptr<TenantAuth>> built;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, entry] : entries_) {
      if (entry.built) built.push_back(entry.built);
    }
    std::erase_if(removed_, [&built](const std::weak_ptr<TenantAuth>& removed) {
      auto alive = removed.lock();
      if (!alive) return true;  // its last lookup is over: nothing to close
      built.push_back(std::move(alive));
      return false;
    });
  }
  for (auto& tenant : built) visit(*tenant);
}

void AuthTenants::update(const Tenants& tenants) {
  // Dropped outside the lock: the last reference may close a pool's connections.
  std::vector<std::shared_ptr<TenantAuth>> dropped;
  std::lock_guard lock(mutex_);
  std::map<std::string, Entry, std::less<>> next;
  for (const Tenant& tenant : tenants.all()) {
    auto old = entries_.find(tenant.name);
    if (old != entries_.end() && old->second.variables == tenant.env.all()) {
      next.emplace(tenant.name, std::move(old->second));
      continue;
    }
    Entry entry = entry_for(tenant);
    if (!entry.settings) log::error("tenant settings refused", {{"tenant", tenant.name}, {"error", entry.error}});
    next.emplace(tenant.name, std::move(entry));
  }
  // What is still built here was removed or changed (kept entries moved out).
  for (auto& [name, entry] : entries_) {
    if (!entry.built) continue;
    removed_.push_back(entry.built);
    dropped.push_back(std::move(entry.built));
  }
  entries_ = std::move(next);
}

}  // namespace sluice
