// sluice-bench: turns the coordinator's measurements and the workers' final
// reports into the result JSON and the human table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/options.hpp"
#include "bench/plan.hpp"
#include "bench/proc_stats.hpp"

namespace sluice_bench {

struct Report {
  const Options* options = nullptr;
  const Plan* plan = nullptr;
  std::string run_id;
  std::string aborted;
  uint32_t workers = 0;
  uint32_t workers_lost = 0;
  size_t message_bytes = 0;

  double connect_seconds = 0;
  double settle_seconds = 0;
  double subscribe_seconds = 0;
  double publish_seconds = 0;
  double drain_seconds = 0;
  double linger_seconds = 0;
  double total_seconds = 0;

  uint64_t published_events = 0;
  uint64_t publishes = 0;
  uint64_t publishes_without_subscriber = 0;
  // --redis-outages: publishes in flight when the connection failed (outcome
  // unknown) and those due while Redis did not answer (never sent).
  uint64_t publishes_unknown = 0;
  uint64_t publishes_unsent = 0;
  struct RedisOutage {
    uint64_t lost_realtime_ns = 0;      // a command failed
    uint64_t answered_realtime_ns = 0;  // the last reconnect that worked (0: none yet)
    uint64_t resumed_realtime_ns = 0;   // the end of the event by which every channel's subscriber had one again
  };
  std::vector<RedisOutage> redis_outages;
  uint64_t first_publish_realtime_ns = 0;
  uint32_t subscribed_channels = 0;
  std::vector<std::string> unsubscribed_examples;

  ProcTotals proc_before_connect;
  ProcTotals proc_after_connect_cpu;  // right after the last connection
  ProcTotals proc_after_connect;      // after the settle delay (memory figure)
  ProcTotals proc_before_publish;
  ProcTotals proc_after_run;

  std::vector<nlohmann::json> finals;  // one per worker
  double loadavg_start = -1;  // 1-minute load average of the host, from /proc/loadavg
  double loadavg_end = -1;

  nlohmann::json to_json() const;
};

// --redis-outages: an outage began and is not over (since Redis answered again, not
// every channel's subscriber has had an event). Only then is an event Redis answered with no
// receiver excused; before the first outage and after each, it must arrive.
inline bool outage_in_progress(const std::vector<Report::RedisOutage>& outages) {
  return !outages.empty() && outages.back().resumed_realtime_ns == 0;
}

void print_table(const nlohmann::json& result);
double read_loadavg();  // -1 when unavailable

}  // namespace sluice_bench
