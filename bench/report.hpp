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

// --redis-outages: which events Redis answered with no receiver are excused. From a
// loss on, an event on a channel is, until that channel's subscriber has had an event
// since Redis last answered again (a broker still re-subscribing it); before any loss,
// and on a channel heard again, every event must arrive. Per channel: a channel nobody
// listens to must not keep the others excused.
class OutageExcuses {
 public:
  explicit OutageExcuses(size_t channels) : heard_(channels, false) {}
  // A command failed, or a reconnect worked: every channel must be heard anew.
  void lost() {
    begun_ = true;
    forget_heard();
  }
  void answered() { forget_heard(); }
  // Redis gave one of `channel`'s events to a subscriber.
  void heard(size_t channel) {
    if (!begun_ || heard_[channel]) return;
    heard_[channel] = true;
    ++heard_count_;
  }
  bool excuses_unheard(size_t channel) const { return begun_ && !heard_[channel]; }
  // Every channel's subscriber has had an event since the last reconnect.
  bool every_channel_heard() const { return begun_ && heard_count_ == heard_.size(); }

 private:
  void forget_heard() {
    heard_.assign(heard_.size(), false);
    heard_count_ = 0;
  }
  std::vector<bool> heard_;
  size_t heard_count_ = 0;
  bool begun_ = false;
};

// Outages not over by the end of the run: Redis never answered again, or some channel's
// subscriber never had an event since it did. Their channels' events were excused to the
// end, so such a run is not verified (a subscription a broker never restored must fail
// it, not pass as excused).
inline size_t outages_unresolved(const std::vector<Report::RedisOutage>& outages) {
  size_t unresolved = 0;
  for (const auto& outage : outages) unresolved += outage.resumed_realtime_ns == 0 ? 1 : 0;
  return unresolved;
}

void print_table(const nlohmann::json& result);
double read_loadavg();  // -1 when unavailable

}  // namespace sluice_bench
