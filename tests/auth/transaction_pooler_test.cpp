// The auth tier behind PgBouncer in transaction mode (README.md#mastodons-variables,
// `DB_POOL`), as Mastodon's documentation sets PgBouncer up: each statement runs on
// whichever server connection is free. The reference sends every query as an unnamed
// statement, which such a pooler passes through; so must Sluice.
#include <gtest/gtest.h>

#include <future>
#include <pqxx/pqxx>

#include "tests/auth/auth_test_support.hpp"

namespace sluice {
namespace {

using auth_test::AuthHarness;
using auth_test::eventually;
using auth_test::shared_pg;

int64_t pool_connections() { return metrics::Registry::global().gauge("pg_pool_total_connections", "").value(); }

TEST(TransactionPooler, LookupsOnSeveralPoolConnectionsShareOneServerConnection) {
  testing::PgBouncer bouncer(shared_pg(), /*server_connections=*/1);
  AuthConfig config = auth_test::test_config(4);
  for (auto& [key, value] : config.pg.params) {
    if (key == "port") value = std::to_string(bouncer.port());
  }
  AuthHarness harness(std::move(config));
  auto first = testing::create_account(shared_pg(), auth_test::unique_name("pooled"));
  auto second = testing::create_account(shared_pg(), auth_test::unique_name("pooled"));

  // The first lookup opens a pool connection and waits on a lock, holding PgBouncer's
  // one server connection; the second must open a pool connection of its own, whose
  // statements then run on that same server connection.
  const int64_t connections_before = pool_connections();
  pqxx::connection direct(shared_pg().conninfo());
  pqxx::work lock(direct);
  lock.exec("LOCK TABLE oauth_access_tokens IN ACCESS EXCLUSIVE MODE");
  auto first_reply = std::async(std::launch::async, [&] { return harness.lookup_ok(first.token); });
  ASSERT_TRUE(eventually([] {
    return shared_pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   "AND query LIKE '%oauth_access_tokens%'") == "1";
  })) << "the first lookup never waited on the lock";
  auto second_reply = std::async(std::launch::async, [&] { return harness.lookup_ok(second.token); });
  ASSERT_TRUE(eventually([&] { return pool_connections() >= connections_before + 2; }))
      << "the second lookup did not open a pool connection of its own";
  lock.commit();

  EXPECT_EQ(first_reply.get().account_id(), first.account_id);
  EXPECT_EQ(second_reply.get().account_id(), second.account_id);

  // Every other query too, now on whichever pool connection is free.
  std::string list = shared_pg().query_value("INSERT INTO lists (account_id, title) VALUES (" +
                                             std::to_string(second.account_id) + ", 'pooled') RETURNING id");
  bool owned = false;
  ASSERT_TRUE(harness.owned(list, second.account_id, &owned).ok());
  EXPECT_TRUE(owned);
  grpc::Status feed_status;
  harness.feed_access(v1::FEED_KIND_LIVE, &feed_status);
  EXPECT_TRUE(feed_status.ok()) << feed_status.error_message();
  shared_pg().exec("INSERT INTO blocks (account_id, target_account_id) VALUES (" + std::to_string(second.account_id) +
                   ", " + std::to_string(first.account_id) + ")");
  auto relations = harness.relations(second.account_id);
  ASSERT_EQ(relations.blocking_size(), 1);
  EXPECT_EQ(relations.blocking(0), first.account_id);
  EXPECT_EQ(harness.filters(second.account_id).filters_size(), 0);
}

}  // namespace
}  // namespace sluice
