// Mastodon 4.2 to main (docs/mastodon-releases.md): the suite's PostgreSQL holds the
// tables of the release SLUICE_TEST_SCHEMA names (sql/schema/); ctest runs this and
// the token, list, relations, filters and settings suites once per release.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class Releases : public ::testing::TestWithParam<Deployment> {};

bool reads_feed_access_settings(const std::string& release) { return release != "4.2" && release != "4.3"; }

std::string status_update(const std::string& id, const std::string& author_id, const std::string& acct) {
  return R"({"event":"update","payload":{"id":")" + id + R"(","language":"en","content":"","account":{"id":")" +
         author_id + R"(","username":"u","acct":")" + acct + R"("},"mentions":[],"media_attachments":[]}})";
}

TEST_P(Releases, TheDetectedReleaseIsLogged) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "release_log");
  // The schema is detected on the auth tier's first PostgreSQL connection.
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  std::string expected = "Mastodon schema " + PostgresServer::schema_release();
  EXPECT_TRUE(eventually([&] { return cluster.logs().find(expected) != std::string::npos; })) << cluster.logs();
}

// CVE-2025-62175: Sluice refuses disabled users and suspended accounts on every
// release, including those whose own server did not yet.
TEST_P(Releases, DisabledUsersAndSuspendedAccountsAreRefusedOnEveryRelease) {
  Cluster cluster(GetParam());
  auto disabled = create_account(suite_postgres(), "release_disabled");
  auto suspended = create_account(suite_postgres(), "release_suspended");
  auto fine = create_account(suite_postgres(), "release_fine");
  suite_postgres().exec("UPDATE users SET disabled = true WHERE id = " + std::to_string(disabled.user_id));
  suite_postgres().exec("UPDATE accounts SET suspended_at = now() WHERE id = " + std::to_string(suspended.account_id));
  for (const auto* account : {&disabled, &suspended}) {
    auto refused = http_request(cluster.port(), "GET", "/api/v1/streaming/user", bearer(account->token));
    EXPECT_EQ(refused.status, 401);
    EXPECT_EQ(refused.body, R"({"error":"Invalid access token"})");
  }
  SseClient ok(cluster.port(), "/api/v1/streaming/user", bearer(fine.token));
  EXPECT_EQ(ok.response().status, 200);
}

// 4.4 and later keep feed-access settings (only 4.5 writes them); 4.2 and 4.3 servers
// never read any, so a stray row there changes nothing.
TEST_P(Releases, FeedAccessSettingsAreReadWhereTheReleaseHasThem) {
  Cluster cluster(GetParam());
  suite_postgres().exec(
      "DELETE FROM settings; INSERT INTO settings (var, value) VALUES ('local_live_feed_access', E'--- disabled\\n')");
  auto viewer = create_account(suite_postgres(), "release_feeds");
  SseClient sse(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  suite_redis().publish("timeline:public", status_update("30", "900010", "u"));
  suite_redis().publish("timeline:public", status_update("31", "900011", "u@remote.example"));
  auto first = sse.next_event();
  ASSERT_TRUE(first);
  std::string first_id = nlohmann::json::parse(first->data)["id"];
  EXPECT_EQ(first_id, reads_feed_access_settings(PostgresServer::schema_release()) ? "31" : "30");
  suite_postgres().exec("DELETE FROM settings");
}

INSTANTIATE_TEST_SUITE_P(Deployments, Releases, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
