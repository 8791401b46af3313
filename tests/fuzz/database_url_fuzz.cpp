// DATABASE_URL comes from admins' hands (and a tenants file's per-instance variables):
// any bytes must give a configuration or a ConfigError, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "auth/pg_config.hpp"
#include "common/config_error.hpp"
#include "common/env.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string url(reinterpret_cast<const char*>(data), size);
  if (url.find('\0') != std::string::npos) return 0;  // an environment variable holds none
  try {
    sluice::PgConfig config = sluice::pg_config_from_env(sluice::Env::from_map({{"DATABASE_URL", url}}));
    config.conninfo();
  } catch (const sluice::ConfigError&) {
  }
  return 0;
}
