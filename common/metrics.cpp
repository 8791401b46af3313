#include "common/metrics.hpp"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::metrics {
namespace {

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string labels_text(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
  }
  out += '}';
  return out;
}

std::string format_double(double value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

}  // namespace

Registry::Series& Registry::series(const std::string& name, const std::string& help, const char* type,
                                   const Labels& labels) {
  std::string text = labels_text(labels);
  std::lock_guard lock(mutex_);
  Family* family = nullptr;
  for (auto& f : families_) {
    if (f.name == name) family = &f;
  }
  if (!family) {
    families_.push_back(Family{name, help, type, {}});
    family = &families_.back();
  }
  for (auto& s : family->series) {
    if (s.labels_text == text) return s;
  }
  family->series.push_back(Series{text, nullptr, nullptr});
  auto& s = family->series.back();
  if (family->type == "counter") s.counter = std::make_unique<Counter>();
  else s.gauge = std::make_unique<Gauge>();
  return s;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  return *series(name, help, "counter", labels).counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  return *series(name, help, "gauge", labels).gauge;
}

void Registry::collector(std::function<void(std::string&)> render) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(render));
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& render : collectors_) render(out);
  for (const auto& family : families_) {
    out += "# HELP " + family.name + " " + family.help + "\n";
    out += "# TYPE " + family.name + " " + family.type + "\n";
    for (const auto& s : family.series) {
      out += family.name + s.labels_text + " ";
      out += s.counter ? std::to_string(s.counter->value()) : std::to_string(s.gauge->value());
      out += '\n';
    }
    out += '\n';
  }
  return out;
}

Registry& Registry::global() {
  static Registry registry;
  return registry;
}

void append_sample(std::string& out, const std::string& name, const std::string& help, const std::string& type,
                   double value) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         format_double(value) + "\n\n";
}

void register_process_metrics(Registry& registry) {
  static const double start_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  registry.collector([](std::string& out) {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    double user = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
    double system = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    append_sample(out, "process_cpu_user_seconds_total", "Total user CPU time spent in seconds.", "counter", user);
    append_sample(out, "process_cpu_system_seconds_total", "Total system CPU time spent in seconds.", "counter",
                  system);
    append_sample(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter",
                  user + system);
    append_sample(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                  "gauge", static_cast<double>(static_cast<int64_t>(start_time)));
    long page = ::sysconf(_SC_PAGESIZE);
    std::ifstream statm("/proc/self/statm");
    double vsize_pages = 0, rss_pages = 0;
    statm >> vsize_pages >> rss_pages;
    append_sample(out, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
                  rss_pages * page);
    append_sample(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", vsize_pages * page);
    struct mallinfo2 info = ::mallinfo2();
    append_sample(out, "process_heap_bytes", "Process heap size in bytes.", "gauge",
                  static_cast<double>(info.arena + info.hblkhd));
    size_t fds = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++fds;
    }
    append_sample(out, "process_open_fds", "Number of open file descriptors.", "gauge", static_cast<double>(fds));
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    append_sample(out, "process_max_fds", "Maximum number of open file descriptors.", "gauge",
                  static_cast<double>(limit.rlim_cur));
  });
}

}  // namespace sluice::metrics
