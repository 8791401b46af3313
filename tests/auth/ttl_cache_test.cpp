// TtlCache on its own: expiry, LRU bound, single flight, errors, invalidation races.
// Loads are handed to a queue the test runs by hand, so every interleaving is explicit.
#include "auth/ttl_cache.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "tests/auth/auth_test_support.hpp"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using Cache = TtlCache<std::string, int>;

struct Harness {
  auth_test::ManualClock clock;
  std::deque<std::function<void()>> queued;
  int loads = 0;
  bool accept = true;

  Cache::Run run() {
    return [this](std::function<void()> task) -> std::exception_ptr {
      if (!accept) return std::make_exception_ptr(WorkRefused("refused"));
      queued.push_back(std::move(task));
      return nullptr;
    };
  }
  void run_all() {
    while (!queued.empty()) {
      auto task = std::move(queued.front());
      queued.pop_front();
      task();
    }
  }
  // Asks for `key`; the answer lands in *out (-1 for an error, -2 while pending).
  void get(Cache& cache, const std::string& key, int value, int* out) {
    *out = -2;
    cache.get(
        key,
        [this, value] {
          ++loads;
          if (value < 0) throw std::runtime_error("database down");
          return value;
        },
        run(), [out](const Cache::Result& result) { *out = result.value ? *result.value : -1; });
  }
};

Cache make(Harness& h, size_t max_entries = 100, milliseconds ttl = milliseconds(1000), bool coalesce = true,
           Cache::Tags tags = {}) {
  return Cache("test", max_entries, [ttl](const int&) { return ttl; }, coalesce, h.clock.function(), std::move(tags));
}

TEST(TtlCacheTest, HitWithinTtlAndReloadAfter) {
  Harness h;
  auto cache = make(h);
  int out;
  h.get(cache, "a", 1, &out);
  EXPECT_EQ(out, -2);
  h.run_all();
  EXPECT_EQ(out, 1);
  h.get(cache, "a", 2, &out);
  EXPECT_EQ(out, 1) << "a hit is answered inline";
  EXPECT_TRUE(h.queued.empty());
  h.clock.advance(milliseconds(999));
  h.get(cache, "a", 2, &out);
  EXPECT_EQ(out, 1);
  h.clock.advance(milliseconds(1));
  h.get(cache, "a", 2, &out);
  EXPECT_EQ(out, -2);
  h.run_all();
  EXPECT_EQ(out, 2);
  EXPECT_EQ(h.loads, 2);
}

// A flood of keys asked once each (unknown tokens) must not fill the cache with
// expired entries: they leave as new ones arrive.
TEST(TtlCacheTest, ExpiredEntriesNobodyAsksForAgainDoNotAccumulate) {
  Harness h;
  auto cache = make(h, /*max_entries=*/100000, milliseconds(1000));
  int out;
  for (int i = 0; i < 10000; ++i) {
    h.get(cache, "token-" + std::to_string(i), i, &out);
    h.run_all();
    h.clock.advance(milliseconds(1));
  }
  // Only about the last second's keys (1,000) can still be alive.
  EXPECT_LE(cache.size(), 1100u);
  EXPECT_GE(cache.size(), 1000u);
}

TEST(TtlCacheTest, ConcurrentMissesShareOneLoad) {
  Harness h;
  auto cache = make(h);
  std::vector<int> outs(50);
  for (auto& out : outs) h.get(cache, "token", 7, &out);
  EXPECT_EQ(h.queued.size(), 1u);
  h.run_all();
  EXPECT_EQ(h.loads, 1);
  for (int out : outs) EXPECT_EQ(out, 7);
}

