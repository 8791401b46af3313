#include "auth/auth_cache.hpp"

#include <algorithm>

namespace sluice {
namespace {

// Tags of a cached token, so that a kill can find it by id.
constexpr int kAccessTokenTag = 0;
constexpr int kAccountTag = 1;
// How long relations stay cached; each request says how old an answer it accepts.
constexpr std::chrono::milliseconds kRelationsRetention{60000};

using std::chrono::milliseconds;

}  // namespace

AuthCacheSettings AuthCacheSettings::from_env(const Env& env) {
  AuthCacheSettings settings;
  settings.token_ttl = milliseconds(env.non_negative("SLUICE_TOKEN_CACHE_TTL_MS", 30000));
  settings.token_negative_ttl = milliseconds(env.non_negative("SLUICE_TOKEN_NEGATIVE_CACHE_TTL_MS", 1000));
  settings.filters_ttl = milliseconds(env.non_negative("SLUICE_FILTERS_CACHE_TTL_MS", 60000));
  settings.settings_ttl = milliseconds(env.non_negative("SLUICE_SETTINGS_CACHE_TTL_MS", 0));
  settings.max_entries = static_cast<size_t>(env.non_negative("SLUICE_AUTH_CACHE_MAX_ENTRIES", 100000));
  settings.queue_max = static_cast<size_t>(env.non_negative("SLUICE_AUTH_QUEUE_MAX", 10000));
  settings.queue_timeout = milliseconds(env.non_negative("SLUICE_AUTH_QUEUE_TIMEOUT_MS", 5000));
  return settings;
}

AuthCache::AuthCache(AuthQueries& queries, WorkerPool& workers, AuthCacheSettings settings, WorkerPool::Lane lane)
    : queries_(queries),
      workers_(workers),
      lane_(lane),
      settings_(std::move(settings)),
      tokens_(
          "token", settings_.max_entries,
          [this](const v1::TokenReply& reply) {
            return reply.found() ? settings_.token_ttl : settings_.token_negative_ttl;
          },
          settings_.token_ttl.count() > 0 || settings_.token_negative_ttl.count() > 0, settings_.now,
          [](const v1::TokenReply& reply) {
            std::vector<CacheTag> tags;
            if (reply.found()) {
              tags.emplace_back(kAccessTokenTag, reply.access_token_id());
              tags.emplace_back(kAccountTag, reply.account_id());
            }
            return tags;
          }),
      feed_access_(
          "settings", settings_.max_entries, [this](const v1::FeedAccessReply&) { return settings_.settings_ttl; },
          // Subscribes that arrive while a query runs share it even without a TTL
          // (docs/protocol.md#feed-access-settings): a reconnect storm of public
          // streams is one query. A subscribe may so see the settings as they were
          // when that query began, at most its duration before it arrived.
          /*coalesce=*/true, settings_.now),
      // Kept a minute, and used as each request allows (its max_age).
      relations_("relations", settings_.max_entries, [](const v1::RelationsReply&) { return kRelationsRetention; },
                 /*coalesce=*/true, settings_.now),
      filters_(
          "filters", settings_.max_entries, [this](const v1::FiltersReply&) { return settings_.filters_ttl; },
          settings_.filters_ttl.count() > 0, settings_.now) {}

template <class Key, class T>
void AuthCache::get(TtlCache<Key, T>& cache, const Key& key, std::function<T()> load, Done<T> done,
                    std::optional<milliseconds> max_age) {
  std::vector<Done<T>> dones;
  dones.push_back(std::move(done));
  get_many<Key, T>(cache, {key}, TtlCache<Key, T>::load_one(std::move(load)), std::move(dones), max_age);
}

template <class Key, class T>
void AuthCache::get_many(TtlCache<Key, T>& cache, const std::vector<Key>& keys,
                         std::function<std::vector<T>(const std::vector<Key>&)> load, std::vector<Done<T>> dones,
                         std::optional<milliseconds> max_age) {
  auto queued_at = settings_.now();
  auto load_in_time = [this, queued_at, load = std::move(load)](const std::vector<Key>& missing) {
    refuse_if_waited_too_long(queued_at);
    return load(missing);
  };
  auto run = [this](std::function<void()> task) {
    return workers_.submit(std::move(task), lane_) ? std::exception_ptr() : workers_.refusal();
  };
  std::vector<typename TtlCache<Key, T>::Done> answers;
  answers.reserve(dones.size());
  for (auto& done : dones) {
    answers.push_back([done = std::move(done), now = settings_.now](const typename TtlCache<Key, T>::Result& result) {
      AuthAnswer<T> answer{result.value, result.error, milliseconds(0)};
      if (result.value) {
        answer.age = std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(now() - result.loaded_at));
      }
      done(answer);
    });
  }
  cache.get_many(keys, std::move(load_in_time), run, std::move(answers), max_age);
}

void AuthCache::lookup_token(const std::string& token, Done<v1::TokenReply> done) {
  get<std::string, v1::TokenReply>(
      tokens_, token, [this, token] { return queries_.token(token); }, std::move(done));
}

void AuthCache::refuse_if_waited_too_long(AuthCacheSettings::Clock::time_point queued_at) const {
  // docs/protocol.md#auth-overload: a lookup that waited in the queue past its deadline
  // is refused without reaching PostgreSQL, so a flood never piles up there.
  if (settings_.queue_timeout.count() > 0 && settings_.now() - queued_at > settings_.queue_timeout) {
    throw WorkRefused("the lookup waited too long for PostgreSQL");
  }
}

void AuthCache::check_list_ownership(const std::string& list_id, int64_t account_id, Done<bool> done) {
  auto task = [this, list_id, account_id, done, queued_at = settings_.now()] {
    AuthAnswer<bool> answer;
    try {
      refuse_if_waited_too_long(queued_at);
      answer.value = std::make_shared<const bool>(queries_.list_owned(list_id, account_id));
    } catch (...) {
      answer.error = std::current_exception();
    }
    done(answer);
  };
  if (!workers_.submit(task, lane_)) {
    done(AuthAnswer<bool>{nullptr, workers_.refusal(), milliseconds(0)});
  }
}

void AuthCache::feed_access(v1::FeedKind kind, Done<v1::FeedAccessReply> done) {
  get<int, v1::FeedAccessReply>(
      feed_access_, static_cast<int>(kind), [this, kind] { return queries_.feed_access(kind); }, std::move(done));
}

void AuthCache::relations(const std::vector<int64_t>& account_ids, milliseconds max_age,
                          std::vector<Done<v1::RelationsReply>> dones) {
  get_many<int64_t, v1::RelationsReply>(
      relations_, account_ids, [this](const std::vector<int64_t>& missing) { return queries_.relations(missing); },
      std::move(dones), max_age);
}

void AuthCache::filters(int64_t account_id, Done<v1::FiltersReply> done) {
  get<int64_t, v1::FiltersReply>(
      filters_, account_id, [this, account_id] { return queries_.filters(account_id); }, std::move(done));
}

void AuthCache::forget_access_token(int64_t access_token_id) { tokens_.erase_tag({kAccessTokenTag, access_token_id}); }

void AuthCache::forget_account(int64_t account_id) {
  tokens_.erase_tag({kAccountTag, account_id});
  relations_.erase(account_id);
  filters_.erase(account_id);
}

void AuthCache::forget_filters(int64_t account_id) { filters_.erase(account_id); }

void AuthCache::forget_token(const std::string& token) { tokens_.erase(token); }

void AuthCache::forget_tokens_and_filters() {
  tokens_.clear();
  filters_.clear();
}

}  // namespace sluice
