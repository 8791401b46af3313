// Release detection from catalogue columns, and the token query it leads to
// (docs/mastodon-releases.md). The fixtures in sql/schema/ are exercised end to end
// by the per-release ctest runs.
#include <gtest/gtest.h>

#include <chrono>

#include "auth/auth_queries.hpp"
#include "auth/mastodon_schema.hpp"
#include "tests/auth/auth_test_support.hpp"

namespace sluice {
namespace {

std::set<std::string> base_columns() {
  return {"accounts.id",       "accounts.suspended_at", "users.id",      "users.account_id", "users.disabled",
          "users.chosen_languages", "users.role_id",    "user_roles.id", "user_roles.permissions", "settings.var",
          "settings.value"};
}

std::set<std::string> with(std::set<std::string> columns, std::initializer_list<const char*> more) {
  for (const char* column : more) columns.insert(column);
  return columns;
}

// Mastodon upgraded in place: its migrations run while the auth tier serves. The next
// connection sees the new release (here 4.3 to 4.4, which brings the feed-access
// settings); before, the first detection stood until a restart and the settings were
// never read. Tables of their own (a search_path schema), whatever release the suite runs.
TEST(MastodonSchemaDetection, AnUpgradeInPlaceIsSeenOnTheNextConnection) {
  auto& pg = auth_test::shared_pg();
  pg.exec(
      "DROP SCHEMA IF EXISTS in_place CASCADE; CREATE SCHEMA in_place;"
      "CREATE TABLE in_place.accounts (id bigint, suspended_at timestamp);"
      "CREATE TABLE in_place.users (id bigint, account_id bigint, disabled boolean, chosen_languages varchar[],"
      " role_id bigint);"
      "CREATE TABLE in_place.user_roles (id bigint, permissions bigint);"
      "CREATE TABLE in_place.settings (id bigint, var varchar, value text, thing_type varchar);");
  PgConfig config = auth_test::pg_config(2);
  config.params.emplace_back("options", "-csearch_path=in_place");
  AuthQueries* queries = nullptr;
  PgPool pool(config, [&](pqxx::connection& connection) { queries->detect_schema(connection); });
  AuthQueries detected(pool);
  queries = &detected;
  detected.ping();
  EXPECT_EQ(detected.schema().release, "4.3");
  EXPECT_FALSE(detected.schema().has_feed_access_settings);

  pg.exec("ALTER TABLE in_place.settings DROP COLUMN thing_type");  // what 4.4's migrations dropped
  EXPECT_EQ(pool.close_idle(std::chrono::milliseconds(0)), 1);     // the next statement opens a connection
  detected.ping();
  EXPECT_EQ(detected.schema().release, "4.4");
  EXPECT_TRUE(detected.schema().has_feed_access_settings);
  pg.exec("DROP SCHEMA in_place CASCADE");
}

TEST(MastodonSchema, ReleasesAreToldApartByTheirMarkers) {
  EXPECT_EQ(MastodonSchema::from_columns(with(base_columns(), {"devices.access_token_id", "settings.thing_type"})).release,
            "4.2");
  EXPECT_EQ(MastodonSchema::from_columns(with(base_columns(), {"settings.thing_type"})).release, "4.3");
  EXPECT_EQ(MastodonSchema::from_columns(base_columns()).release, "4.4");
  EXPECT_EQ(MastodonSchema::from_columns(with(base_columns(), {"accounts.id_scheme"})).release, "4.5");
  EXPECT_EQ(MastodonSchema::from_columns(with(base_columns(), {"accounts.id_scheme", "user_roles.require_2fa"})).release,
            "4.6");
  EXPECT_EQ(MastodonSchema::from_columns(
                with(base_columns(), {"accounts.id_scheme", "user_roles.require_2fa", "accounts.requested_deletion_at"}))
                .release,
            "main");
  EXPECT_EQ(MastodonSchema::from_columns({}).release, "unknown");
}

TEST(MastodonSchema, FeedAccessSettingsAreReadFrom44On) {
  EXPECT_FALSE(MastodonSchema::from_columns(with(base_columns(), {"devices.access_token_id"})).has_feed_access_settings);
  EXPECT_FALSE(MastodonSchema::from_columns(with(base_columns(), {"settings.thing_type"})).has_feed_access_settings);
  EXPECT_TRUE(MastodonSchema::from_columns(base_columns()).has_feed_access_settings);
  EXPECT_TRUE(MastodonSchema::from_columns(with(base_columns(), {"accounts.id_scheme"})).has_feed_access_settings);
}

TEST(MastodonSchema, TokenQueryKeepsTheSecurityChecksAndReplacesMissingColumns) {
  auto full = token_query_sql(MastodonSchema::from_columns(base_columns()));
  EXPECT_NE(full.find("AND users.disabled IS FALSE"), std::string::npos);
  EXPECT_NE(full.find("AND accounts.suspended_at IS NULL"), std::string::npos);
  EXPECT_NE(full.find("COALESCE(user_roles.permissions, 0) AS permissions"), std::string::npos);
  EXPECT_NE(full.find("users.chosen_languages"), std::string::npos);
  EXPECT_EQ(full.find("devices"), std::string::npos);

  auto bare = MastodonSchema::from_columns({"accounts.id", "users.id", "users.account_id", "users.disabled",
                                            "accounts.suspended_at"});
  auto sql = token_query_sql(bare);
  EXPECT_NE(sql.find("NULL::character varying[] AS chosen_languages"), std::string::npos);
  EXPECT_NE(sql.find("0 AS permissions"), std::string::npos);
  EXPECT_EQ(sql.find("user_roles"), std::string::npos);
  EXPECT_NE(sql.find("AND users.disabled IS FALSE"), std::string::npos);
  EXPECT_NE(bare.describe().find("no user_roles permissions"), std::string::npos);
}

// A catalogue that does not show users.disabled or accounts.suspended_at (no supported
// release lacks them; a database user without the privilege does not see them): the
// checks stay in the query, which then fails as the reference's does, instead of
// admitting disabled users and suspended accounts.
TEST(MastodonSchema, TheSecurityChecksAreNeverLeftOut) {
  auto hidden = MastodonSchema::from_columns({"accounts.id", "users.id", "users.account_id"});
  auto sql = token_query_sql(hidden);
  EXPECT_NE(sql.find("AND users.disabled IS FALSE"), std::string::npos);
  EXPECT_NE(sql.find("AND accounts.suspended_at IS NULL"), std::string::npos);
  EXPECT_NE(hidden.describe().find("ERROR no users.disabled visible"), std::string::npos) << hidden.describe();
  EXPECT_NE(hidden.describe().find("ERROR no accounts.suspended_at visible"), std::string::npos) << hidden.describe();
}

}  // namespace
}  // namespace sluice
