#include "bench/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace sluice_bench {

namespace {
const double kLogGrowth = std::log(LogHistogram::kGrowth);
}

size_t LogHistogram::bucket_of(uint64_t value) {
  if (value == 0) return 0;
  return 1 + static_cast<size_t>(std::floor(std::log(static_cast<double>(value)) / kLogGrowth));
}

double LogHistogram::bucket_middle(size_t bucket) {
  if (bucket == 0) return 0.0;
  // [g^(b-1), g^b): geometric middle g^(b-0.5).
  return std::exp((static_cast<double>(bucket) - 0.5) * kLogGrowth);
}

void LogHistogram::record(uint64_t value) {
  size_t b = bucket_of(value);
  if (b >= buckets_.size()) buckets_.resize(b + 1, 0);
  ++buckets_[b];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<double>(value);
}

void LogHistogram::merge(const LogHistogram& other) {
  if (other.count_ == 0) return;
  if (other.buckets_.size() > buckets_.size()) buckets_.resize(other.buckets_.size(), 0);
  for (size_t i = 0; i < other.buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

uint64_t LogHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1.0) return max_;
  if (q <= 0.0) return min_;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      double v = bucket_middle(i);
      v = std::clamp(v, static_cast<double>(min_), static_cast<double>(max_));
      return static_cast<uint64_t>(std::llround(v));
    }
  }
  return max_;
}

nlohmann::json LogHistogram::to_json() const {
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (buckets_[i] != 0) buckets.push_back({i, buckets_[i]});
  }
  return {{"count", count_}, {"min", min()}, {"max", max_}, {"sum", sum_}, {"buckets", std::move(buckets)}};
}

LogHistogram LogHistogram::from_json(const nlohmann::json& j) {
  LogHistogram h;
  h.count_ = j.at("count").get<uint64_t>();
  h.min_ = h.count_ ? j.at("min").get<uint64_t>() : UINT64_MAX;
  h.max_ = j.at("max").get<uint64_t>();
  h.sum_ = j.at("sum").get<double>();
  for (const auto& pair : j.at("buckets")) {
    size_t index = pair.at(0).get<size_t>();
    if (index > 100000) continue;  // corrupt input; never legitimately this large
    if (index >= h.buckets_.size()) h.buckets_.resize(index + 1, 0);
    h.buckets_[index] += pair.at(1).get<uint64_t>();
  }
  return h;
}

}  // namespace sluice_bench
