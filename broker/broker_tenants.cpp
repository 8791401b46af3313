#include "broker/broker_tenants.hpp"

#include <map>
#include <set>

#include "common/config_error.hpp"
#include "common/log.hpp"

namespace sluice::broker {

TenantBroker::TenantBroker(boost::asio::io_context& io, std::string name, RedisConfig redis, RedisLink& link,
                           std::chrono::milliseconds heartbeat_interval)
    : name_(std::move(name)),
      redis_(std::move(redis)),
      link_(link),
      subscriber_(io, redis_, name_, registry_, link_),
      heartbeat_(io, redis_, registry_, link_, heartbeat_interval) {}

BrokerTenants::BrokerTenants(boost::asio::io_context& io, const RedisConfig& redis,
                             std::chrono::milliseconds heartbeat_interval)
    : io_(io), heartbeat_interval_(heartbeat_interval), multi_tenant_(false) {
  std::lock_guard lock(mutex_);
  build_locked(Wanted{"", redis});
}

BrokerTenants::BrokerTenants(boost::asio::io_context& io, const Tenants& tenants,
                             std::chrono::milliseconds heartbeat_interval)
    : io_(io), heartbeat_interval_(heartbeat_interval), multi_tenant_(true) {
  std::lock_guard lock(mutex_);
  for (const Wanted& wanted : wanted_of(tenants, /*strict=*/true)) build_locked(wanted);
}

BrokerTenants::~BrokerTenants() = default;

std::vector<BrokerTenants::Wanted> BrokerTenants::wanted_of(const Tenants& tenants, bool strict,
                                                            std::set<std::string>* refused) {
  std::vector<Wanted> out;
  // Two instances reading the same channels of the same Redis server would each get
  // the other's events, whatever their databases: Pub/Sub is server-wide.
  std::map<std::pair<std::string, std::string>, std::string> owner;
  for (const Tenant& tenant : tenants.all()) {
    std::string error;
    try {
      Wanted wanted{tenant.name, redis_config_from_env(tenant.env)};
      auto [it, fresh] = owner.try_emplace({wanted.redis.server_key(), wanted.redis.redis_namespace}, tenant.name);
      if (fresh) {
        out.push_back(std::move(wanted));
        continue;
      }
      error = "tenants " + it->second + " and " + tenant.name +
              " use the same Redis server with the same REDIS_NAMESPACE: each would receive the other's events"
              " (Pub/Sub channels are the server's, whatever REDIS_DB)";
    } catch (const ConfigError& e) {
      error = "tenant " + tenant.name + ": " + e.what();
    }
    if (strict) throw ConfigError(error);
    log::error("tenant's new settings refused; it keeps what it had", {{"tenant", tenant.name}, {"error", error}});
    if (refused) refused->insert(tenant.name);
  }
  return out;
}

std::shared_ptr<TenantBroker> BrokerTenants::build_locked(const Wanted& wanted) {
  auto& link = links_[wanted.redis.connection_key()];
  if (!link) link = std::make_unique<RedisLink>(io_, wanted.redis, multi_tenant_);
  auto tenant = std::make_shared<TenantBroker>(io_, wanted.name, wanted.redis, *link, heartbeat_interval_);
  for (const auto& listener : listeners_) tenant->subscriber().add_system_listener(listener);
  for (const auto& [id, sink] : streams_) tenant->registry().add_stream(id, sink);
  // What gateways asked for before this broker knew the instance.
  if (auto held = unknown_.find(wanted.name); held != unknown_.end()) {
    for (const auto& [id, channels] : held->second) {
      for (const auto& [channel, heartbeat] : channels) tenant->registry().subscribe(id, {channel}, heartbeat);
    }
    unknown_.erase(held);
  }
  tenants_[wanted.name] = tenant;
  return tenant;
}

TenantBroker& BrokerTenants::only() const {
  std::lock_guard lock(mutex_);
  return *tenants_.begin()->second;
}

std::shared_ptr<TenantBroker> BrokerTenants::find(std::string_view name) const {
  std::lock_guard lock(mutex_);
  auto it = tenants_.find(name);
  return it == tenants_.end() ? nullptr : it->second;
}

void BrokerTenants::add_stream(StreamId id, Sink sink) {
  std::lock_guard lock(mutex_);
  for (auto& [name, tenant] : tenants_) tenant->registry().add_stream(id, sink);
  streams_.emplace(id, std::move(sink));
}

void BrokerTenants::remove_stream(StreamId id) {
  std::vector<std::pair<std::shared_ptr<TenantBroker>, std::vector<std::string>>> changes;
  {
    std::lock_guard lock(mutex_);
    if (streams_.erase(id) == 0) return;
    for (auto& [name, tenant] : tenants_) {
      changes.emplace_back(tenant, tenant->registry().remove_stream(id).toggled);
    }
    for (auto& [name, held] : unknown_) held.erase(id);
  }
  // The last gateway leaving a channel UNSUBSCRIBEs it; its key is left to expire
  // (docs/protocol.md#subscription-heartbeat-keys).
  for (auto& [tenant, toggled] : changes) tenant->subscriber().channels_changed(std::move(toggled));
}

BrokerTenants::Applied BrokerTenants::subscribe(std::string_view tenant, StreamId id,
                                                const std::vector<std::string>& channels, bool heartbeat) {
  std::lock_guard lock(mutex_);
  if (auto known = tenants_.find(tenant); known != tenants_.end()) {
    return {known->second, known->second->registry().subscribe(id, channels, heartbeat)};
  }
  if (!streams_.count(id)) return {};
  auto& held = unknown_[std::string(tenant)][id];
  for (const auto& channel : channels) held[channel] = heartbeat;
  return {};
}

BrokerTenants::Applied BrokerTenants::unsubscribe(std::string_view tenant, StreamId id,
                                                  const std::vector<std::string>& channels) {
  std::lock_guard lock(mutex_);
  if (auto known = tenants_.find(tenant); known != tenants_.end()) {
    return {known->second, known->second->registry().unsubscribe(id, channels)};
  }
  auto held = unknown_.find(tenant);
  if (held == unknown_.end()) return {};
  auto stream = held->second.find(id);
  if (stream == held->second.end()) return {};
  for (const auto& channel : channels) stream->second.erase(channel);
  return {};
}

void BrokerTenants::add_system_listener(RedisSubscriber::SystemListener listener) {
  std::lock_guard lock(mutex_);
  for (auto& [name, tenant] : tenants_) tenant->subscriber().add_system_listener(listener);
  listeners_.push_back(std::move(listener));
}

void BrokerTenants::start_tenant(TenantBroker& tenant) {
  tenant.subscriber().start();
  tenant.heartbeat().start();
}

void BrokerTenants::start() {
  std::vector<std::shared_ptr<TenantBroker>> tenants;
  std::vector<RedisLink*> links;
  {
    std::lock_guard lock(mutex_);
    started_ = true;
    for (auto& [name, tenant] : tenants_) tenants.push_back(tenant);
    for (auto& [key, link] : links_) links.push_back(link.get());
  }
  // Attached first, so that each hears its connection come up.
  for (auto& tenant : tenants) start_tenant(*tenant);
  for (RedisLink* link : links) link->start();
}

void BrokerTenants::stop() {
  std::vector<std::shared_ptr<TenantBroker>> tenants;
  std::vector<RedisLink*> links;
  {
    std::lock_guard lock(mutex_);
    if (!started_) return;
    started_ = false;
    for (auto& [name, tenant] : tenants_) tenants.push_back(tenant);
    for (auto& [key, link] : links_) links.push_back(link.get());
  }
  for (auto& tenant : tenants) {
    tenant->subscriber().stop();
    tenant->heartbeat().stop();
  }
  for (RedisLink* link : links) link->stop();
}

void BrokerTenants::update(const Tenants& file) {
  std::set<std::string> refused;
  std::vector<Wanted> wanted = wanted_of(file, /*strict=*/false, &refused);
  std::vector<std::shared_ptr<TenantBroker>> added, removed;
  std::vector<RedisLink*> new_links;
  {
    std::lock_guard lock(mutex_);
    // A refused instance that is served keeps its settings, connections and subscriptions.
    std::set<std::string, std::less<>> names(refused.begin(), refused.end());
    for (const Wanted& w : wanted) names.insert(w.name);
    // What the instances that stay really read: a kept one whose Redis settings changed
    // goes on with its old ones until a restart, so a newcomer on those would get its events.
    std::map<std::pair<std::string, std::string>, std::string> live;
    for (const auto& [name, tenant] : tenants_) {
      if (names.count(name)) live.try_emplace({tenant->redis().server_key(), tenant->redis().redis_namespace}, name);
    }
    for (const Wanted& w : wanted) {
      auto it = tenants_.find(w.name);
      if (it == tenants_.end()) {
        auto owner = live.find({w.redis.server_key(), w.redis.redis_namespace});
        if (owner != live.end()) {
          log::error("tenant refused: it would read the channels another tenant still reads",
                     {{"tenant", w.name}, {"other", owner->second}, {"redis", w.redis.describe()}});
          names.erase(w.name);
          continue;
        }
        bool new_link = !links_.count(w.redis.connection_key());
        added.push_back(build_locked(w));
        if (new_link) new_links.push_back(&added.back()->link());
        continue;
      }
      const RedisConfig& current = it->second->redis();
      if (current.connection_key() != w.redis.connection_key() || current.redis_namespace != w.redis.redis_namespace) {
        log::error("tenant's new Redis settings take effect when the broker restarts",
                   {{"tenant", w.name}, {"redis", current.describe()}, {"new_redis", w.redis.describe()}});
      }
    }
    for (auto it = tenants_.begin(); it != tenants_.end();) {
      if (names.count(it->first)) {
        ++it;
        continue;
      }
      // Its registry lets go of the streams: nothing more reaches them through it. What
      // they held is kept as for an instance not known yet: a gateway that never saw the
      // removal (it was undone by the next reload) still has those listeners, and gets
      // them back if the instance returns; a gateway that did see it releases them.
      for (const auto& [id, sink] : streams_) {
        auto held = it->second->registry().channels_of(id);
        if (!held.empty()) unknown_[it->first][id] = std::move(held);
        it->second->registry().remove_stream(id);
      }
      removed.push_back(it->second);
      retired_.push_back(it->second);
      it = tenants_.erase(it);
    }
  }
  if (!started_) return;
  for (auto& tenant : removed) {
    tenant->subscriber().stop();
    tenant->heartbeat().stop();
    log::info("tenant removed", {{"tenant", tenant->name()}});
  }
  for (auto& tenant : added) {
    start_tenant(*tenant);
    log::info("tenant added", {{"tenant", tenant->name()}, {"redis", tenant->redis().describe()}});
  }
  for (RedisLink* link : new_links) link->start();
  // A Redis no instance uses any more is let go.
  std::lock_guard lock(mutex_);
  for (auto it = links_.begin(); it != links_.end();) {
    if (!it->second->empty()) {
      ++it;
      continue;
    }
    it->second->stop();
    retired_links_.push_back(std::move(it->second));
    it = links_.erase(it);
  }
}

}  // namespace sluice::broker
