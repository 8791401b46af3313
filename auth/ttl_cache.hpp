#pragma once
// A thread-safe, size-bounded (LRU) cache of answers with a time to live, which also
// coalesces concurrent misses for one key into a single load ("single flight"): a
// reconnect storm sends thousands of lookups of the same token at once, and PostgreSQL
// should see one query. Failed loads are handed to every waiter and never cached.
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "auth/worker_pool.hpp"
#include "common/metrics.hpp"

namespace sluice {

// A secondary key entries can be dropped by (e.g. {kind, access token id}).
using CacheTag = std::pair<int, int64_t>;

struct CacheTagHash {
  size_t operator()(const CacheTag& tag) const noexcept {
    return std::hash<int64_t>()(tag.second) * 31 + static_cast<size_t>(tag.first);
  }
};

template <class Key, class Value, class Hash = std::hash<Key>>
class TtlCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Result {
    std::shared_ptr<const Value> value;  // null when the load failed
    std::exception_ptr error;
    Clock::time_point loaded_at;  // when the load that produced `value` started
  };
  using Done = std::function<void(const Result&)>;
  using Load = std::function<Value()>;
  using LoadMany = std::function<std::vector<Value>(const std::vector<Key>&)>;
  // Hands a load to a worker; returns null, or why it cannot (busy, or shutting down).
  using Run = std::function<std::exception_ptr(std::function<void()>)>;
  using Ttl = std::function<std::chrono::milliseconds(const Value&)>;
  using Tags = std::function<std::vector<CacheTag>(const Value&)>;
  using Now = std::function<Clock::time_point()>;

  // `name` labels the sluice_auth_cache_{hits,misses}_total series. When `coalesce` is
  // false every miss loads on its own (a zero TTL means "ask every time").
  TtlCache(const std::string& name, size_t max_entries, Ttl ttl, bool coalesce, Now now, Tags tags = {})
      : max_entries_(max_entries),
        ttl_(std::move(ttl)),
        coalesce_(coalesce),
        now_(std::move(now)),
        tags_(std::move(tags)),
        hits_(metrics::Registry::global().counter("sluice_auth_cache_hits_total",
                                                  "Auth lookups answered from the auth tier's cache",
                                                  {{"cache", name}})),
        misses_(metrics::Registry::global().counter("sluice_auth_cache_misses_total",
                                                    "Auth lookups that had to wait for PostgreSQL",
                                                    {{"cache", name}})) {}

  // Answers from the cache inline, or joins the load already running for `key`, or
  // starts `load` through `run`. `done` runs on the calling thread for a hit and on the
  // loading thread otherwise; it must not throw. With `max_age`, only an answer loaded at
  // most that long ago is used, and 0 always loads anew without joining a running load.
  void get(const Key& key, Load load, const Run& run, Done done,
           std::optional<std::chrono::milliseconds> max_age = std::nullopt) {
    std::vector<Done> dones;
    dones.push_back(std::move(done));
    get_many({key}, load_one(std::move(load)), run, std::move(dones), max_age);
  }

  // A load of one key as get_many takes it.
  static LoadMany load_one(Load load) {
    return [load = std::move(load)](const std::vector<Key>&) {
      std::vector<Value> values;
      values.push_back(load());
      return values;
    };
  }

  // get() for several keys at once, `dones[i]` answering `keys[i]`. The keys that are
  // neither cached nor already loading are loaded together, by one call of `load` with
  // them (it returns their values in that order): a batch of viewers is one query, not
  // one each (docs/protocol.md#relations).
  void get_many(const std::vector<Key>& keys, LoadMany load, const Run& run, std::vector<Done> dones,
                std::optional<std::chrono::milliseconds> max_age = std::nullopt) {
    std::vector<std::pair<size_t, Result>> hits;
    std::vector<Key> to_load;
    std::vector<std::shared_ptr<Flight>> flights;
    const bool may_share = coalesce_ && (!max_age || max_age->count() > 0);
    {
      std::lock_guard lock(mutex_);
      for (size_t i = 0; i < keys.size(); ++i) {
        if (auto hit = find_locked(keys[i], max_age)) {
          hits.emplace_back(i, std::move(*hit));
          continue;
        }
        misses_.inc();
        auto running = may_share ? in_flight_.find(keys[i]) : in_flight_.end();
        if (running != in_flight_.end()) {
          running->second->waiters.push_back(std::move(dones[i]));
          continue;
        }
        auto flight = std::make_shared<Flight>();
        flight->epoch = epoch_;
        flight->waiters.push_back(std::move(dones[i]));
        if (may_share) in_flight_.emplace(keys[i], flight);
        running_.emplace(keys[i], flight);
        to_load.push_back(keys[i]);
        flights.push_back(std::move(flight));
      }
    }
    for (auto& [index, hit] : hits) dones[index](hit);
    if (to_load.empty()) return;
    auto task = [this, to_load, flights, load = std::move(load)] {
      const auto loaded_at = now_();
      std::vector<Value> values;
      std::exception_ptr error;
      try {
        values = load(to_load);
        if (values.size() != to_load.size()) throw std::logic_error("a batch load answered the wrong number of keys");
      } catch (...) {
        error = std::current_exception();
      }
      for (size_t i = 0; i < to_load.size(); ++i) {
        Result result;
        result.loaded_at = loaded_at;
        if (error) {
          result.error = error;
        } else {
          result.value = std::make_shared<const Value>(std::move(values[i]));
        }
        complete(to_load[i], flights[i], result);
      }
    };
    if (std::exception_ptr refusal = run(task)) {
      Result refused;
      refused.loaded_at = now_();
      refused.error = refusal;
      for (size_t i = 0; i < to_load.size(); ++i) complete(to_load[i], flights[i], refused);
    }
  }

