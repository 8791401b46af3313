#pragma once
// PostgreSQL settings resolved from the environment exactly as Mastodon's streaming
// server resolves them (docs/protocol.md#postgresql-configuration), expressed as a libpq connection string.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/env.hpp"

namespace sluice {

struct PgConfig {
  // libpq keyword/value pairs, in the order they are written to the connection string.
  std::vector<std::pair<std::string, std::string>> params;
  // DB_POOL: the most connections the pool opens.
  int pool_size = 10;

  // "key='value' …" with quotes and backslashes escaped, ready for libpq.
  std::string conninfo() const;
  // The same without the password, for logs.
  std::string describe() const;
  // The value of one keyword, if set.
  std::optional<std::string> param(std::string_view keyword) const;
};

// docs/protocol.md#postgresql-configuration: DATABASE_URL (DB_PASS fills a missing password, every other DB_* is
// ignored), otherwise NODE_ENV defaults with DB_USER/DB_PASS/DB_NAME/DB_HOST/DB_PORT
// and DB_SSLMODE. Throws ConfigError with the reference's messages.
PgConfig pg_config_from_env(const Env& env);

}  // namespace sluice
