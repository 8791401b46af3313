#include "common/log.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>


namespace sluice::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_write_mutex;
std::string g_component = "sluice";

const char* label(Level level) {
  switch (level) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    case Level::fatal: return "fatal";
  }
  return "info";
}

}  // namespace

void configure(std::string_view component, std::string_view log_level, std::string_view node_env) {
  g_component = std::string(component);
  static constexpr std::pair<std::string_view, Level> kLevels[] = {
      {"fatal", Level::fatal}, {"error", Level::error}, {"warn", Level::warn},
      {"info", Level::info},   {"debug", Level::debug}, {"trace", Level::trace}};
  for (auto [name, level] : kLevels) {
    if (name == log_level) {
      set_level(level);
      return;
    }
  }
  // Unset or not one of pino's levels: the environment's default, as the reference
  // does without a word (docs/protocol.md#other-variables). A `LOG_LEVEL` that worked
  // for the reference (`verbose` from 4.2's npmlog, `INFO`) must not stop the service.
  set_level(node_env == "development" || node_env.empty() ? Level::debug : Level::info);
  if (!log_level.empty()) {
    warn("Unknown LOG_LEVEL, using the default",
         {{"LOG_LEVEL", std::string(log_level)}, {"level", label(static_cast<Level>(g_level.load()))}});
  }
}

void set_level(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void write(Level level, std::string_view message, const nlohmann::json& fields) {
  if (!enabled(level)) return;
  nlohmann::json line = nlohmann::json::object();
  line["level"] = label(level);
  line["time"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  line["pid"] = static_cast<int>(::getpid());
  line["name"] = g_component;
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  line["msg"] = std::string(message);
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  std::lock_guard lock(g_write_mutex);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace sluice::log