  // Drops `key`'s entry. Loads of it already running started before: later callers do
  // not join them, and their answers are not kept. Loads of other keys go on as they
  // were (a reconnect storm of `fresh` lookups must not stop every other lookup from
  // being shared and cached).
  void erase(const Key& key) {
    std::lock_guard lock(mutex_);
    remove_locked(key);
    in_flight_.erase(key);
    auto [first, last] = running_.equal_range(key);
    for (auto it = first; it != last; ++it) it->second->stale = true;
  }

  // Drops every entry carrying `tag`. Which running loads will answer with it is not
  // known before they do, so all of them are detached.
  void erase_tag(const CacheTag& tag) {
    std::lock_guard lock(mutex_);
    if (auto it = by_tag_.find(tag); it != by_tag_.end()) {
      auto keys = it->second;  // remove_locked edits the index
      for (const auto& key : keys) remove_locked(key);
    }
    detach_flights_locked();
  }

  void clear() {
    std::lock_guard lock(mutex_);
    entries_.clear();
    lru_.clear();
    by_tag_.clear();
    detach_flights_locked();
  }

  size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::shared_ptr<const Value> value;
    Clock::time_point loaded_at;
    Clock::time_point expires_at;
    std::vector<CacheTag> tags;
    typename std::list<Key>::iterator lru_position;
  };
  struct Flight {
    uint64_t epoch = 0;
    bool stale = false;  // its key was erased while it ran
    std::vector<Done> waiters;
  };

  std::optional<Result> find_locked(const Key& key, std::optional<std::chrono::milliseconds> max_age) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    auto now = now_();
    if (now >= it->second.expires_at) {
      remove_locked(key);
      return std::nullopt;
    }
    // Too old for this caller; 0 accepts nothing cached, even an answer loaded this instant.
    if (max_age && (max_age->count() == 0 || now - it->second.loaded_at > *max_age)) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second.lru_position);
    hits_.inc();
    return Result{it->second.value, nullptr, it->second.loaded_at};
  }

  void complete(const Key& key, const std::shared_ptr<Flight>& flight, const Result& result) {
    std::vector<Done> waiters;
    {
      std::lock_guard lock(mutex_);
      if (auto it = in_flight_.find(key); it != in_flight_.end() && it->second == flight) in_flight_.erase(it);
      auto [first, last] = running_.equal_range(key);
      for (auto it = first; it != last; ++it) {
        if (it->second == flight) {
          running_.erase(it);
          break;
        }
      }
      // An invalidation while the query ran may have made this answer stale: hand it to
      // the callers that asked before, but do not keep it.
      if (result.value && !flight->stale && flight->epoch == epoch_) insert_locked(key, result);
      waiters = std::move(flight->waiters);
    }
    for (auto& waiter : waiters) waiter(result);
  }

  void insert_locked(const Key& key, const Result& result) {
    auto ttl = ttl_(*result.value);
    if (ttl.count() <= 0 || max_entries_ == 0) return;
    remove_locked(key);
    lru_.push_front(key);
    Entry entry{result.value, result.loaded_at, result.loaded_at + ttl, {}, lru_.begin()};
    if (tags_) entry.tags = tags_(*result.value);
    for (const auto& tag : entry.tags) by_tag_[tag].insert(key);
    entries_.emplace(key, std::move(entry));
    while (entries_.size() > max_entries_) remove_locked(lru_.back());
    drop_expired_tail_locked(result.loaded_at);
  }

  // Entries nobody asks for again sink to the LRU tail and, once expired, would stay
  // until the cache is full: under a flood of unknown tokens that is the whole cache of
  // dead negative answers. Each insertion removes up to two expired ones from the tail,
  // so they go about as fast as they come.
  void drop_expired_tail_locked(Clock::time_point now) {
    for (int i = 0; i < 2 && !lru_.empty(); ++i) {
      auto it = entries_.find(lru_.back());
      if (it == entries_.end() || it->second.expires_at > now) return;
      remove_locked(lru_.back());
    }
  }

  void remove_locked(const Key& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    for (const auto& tag : it->second.tags) {
      auto tagged = by_tag_.find(tag);
      if (tagged == by_tag_.end()) continue;
      tagged->second.erase(key);
      if (tagged->second.empty()) by_tag_.erase(tagged);
    }
    lru_.erase(it->second.lru_position);
    entries_.erase(it);
  }

  // Every load already running started before the invalidation: later callers must not
  // join them, and their answers must not be stored.
  void detach_flights_locked() {
    ++epoch_;
    in_flight_.clear();
  }

  const size_t max_entries_;
  const Ttl ttl_;
  const bool coalesce_;
  const Now now_;
  const Tags tags_;
  metrics::Counter& hits_;
  metrics::Counter& misses_;

  mutable std::mutex mutex_;
  std::unordered_map<Key, Entry, Hash> entries_;
  std::list<Key> lru_;  // most recently used first
  std::unordered_map<CacheTag, std::unordered_set<Key, Hash>, CacheTagHash> by_tag_;
  std::unordered_map<Key, std::shared_ptr<Flight>, Hash> in_flight_;  // loads a caller may join
  std::unordered_multimap<Key, std::shared_ptr<Flight>, Hash> running_;  // every load under way
  uint64_t epoch_ = 0;  // moved by erase_tag and clear
};

}  // namespace sluice
