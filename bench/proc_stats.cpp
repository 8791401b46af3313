#include "bench/proc_stats.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace sluice_bench {

std::optional<ProcSample> sample_process(pid_t pid) {
  ProcSample s;
  const std::string base = "/proc/" + std::to_string(pid);
  {
    std::ifstream status(base + "/status");
    if (!status) return std::nullopt;
    std::string line;
    bool found = false;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        std::istringstream in(line.substr(6));
        uint64_t kb = 0;
        in >> kb;
        s.rss_bytes = kb * 1024;
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;  // zombie or kernel thread
  }
  {
    std::ifstream stat(base + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    size_t close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream in(text.substr(close + 2));
    std::string field;
    // Fields after the name start at field 3 (state); utime is 14, stime 15.
    unsigned long long utime = 0, stime = 0;
    for (int index = 3; index <= 15 && in >> field; ++index) {
      if (index == 14) utime = std::stoull(field);
      if (index == 15) stime = std::stoull(field);
    }
    static const long ticks = sysconf(_SC_CLK_TCK);
    s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
  }
  return s;
}

ProcTotals sample_processes(const std::vector<pid_t>& pids) {
  ProcTotals t;
  for (pid_t pid : pids) {
    if (auto s = sample_process(pid)) {
      t.rss_bytes += s->rss_bytes;
      t.cpu_seconds += s->cpu_seconds;
    } else {
      ++t.missing;
    }
  }
  return t;
}

}  // namespace sluice_bench
