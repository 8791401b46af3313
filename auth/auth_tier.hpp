#pragma once
// The auth tier as a component: the PostgreSQL pool, the queries, the caches, the
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

#include "auth/auth_cache.hpp"
#include "auth/auth_queries.hpp"
#include "auth/auth_service.hpp"
#include "auth/pg_pool.hpp"
#include "auth/worker_pool.hpp"
#include "common/env.hpp"
#include "auth/pg_config.hpp"

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

  // Throws ConfigError naming the variable.
  static AuthConfig from_env(const Env& env);
};

class AuthTier {
 public:
  // Starts the worker threads and the readiness probe; connects to nothing before the
  // first query or probe (pool connections are opened lazily, docs/protocol.md#postgresql-configuration).
  explicit AuthTier(AuthConfig config);
  ~AuthTier();
  AuthTier(const AuthTier&) = delete;
  AuthTier& operator=(const AuthTier&) = delete;

  grpc::Service* service() { return &service_; }
  AuthCache& cache() { return cache_; }
  const AuthConfig& config() const { return config_; }

  // True while PostgreSQL answers the probe.
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
  void report(bool ready);

  const AuthConfig config_;
  PgPool pool_;
  AuthQueries queries_;
  WorkerPool workers_;
  AuthCache cache_;
  AuthService service_;

  mutable std::mutex callback_mutex_;  // guards ready_ and callback_, orders reports
  bool ready_ = false;
  std::function<void(bool)> callback_;

  std::mutex stop_mutex_;
  std::condition_variable stop_wake_;
  bool stopping_ = false;
  std::mutex join_mutex_;  // stop() may be called from two threads
  std::thread probe_;
};

}  // namespace sluice
