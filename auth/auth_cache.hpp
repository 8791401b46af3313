#pragma once
// Time-bounded caches in front of AuthQueries, with single-flight coalescing of
// concurrent misses and the invalidations Redis asks for (docs/protocol.md#system-channels).
//
// Settings (SLUICE_* durations in milliseconds, plain non-negative integers; 0 turns
// the cache off and every request queries PostgreSQL, like the reference):
//   SLUICE_TOKEN_CACHE_TTL_MS           30000   found tokens (docs/protocol.md#token-lookup)
//   SLUICE_TOKEN_NEGATIVE_CACHE_TTL_MS   1000   unknown / revoked / disabled tokens
//   SLUICE_RELATIONS_MAX_STALENESS_MS    5000   blocks, mutes, domain blocks (docs/protocol.md#relations)
//   SLUICE_FILTERS_CACHE_TTL_MS         60000   custom filters (docs/protocol.md#keyword-filter-query)
//   SLUICE_SETTINGS_CACHE_TTL_MS            0   feed-access settings; 0 reads them on
//                                              every subscribe like the reference
//                                              (docs/protocol.md#feed-access-settings)
//   SLUICE_AUTH_CACHE_MAX_ENTRIES      100000   entries per cache, least recently used dropped
// List ownership (docs/protocol.md#list-ownership) is not cached: it runs on every list subscribe and
// unsubscribe, as in the reference. Database errors are never cached.
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/auth_queries.hpp"
#include "auth/ttl_cache.hpp"
#include "auth/worker_pool.hpp"
#include "common/env.hpp"
#include "sluice/v1/auth.pb.h"

namespace sluice {

struct AuthCacheSettings {
  using Clock = std::chrono::steady_clock;
  std::chrono::milliseconds token_ttl{30000};
  std::chrono::milliseconds token_negative_ttl{1000};
  std::chrono::milliseconds filters_ttl{60000};
  std::chrono::milliseconds settings_ttl{0};
  size_t max_entries = 100000;
  // docs/protocol.md#auth-overload: lookups waiting for PostgreSQL, and how long one may wait.
  size_t queue_max = 10000;                    // SLUICE_AUTH_QUEUE_MAX
  std::chrono::milliseconds queue_timeout{5000};  // SLUICE_AUTH_QUEUE_TIMEOUT_MS
  // The clock entries age by (tests substitute their own).
  std::function<Clock::time_point()> now = [] { return Clock::now(); };

  static AuthCacheSettings from_env(const Env& env);
};

// One answer: `value` set, or `error` (DatabaseError, NullScopesError, WorkRefused).
template <class T>
struct AuthAnswer {
  std::shared_ptr<const T> value;
  std::exception_ptr error;
  // How old the answer is: the time since the query that produced it was sent.
  std::chrono::milliseconds age{0};
};

class AuthCache {
 public:
  template <class T>
  using Done = std::function<void(const AuthAnswer<T>&)>;

  // Misses are queried on `workers`, in `lane` (one per instance of a tenants file);
  // `queries` and `workers` must outlive the cache.
  AuthCache(AuthQueries& queries, WorkerPool& workers, AuthCacheSettings settings, WorkerPool::Lane lane = {});

  // Each calls `done` exactly once: inline for a cache hit, on a worker thread otherwise.
  void lookup_token(const std::string& token, Done<v1::TokenReply> done);
  void check_list_ownership(const std::string& list_id, int64_t account_id, Done<bool> done);
  void feed_access(v1::FeedKind kind, Done<v1::FeedAccessReply> done);
  // Relations at most `max_age` old (docs/protocol.md#relations: the gateway owns the
  // bound and sends it with each request; 0 queries PostgreSQL), `dones[i]` answering
  // `account_ids[i]`. The viewers not answered from the cache are one query together.
  void relations(const std::vector<int64_t>& account_ids, std::chrono::milliseconds max_age,
                 std::vector<Done<v1::RelationsReply>> dones);
  void filters(int64_t account_id, Done<v1::FiltersReply> done);

  // The next lookup of `token` goes to PostgreSQL.
  void forget_token(const std::string& token);
  // `kill` on timeline:access_token:<id>: the token is refused from now on.
  void forget_access_token(int64_t access_token_id);
  // `kill` on timeline:system:<account>: every token of the account, its relations and
  // its filters.
  void forget_account(int64_t account_id);
  // `filters_changed`: the account's filters are read again on next use.
  void forget_filters(int64_t account_id);
  // The stream of kill/filters_changed events was (re)opened: anything may have been
  // missed while it was down, so nothing cached that those events invalidate is kept.
  void forget_tokens_and_filters();

  const AuthCacheSettings& settings() const { return settings_; }

 private:
  template <class Key, class T>
  void get(TtlCache<Key, T>& cache, const Key& key, std::function<T()> load, Done<T> done,
           std::optional<std::chrono::milliseconds> max_age = std::nullopt);
  template <class Key, class T>
  void get_many(TtlCache<Key, T>& cache, const std::vector<Key>& keys,
                std::function<std::vector<T>(const std::vector<Key>&)> load, std::vector<Done<T>> dones,
                std::optional<std::chrono::milliseconds> max_age);
  // Throws WorkRefused when work queued at `queued_at` waited past SLUICE_AUTH_QUEUE_TIMEOUT_MS.
  void refuse_if_waited_too_long(AuthCacheSettings::Clock::time_point queued_at) const;

  AuthQueries& queries_;
  WorkerPool& workers_;
  const WorkerPool::Lane lane_;
  const AuthCacheSettings settings_;
  TtlCache<std::string, v1::TokenReply> tokens_;
  TtlCache<int, v1::FeedAccessReply> feed_access_;
  TtlCache<int64_t, v1::RelationsReply> relations_;
  TtlCache<int64_t, v1::FiltersReply> filters_;
};

}  // namespace sluice
