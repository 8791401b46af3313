#pragma once
// Prometheus text exposition (format 0.0.4). Hot-path updates are relaxed atomics;
// the mutex is taken only when a series is created and at scrape time.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t by) { value_.fetch_add(by, std::memory_order_relaxed); }
  void inc() { add(1); }
  void dec() { add(-1); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Registry {
 public:
  // Returns the series, creating family and series on first use. References stay
  // valid for the registry's lifetime. The help and type of a family are fixed by
  // its first registration.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // A family rendered by a callback at scrape time (for values read elsewhere,
  // e.g. process figures). The callback appends sample lines.
  void collector(std::function<void(std::string&)> render);

  std::string render() const;

  // The process-wide registry every tier reports into.
  static Registry& global();

 private:
  struct Series {
    std::string labels_text;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
  };
  struct Family {
    std::string name, help, type;
    std::deque<Series> series;
  };
  Series& series(const std::string& name, const std::string& help, const char* type, const Labels& labels);

  mutable std::mutex mutex_;
  std::deque<Family> families_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

// Adds process_* metrics (CPU, memory, fds, start time) as prom-client names them.
void register_process_metrics(Registry& registry);

// Appends one "# HELP/# TYPE" header and a sample line: for collectors.
void append_sample(std::string& out, const std::string& name, const std::string& help, const std::string& type,
                   double value);

}  // namespace sluice::metrics
