#pragma once
// The reference's SQL (docs/protocol.md#database-queries), with the answers shaped as the
// gateway's gRPC replies. Every statement actually sent is counted in
// sluice_auth_queries_total{query=…}.
//
// Each statement goes as the reference sends it: parameters bound to an unnamed
// statement, nothing named kept on the server. A pooler in transaction mode (PgBouncer,
// as Mastodon's own docs set it up) hands each statement to whichever server
// connection is free, where a named statement prepared on another one does not exist
// (README.md#mastodons-variables, `DB_POOL`).
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <vector>

#include "auth/mastodon_schema.hpp"
#include "auth/pg_pool.hpp"
#include "common/metrics.hpp"
#include "sluice/v1/auth.pb.h"

namespace sluice {

// `oauth_access_tokens.scopes` is NULL: the reference throws while splitting it, which
// the client sees as 500 (docs/protocol.md#token-lookup).
struct NullScopesError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A token PostgreSQL would refuse as text (it holds a NUL byte): the reference's query
// fails, which the client sees as 500 (docs/protocol.md#token-lookup). Not a database
// failure: asking another replica would fail the same way.
struct UnqueryableTokenError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class AuthQueries {
 public:
  explicit AuthQueries(PgPool& pool);

  // PgPool's hook for a new connection: detects the Mastodon release from the
  // catalogue (which picks the token query), and logs it when it changed. Every new
  // connection looks again: Mastodon is upgraded in place, its migrations run while the
  // auth tier serves (4.3 to 4.4 brings the feed-access settings), and a schema that
  // cannot serve token lookups yet (before the migrations, or privileges granted later)
  // must be seen to change.
  void detect_schema(pqxx::connection& connection);
  // What the latest detection found ("unknown" before any).
  MastodonSchema schema() const;

  // docs/protocol.md#token-lookup. found=false when no row matches (unknown, revoked, disabled user, suspended
  // account, application-only token). Throws NullScopesError or DatabaseError.
  v1::TokenReply token(const std::string& token);
  // docs/protocol.md#list-ownership. A list id PostgreSQL cannot read as a bigint is "not owned", as the
  // reference's failing query makes it. Throws DatabaseError.
  bool list_owned(const std::string& list_id, int64_t account_id);
  // docs/protocol.md#feed-access-settings: access unless the setting's value is exactly "--- disabled\n".
  v1::FeedAccessReply feed_access(v1::FeedKind kind);
  // docs/protocol.md#relations (a), (b) as whole sets, for several viewers in one query:
  // the replies are in the order of `account_ids` (age_ms left 0).
  std::vector<v1::RelationsReply> relations(const std::vector<int64_t>& account_ids);
  // docs/protocol.md#keyword-filter-query (c) grouped per docs/protocol.md#filter-objects.
  v1::FiltersReply filters(int64_t account_id);
  // Readiness probe: SELECT 1 (not counted as an auth query).
  // Throws when PostgreSQL does not answer, or when its schema cannot serve token lookups.
  void ping();

 private:
  metrics::Counter& counter(const char* query);
  // Runs `statement` on a pooled connection outside a transaction (the reference's pool
  // runs single statements so); a statement error it lets out becomes DatabaseError.
  template <class Statement>
  auto run(Statement&& statement);

  std::string token_sql() const;  // a copy: a later detection may replace it

  PgPool& pool_;
  mutable std::mutex schema_mutex_;
  std::optional<MastodonSchema> schema_;
  std::string token_sql_;  // the detected release's token query
  std::chrono::steady_clock::time_point detected_at_{};
  metrics::Counter& token_queries_;
  metrics::Counter& list_queries_;
  metrics::Counter& settings_queries_;
  metrics::Counter& relations_queries_;
  metrics::Counter& filters_queries_;
};

// Splits like JavaScript's String.prototype.split(' '): "a  b" → {"a", "", "b"}, "" → {""}.
std::vector<std::string> split_scopes(const std::string& scopes);

}  // namespace sluice
