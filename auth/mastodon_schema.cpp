#include "auth/mastodon_schema.hpp"

namespace sluice {
namespace {

bool has(const std::set<std::string>& columns, const char* name) { return columns.count(name) > 0; }

// The tables whose columns decide the release or the query text.
constexpr const char* kCatalogueSql = R"(SELECT table_name || '.' || column_name
FROM information_schema.columns
WHERE table_schema = ANY (current_schemas(false))
  AND table_name IN ('accounts', 'users', 'user_roles', 'settings', 'devices'))";

}  // namespace

MastodonSchema MastodonSchema::from_columns(const std::set<std::string>& columns) {
  MastodonSchema schema;
  schema.has_chosen_languages = has(columns, "users.chosen_languages");
  schema.has_role_permissions = has(columns, "users.role_id") && has(columns, "user_roles.permissions");
  schema.has_disabled = has(columns, "users.disabled");
  schema.has_suspended_at = has(columns, "accounts.suspended_at");
  // Markers, newest first (docs/mastodon-releases.md#what-sluice-detects-at-start): each release added or
  // dropped one of these columns.
  if (has(columns, "accounts.requested_deletion_at")) {
    schema.release = "main";
  } else if (has(columns, "user_roles.require_2fa")) {
    schema.release = "4.6";
  } else if (has(columns, "accounts.id_scheme")) {
    schema.release = "4.5";
  } else if (has(columns, "devices.access_token_id")) {
    schema.release = "4.2";
  } else if (has(columns, "settings.thing_type")) {
    schema.release = "4.3";
  } else if (has(columns, "accounts.id")) {
    schema.release = "4.4";
  }
  // Only a positively old schema skips the settings: 4.4 has no feed-access rows, so
  // querying them there answers "open", exactly what skipping would.
  bool before_4_4 = schema.release == "4.2" || schema.release == "4.3";
  schema.has_feed_access_settings = has(columns, "settings.var") && !before_4_4;
  return schema;
}

MastodonSchema MastodonSchema::detect(pqxx::connection& connection) {
  pqxx::nontransaction tx(connection);
  std::set<std::string> columns;
  for (const auto& row : tx.exec(kCatalogueSql)) columns.insert(row[0].as<std::string>());
  return from_columns(columns);
}

std::string MastodonSchema::describe() const {
  std::string out = "Mastodon schema " + release;
  out += has_feed_access_settings ? "; feed-access settings read per subscribe" : "; no feed-access settings (all feeds open)";
  if (!has_chosen_languages) out += "; no users.chosen_languages (no language filter)";
  if (!has_role_permissions) out += "; no user_roles permissions (0)";
  if (!has_disabled) out += "; ERROR no users.disabled visible: every token lookup will fail";
  if (!has_suspended_at) out += "; ERROR no accounts.suspended_at visible: every token lookup will fail";
  return out;
}

std::string token_query_sql(const MastodonSchema& schema) {
  // docs/protocol.md#token-lookup; the disabled/suspended checks (CVE-2025-62175) are
  // applied on every release — all from 4.2 on have the columns.
  std::string sql = "SELECT oauth_access_tokens.id, oauth_access_tokens.resource_owner_id, users.account_id,\n";
  sql += schema.has_chosen_languages ? "       users.chosen_languages, "
                                     : "       NULL::character varying[] AS chosen_languages, ";
  sql += "oauth_access_tokens.scopes,\n";
  sql += schema.has_role_permissions ? "       COALESCE(user_roles.permissions, 0) AS permissions\n"
                                     : "       0 AS permissions\n";
  sql += "FROM oauth_access_tokens\nINNER JOIN users ON oauth_access_tokens.resource_owner_id = users.id\n";
  sql += "INNER JOIN accounts ON accounts.id = users.account_id\n";
  if (schema.has_role_permissions) sql += "LEFT OUTER JOIN user_roles ON user_roles.id = users.role_id\n";
  sql += "WHERE oauth_access_tokens.token = $1\n  AND oauth_access_tokens.revoked_at IS NULL\n";
  // Never left out: where the columns are not visible (a schema without them, or a
  // database user without the privilege) the query fails, as the reference's does, and
  // no disabled user or suspended account is let in unchecked.
  sql += "  AND users.disabled IS FALSE\n  AND accounts.suspended_at IS NULL\n";
  sql += "LIMIT 1";
  return sql;
}

}  // namespace sluice
