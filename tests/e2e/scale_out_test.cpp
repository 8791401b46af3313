// docs/scale-out.md: a gateway balances its auth lookups over several replicas and
// retries one that fails on another, so a replica that cannot answer is invisible to
// clients.
#include <gtest/gtest.h>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

TEST(AuthReplicas, LookupsSurviveAReplicaWithoutPostgreSQL) {
  Cluster cluster(Deployment::split, {}, ClusterOptions{/*second_auth_without_database=*/true});
  // Fresh accounts, so nothing is cached anywhere: round_robin gives about half of the
  // first attempts to the replica without PostgreSQL, and the retry goes to the other.
  for (int i = 0; i < 12; ++i) {
    auto account = create_account(suite_postgres(), "replica_" + std::to_string(i));
    SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(account.token));
    EXPECT_EQ(sse.response().status, 200) << i;
  }
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=user",
              bearer(create_account(suite_postgres(), "replica_ws").token));
  EXPECT_TRUE(ws.upgraded());
  // The replica without a database was asked (else this test would prove nothing).
  EXPECT_NE(cluster.full_logs().find("database query failed"), std::string::npos) << cluster.logs();
}

}  // namespace
}  // namespace sluice::testing
