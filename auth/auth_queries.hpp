#pragma once
// The contract's SQL (§3.2, §7.2 step 3, §7.5, §8.2) as prepared statements, with the
// answers shaped as the gateway's gRPC replies. Every statement actually sent is
// counted in sluice_auth_queries_total{query=…}.
#include <cstdint>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>

#include "auth/pg_pool.hpp"
#include "common/metrics.hpp"
#include "sluice/v1/auth.pb.h"

namespace sluice {

// `oauth_access_tokens.scopes` is NULL: the reference throws while splitting it, which
// the client sees as 500 (contract §3.2).
struct NullScopesError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class AuthQueries {
 public:
  explicit AuthQueries(PgPool& pool);

  // Declares the prepared statements on a new connection (PgPool's prepare hook).
  static void prepare(pqxx::connection& connection);

  // §3.2. found=false when no row matches (unknown, revoked, disabled user, suspended
  // account, application-only token). Throws NullScopesError or DatabaseError.
  v1::TokenReply token(const std::string& token);
  // §8.2 query 2. A list id PostgreSQL cannot read as a bigint is "not owned", as the
  // reference's failing query makes it. Throws DatabaseError.
  bool list_owned(const std::string& list_id, int64_t account_id);
  // §7.5: access unless the setting's value is exactly "--- disabled\n".
  v1::FeedAccessReply feed_access(v1::FeedKind kind);
  // §7.2 step 3 (a), (b) as whole sets for one viewer (age_ms left 0).
  v1::RelationsReply relations(int64_t account_id);
  // §7.2 step 3 (c) grouped per §7.4.
  v1::FiltersReply filters(int64_t account_id);
  // Readiness probe: SELECT 1 (not counted as an auth query).
  void ping();

 private:
  metrics::Counter& counter(const char* query);

  PgPool& pool_;
  metrics::Counter& token_queries_;
  metrics::Counter& list_queries_;
  metrics::Counter& settings_queries_;
  metrics::Counter& relations_queries_;
  metrics::Counter& filters_queries_;
};

// Splits like JavaScript's String.prototype.split(' '): "a  b" → {"a", "", "b"}, "" → {""}.
std::vector<std::string> split_scopes(const std::string& scopes);

}  // namespace sluice
