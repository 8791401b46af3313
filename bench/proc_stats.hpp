// sluice-bench: resident memory and CPU time of server processes, from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace sluice_bench {

struct ProcSample {
  uint64_t rss_bytes = 0;  // VmRSS
  double cpu_seconds = 0;  // utime + stime, all threads
};

std::optional<ProcSample> sample_process(pid_t pid);

// Sum over pids; processes that vanished are counted in `missing`.
struct ProcTotals {
  uint64_t rss_bytes = 0;
  double cpu_seconds = 0;
  unsigned missing = 0;
};
ProcTotals sample_processes(const std::vector<pid_t>& pids);

}  // namespace sluice_bench
