// sluice-bench: a log-bucketed histogram of non-negative integer samples
// (nanoseconds here). Bucket i >= 1 covers [g^(i-1), g^i) with g = 1.02, so the
// value reported for a percentile (the bucket's geometric middle, clamped to the
// observed min/max) is within about 1% of the true sample. Histograms from
// several processes merge exactly (bucket counts add up), and serialise
// sparsely to JSON for the worker -> coordinator pipe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace sluice_bench {

class LogHistogram {
 public:
  static constexpr double kGrowth = 1.02;

  void record(uint64_t value);
  void merge(const LogHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  // q in [0, 1]; 1 returns the exact maximum, 0 the exact minimum.
  uint64_t percentile(double q) const;

  nlohmann::json to_json() const;
  static LogHistogram from_json(const nlohmann::json& j);

 private:
  static size_t bucket_of(uint64_t value);
  static double bucket_middle(size_t bucket);

  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  double sum_ = 0.0;
};

}  // namespace sluice_bench