TEST(TtlCacheTest, ZeroTtlWithoutCoalescingLoadsEveryTime) {
  Harness h;
  auto cache = make(h, 100, milliseconds(0), false);
  int a, b;
  h.get(cache, "k", 1, &a);
  h.get(cache, "k", 1, &b);
  EXPECT_EQ(h.queued.size(), 2u);
  h.run_all();
  h.get(cache, "k", 1, &a);
  h.run_all();
  EXPECT_EQ(h.loads, 3);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(TtlCacheTest, ErrorsAreDeliveredAndNotCached) {
  Harness h;
  auto cache = make(h);
  int a, b;
  h.get(cache, "k", -1, &a);
  h.get(cache, "k", -1, &b);
  h.run_all();
  EXPECT_EQ(a, -1);
  EXPECT_EQ(b, -1);
  EXPECT_EQ(h.loads, 1);
  h.get(cache, "k", 5, &a);
  h.run_all();
  EXPECT_EQ(a, 5);
  EXPECT_EQ(h.loads, 2);
}

TEST(TtlCacheTest, LeastRecentlyUsedIsEvicted) {
  Harness h;
  auto cache = make(h, 2);
  int out;
  h.get(cache, "a", 1, &out);
  h.get(cache, "b", 2, &out);
  h.run_all();
  h.get(cache, "a", 1, &out);  // a is now the most recent
  h.get(cache, "c", 3, &out);
  h.run_all();
  EXPECT_EQ(cache.size(), 2u);
  int loads = h.loads;
  h.get(cache, "a", 1, &out);
  EXPECT_EQ(h.loads, loads) << "a stayed";
  h.get(cache, "b", 2, &out);
  h.run_all();
  EXPECT_EQ(h.loads, loads + 1) << "b was evicted";
}

TEST(TtlCacheTest, EraseByTag) {
  Harness h;
  auto cache = make(h, 100, milliseconds(1000), true,
                    [](const int& v) { return std::vector<CacheTag>{{0, v % 2}}; });
  int out;
  for (auto [key, value] : std::vector<std::pair<std::string, int>>{{"a", 1}, {"b", 2}, {"c", 3}}) {
    h.get(cache, key, value, &out);
  }
  h.run_all();
  cache.erase_tag({0, 1});  // odd values: a and c
  EXPECT_EQ(cache.size(), 1u);
  int loads = h.loads;
  h.get(cache, "b", 2, &out);
  EXPECT_EQ(h.loads, loads);
  h.get(cache, "a", 1, &out);
  h.run_all();
  EXPECT_EQ(h.loads, loads + 1);
}

TEST(TtlCacheTest, InvalidationDuringLoadIsNotOverwritten) {
  Harness h;
  auto cache = make(h);
  int before, after;
  h.get(cache, "token", 1, &before);  // load started before the kill
  cache.erase("token");
  h.get(cache, "token", 2, &after);  // asked after the kill: must not join the old load
  EXPECT_EQ(h.queued.size(), 2u);
  h.run_all();
  EXPECT_EQ(before, 1);
  EXPECT_EQ(after, 2);
  int again;
  h.get(cache, "token", 3, &again);
  EXPECT_EQ(again, 2) << "only the load started after the kill is kept";
}

// A `fresh` lookup drops one token: the loads of other tokens stay shared and are kept.
TEST(TtlCacheTest, ErasingOneKeyLeavesTheOtherKeysLoadsAlone) {
  Harness h;
  auto cache = make(h);
  int first, joined, erased_before, erased_after;
  h.get(cache, "other", 1, &first);
  h.get(cache, "erased", 5, &erased_before);
  cache.erase("erased");
  h.get(cache, "other", 2, &joined);  // joins the load of "other"
  h.get(cache, "erased", 6, &erased_after);
  EXPECT_EQ(h.queued.size(), 3u) << "one load of \"other\", two of \"erased\"";
  h.run_all();
  EXPECT_EQ(first, 1);
  EXPECT_EQ(joined, 1);
  EXPECT_EQ(erased_before, 5);
  EXPECT_EQ(erased_after, 6);
  int again, erased_again;
  h.get(cache, "other", 3, &again);
  h.get(cache, "erased", 7, &erased_again);
  EXPECT_EQ(again, 1) << "the answer of \"other\" was kept";
  EXPECT_EQ(erased_again, 6) << "only the load of \"erased\" started after the erase is kept";
  EXPECT_TRUE(h.queued.empty());
}

// Without coalescing (every miss loads on its own), an erase still keeps the answer of a
// load that started before it out of the cache.
TEST(TtlCacheTest, AnEraseReachesLoadsThatAreNotShared) {
  Harness h;
  auto cache = make(h, 100, milliseconds(1000), /*coalesce=*/false);
  int before;
  h.get(cache, "token", 1, &before);
  cache.erase("token");
  h.run_all();
  EXPECT_EQ(before, 1);
  int again;
  h.get(cache, "token", 2, &again);
  h.run_all();
  EXPECT_EQ(again, 2) << "the answer loaded before the erase was not kept";
}

TEST(TtlCacheTest, RefusedRunAnswersWithError) {
  Harness h;
  h.accept = false;
  auto cache = make(h);
  int out;
  h.get(cache, "k", 1, &out);
  EXPECT_EQ(out, -1);
  EXPECT_EQ(h.loads, 0);
}

TEST(TtlCacheTest, CountsHitsAndMisses) {
  Harness h;
  Cache cache("counted", 100, [](const int&) { return milliseconds(1000); }, true, h.clock.function());
  uint64_t hits = auth_test::cache_hits("counted"), misses = auth_test::cache_misses("counted");
  int out;
  h.get(cache, "k", 1, &out);
  h.run_all();
  h.get(cache, "k", 1, &out);
  EXPECT_EQ(auth_test::cache_hits("counted") - hits, 1u);
  EXPECT_EQ(auth_test::cache_misses("counted") - misses, 1u);
}

// get_many: what is cached is answered inline, what is loading is joined, and the rest is
// one load of just those keys (a batch of viewers is one query).
struct ManyHarness : Harness {
  std::vector<std::vector<std::string>> batches;  // the keys of each load, as asked
  bool fail = false;
  bool short_answer = false;

  void get_many(Cache& cache, const std::vector<std::string>& keys, std::vector<int>* outs,
                std::optional<milliseconds> max_age = std::nullopt) {
    outs->assign(keys.size(), -2);
    std::vector<Cache::Done> dones;
    for (size_t i = 0; i < keys.size(); ++i) {
      dones.push_back([outs, i](const Cache::Result& result) { (*outs)[i] = result.value ? *result.value : -1; });
    }
    cache.get_many(
        keys,
        [this](const std::vector<std::string>& missing) {
          batches.push_back(missing);
          if (fail) throw std::runtime_error("database down");
          std::vector<int> values;
          for (const auto& key : missing) values.push_back(static_cast<int>(key.size()));
          if (short_answer) values.pop_back();
          return values;
        },
        run(), std::move(dones), max_age);
  }
};

TEST(TtlCacheTest, ManyKeysLoadTogetherExceptThoseCachedOrLoading) {
  ManyHarness h;
  auto cache = make(h);
  int cached;
  h.get(cache, "cached", 42, &cached);
  h.run_all();
  int loading;
  h.get(cache, "loading", 7, &loading);  // queued, not run yet
  std::vector<int> outs;
  h.get_many(cache, {"a", "cached", "bb", "loading", "a", "ccc"}, &outs);
  EXPECT_EQ(outs[1], 42) << "a hit is answered inline";
  EXPECT_EQ(outs[0], -2);
  h.run_all();
  ASSERT_EQ(h.batches.size(), 1u);
  EXPECT_EQ(h.batches[0], (std::vector<std::string>{"a", "bb", "ccc"})) << "one load, only what was missing";
  EXPECT_EQ(outs, (std::vector<int>{1, 42, 2, 7, 1, 3})) << "each key answered in its place, 'loading' by its own load";
  EXPECT_EQ(h.loads, 2) << "the two single loads";
  std::vector<int> again;
  h.get_many(cache, {"bb", "ccc"}, &again);
  EXPECT_EQ(again, (std::vector<int>{2, 3})) << "the batch's answers were cached";
  EXPECT_TRUE(h.queued.empty());
}

TEST(TtlCacheTest, ManyKeysWithZeroMaxAgeLoadAnewInOneBatch) {
  ManyHarness h;
  auto cache = make(h);
  std::vector<int> outs;
  h.get_many(cache, {"a", "bb"}, &outs);
  h.run_all();
  h.get_many(cache, {"a", "bb", "a"}, &outs, milliseconds(0));
  h.run_all();
  ASSERT_EQ(h.batches.size(), 2u);
  EXPECT_EQ(h.batches[1], (std::vector<std::string>{"a", "bb", "a"}));
  EXPECT_EQ(outs, (std::vector<int>{1, 2, 1}));
}

TEST(TtlCacheTest, AFailedOrMalformedBatchAnswersEveryKeyWithAnErrorAndCachesNothing) {
  ManyHarness h;
  auto cache = make(h);
  std::vector<int> outs;
  h.fail = true;
  h.get_many(cache, {"a", "bb"}, &outs);
  h.run_all();
  EXPECT_EQ(outs, (std::vector<int>{-1, -1}));
  h.fail = false;
  h.short_answer = true;
  h.get_many(cache, {"a", "bb"}, &outs);
  h.run_all();
  EXPECT_EQ(outs, (std::vector<int>{-1, -1})) << "a load answering fewer keys than asked is an error, not a misplaced answer";
  EXPECT_EQ(cache.size(), 0u);
  h.short_answer = false;
  h.accept = false;
  h.get_many(cache, {"a", "bb"}, &outs);
  EXPECT_EQ(outs, (std::vector<int>{-1, -1})) << "a refused run answers every key at once";
}

}  // namespace
}  // namespace sluice
