#pragma once
// Which Mastodon release's database the auth tier talks to, detected once from the
// catalogue (information_schema), and the query text that follows from it. Operators
// run every release from 4.2 to main against the same Sluice; what differs between
// them, and what Sluice does about it, is docs/mastodon-releases.md.
#include <pqxx/pqxx>
#include <set>
#include <string>

namespace sluice {

struct MastodonSchema {
  // "4.2", "4.3", "4.4", "4.5", "4.6", "main" — the newest release whose markers match.
  std::string release = "unknown";
  // Columns the token query reads when they exist; each has a neutral stand-in
  // otherwise (no language filter, no permissions) so no release fails the query.
  bool has_chosen_languages = false;
  bool has_role_permissions = false;  // users.role_id and user_roles.permissions
  // CVE-2025-62175: disabled users and suspended accounts are refused. Both columns
  // exist in every supported release; Sluice applies both checks on all of them.
  bool has_disabled = false;
  bool has_suspended_at = false;
  // Token lookups can run: the token query reads both columns whatever the catalogue
  // shows, and fails where they are not there (or not visible to this database user).
  bool serves_token_lookups() const { return has_disabled && has_suspended_at; }
  // 4.5 and later keep feed-access settings; earlier servers never read them, so
  // Sluice does not query them either and every feed is open.
  bool has_feed_access_settings = false;

  // From a set of "table.column" names (lower case) as information_schema lists them.
  static MastodonSchema from_columns(const std::set<std::string>& columns);
  // Reads the catalogue of the connection's database (the current search_path).
  static MastodonSchema detect(pqxx::connection& connection);

  // One line for the log: release and every adaptation.
  std::string describe() const;
};

// The token lookup (docs/protocol.md#token-lookup) for this schema.
std::string token_query_sql(const MastodonSchema& schema);

}  // namespace sluice
