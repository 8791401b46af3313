// Release detection from catalogue columns, and the token query it leads to
// (docs/mastodon-releases.md). The fixtures in sql/schema/ are exercised end to end
// by the per-release ctest runs.
#include <gtest/gtest.h>

#include "auth/mastodon_schema.hpp"

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
