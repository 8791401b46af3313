#pragma once
// Structured JSON log lines on stdout (one object per line, pino-like levels,
// docs/protocol.md#logging). Tokens are never logged: callers pass redacted values.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace sluice::log {

enum class Level { trace = 10, debug = 20, info = 30, warn = 40, error = 50, fatal = 60 };

// Reads LOG_LEVEL (fatal,error,warn,info,debug,trace; default debug when
// NODE_ENV is development, else info). Any other value gets the default and a warning.
void configure(std::string_view component, std::string_view log_level, std::string_view node_env);
void set_level(Level level);
bool enabled(Level level);

void write(Level level, std::string_view message, const nlohmann::json& fields = nullptr);

inline void trace(std::string_view m, const nlohmann::json& f = nullptr) { write(Level::trace, m, f); }
inline void debug(std::string_view m, const nlohmann::json& f = nullptr) { write(Level::debug, m, f); }
inline void info(std::string_view m, const nlohmann::json& f = nullptr) { write(Level::info, m, f); }
inline void warn(std::string_view m, const nlohmann::json& f = nullptr) { write(Level::warn, m, f); }
inline void error(std::string_view m, const nlohmann::json& f = nullptr) { write(Level::error, m, f); }

// `fields` with the instance a line concerns (docs/hosting.md#observability): a
// "tenant" field for an instance of a tenants file, nothing for the environment's one.
inline nlohmann::json for_tenant(std::string_view tenant, nlohmann::json fields = nlohmann::json::object()) {
  if (!tenant.empty()) fields["tenant"] = tenant;
  return fields;
}

}  // namespace sluice::log
