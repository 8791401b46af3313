// DATABASE_URL comes from admins' hands (and a tenants file's per-instance variables):
// any bytes must give a configuration or a ConfigError, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "auth/pg_config.hpp"
#include "common/config_error.hpp"
#include "common/env.hpp"

// Certificate files a URL names are read (and copied for the life of the process): the
// harness runs in an empty directory and keeps the query free of '/' and '%', so that a
// file name can only be relative, and names nothing there.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/sluice-fuzz-database-url-XXXXXX";
  if (!::mkdtemp(dir) || ::chdir(dir) != 0) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string url(reinterpret_cast<const char*>(data), size);
  if (url.find('\0') != std::string::npos) return 0;  // an environment variable holds none
  if (auto query = url.find('?'); query != std::string::npos && url.find_first_of("/%", query) != std::string::npos) {
    return 0;
  }
  try {
    sluice::PgConfig config = sluice::pg_config_from_env(sluice::Env::from_map({{"DATABASE_URL", url}}));
    config.conninfo();
  } catch (const sluice::ConfigError&) {
  }
  return 0;
}
