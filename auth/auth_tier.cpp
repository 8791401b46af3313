#include "auth/auth_tier.hpp"

#include <atomic>
#include <thread>

#include "common/log.hpp"

namespace sluice {

AuthConfig AuthConfig::from_env(const Env& env) {
  AuthConfig config;
  config.pg = pg_config_from_env(env);
  config.cache = AuthCacheSettings::from_env(env);
  config.listen = env.non_empty("SLUICE_AUTH_LISTEN").value_or("127.0.0.1:50052");
  config.admin_listen = env.get_or("SLUICE_AUTH_ADMIN_LISTEN", "127.0.0.1:9092");
  config.internal_token = env.get_or("SLUICE_INTERNAL_TOKEN", "");
  return config;
}

AuthTier::AuthTier(AuthConfig config)
    : config_(std::move(config)),
      pool_(config_.pg, [this](pqxx::connection& connection) { queries_.prepare(connection); },
            config_.checkout_timeout),
      queries_(pool_),
      workers_(config_.pg.pool_size, config_.cache.queue_max),
      cache_(queries_, workers_, config_.cache),
      service_(cache_, config_.internal_token) {
  probe_ = std::thread([this] { probe_loop(); });
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

void AuthTier::report(bool ready) {
  std::lock_guard lock(callback_mutex_);
  if (ready == ready_) return;
  ready_ = ready;
  if (ready) {
    log::info("postgresql is reachable", {{"database", config_.pg.describe()}});
  } else {
    log::warn("postgresql is unreachable", {{"database", config_.pg.describe()}});
  }
  if (callback_) callback_(ready);
}

void AuthTier::probe_loop() {
  for (;;) {
    bool ok = true;
    try {
      queries_.ping();
    } catch (const std::exception&) {
      ok = false;
    }
    std::unique_lock lock(stop_mutex_);
    if (stopping_) return;
    lock.unlock();
    report(ok);
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
  pool_.close();
  // Until every worker has finished, keep cancelling: a statement that started just
  // after a cancel (the next one of a lookup) would otherwise wait on PostgreSQL for
  // as long as whatever holds it there.
  std::atomic<bool> workers_done{false};
  std::thread canceller([this, &workers_done] {
    while (!workers_done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!workers_done.load()) pool_.cancel_running();
    }
  });
  workers_.stop();
  workers_done = true;
  canceller.join();
  std::lock_guard lock(join_mutex_);
  if (probe_.joinable()) probe_.join();
}

}  // namespace sluice
