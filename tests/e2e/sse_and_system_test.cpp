// docs/protocol.md#server-sent-events, docs/protocol.md#system-channels and
// docs/protocol.md#redis as clients see them.
#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include <pqxx/pqxx>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class SseAndSystem : public ::testing::TestWithParam<Deployment> {};

TEST_P(SseAndSystem, ThumpHeartbeats) {
  Cluster cluster(GetParam(), {{"SLUICE_SSE_HEARTBEAT_SECONDS", "1"}});
  auto viewer = create_account(suite_postgres(), "thump");
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(sse.next_block(), ":)");
  EXPECT_EQ(sse.next_block(3s), ":thump");
  EXPECT_EQ(sse.next_block(3s), ":thump");
}

TEST_P(SseAndSystem, KillOnTheTokenChannelEndsTheStreamAndRefusesTheToken) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "sse_kill");
  // Warm every cache with the token first.
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  ASSERT_TRUE(wait_numsub("timeline:" + std::to_string(viewer.account_id), 1));
  suite_postgres().exec("UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " +
                        std::to_string(viewer.token_id));
  suite_redis().publish("timeline:access_token:" + std::to_string(viewer.token_id), R"({"event":"kill"})");
  EXPECT_TRUE(sse.wait_end(5s));
  auto again = http_request(cluster.port(), "GET", "/api/v1/streaming/user", bearer(viewer.token));
  EXPECT_EQ(again.status, 401);
  EXPECT_EQ(again.body, R"({"error":"Invalid access token"})");
}

// docs/protocol.md#server-sent-events: a response ended by `kill` leaves a keep-alive
// connection open for the next request, as Node's server does; clients such as Node's
// http.Agent with keepAlive reuse that socket and must not get "socket hang up".
TEST_P(SseAndSystem, KeepAliveConnectionServesTheNextRequestAfterKill) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "sse_reuse");
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  EXPECT_EQ(sse.response().header("connection"), "keep-alive");
  ASSERT_TRUE(wait_numsub("timeline:" + std::to_string(viewer.account_id), 1));
  suite_postgres().exec("UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " +
                        std::to_string(viewer.token_id));
  suite_redis().publish("timeline:access_token:" + std::to_string(viewer.token_id), R"({"event":"kill"})");
  ASSERT_TRUE(sse.wait_end(5s));
  auto health = sse.request_again("/api/v1/streaming/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "OK");
  auto refused = sse.request_again("/api/v1/streaming/user", bearer(viewer.token));
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.body, R"({"error":"Invalid access token"})");
  // The stream released everything it held when it ended.
  EXPECT_TRUE(wait_numsub("timeline:" + std::to_string(viewer.account_id), 0));
}

// A request that asked to close gets a response that says so, and the connection is
// closed once the response has ended.
TEST_P(SseAndSystem, ConnectionCloseRequestIsClosedAfterKill) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "sse_close");
  auto headers = bearer(viewer.token);
  headers["Connection"] = "close";
  SseClient sse(cluster.port(), "/api/v1/streaming/user", headers);
  ASSERT_EQ(sse.response().status, 200);
  EXPECT_EQ(sse.response().header("connection"), "close");
  ASSERT_TRUE(wait_numsub("timeline:" + std::to_string(viewer.account_id), 1));
  suite_redis().publish("timeline:access_token:" + std::to_string(viewer.token_id), R"({"event":"kill"})");
  ASSERT_TRUE(sse.wait_end(5s));
  EXPECT_EQ(sse.request_again("/api/v1/streaming/health").status, 0);
}

TEST_P(SseAndSystem, KillOnTheAccountChannelEndsEveryConnectionOfTheAccount) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "account_kill");
  auto bystander = create_account(suite_postgres(), "bystander");
  SseClient sse(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=public&access_token=" + viewer.token);
  SseClient other(cluster.port(), "/api/v1/streaming/public", bearer(bystander.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  suite_postgres().exec("UPDATE users SET disabled = true WHERE id = " + std::to_string(viewer.user_id));
  suite_redis().publish("timeline:system:" + std::to_string(viewer.account_id), R"({"event":"kill"})");
  EXPECT_TRUE(sse.wait_end(5s));
  auto close = ws.next_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code, 1005);
  EXPECT_EQ(http_request(cluster.port(), "GET", "/api/v1/streaming/public", bearer(viewer.token)).status, 401);
  // Others are untouched.
  suite_redis().publish("timeline:public", R"({"event":"delete","payload":"5"})");
  auto event = other.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->data, "5");
}

// docs/protocol.md#system-channels: a kill that comes while a request is still being
// admitted (the token answered, the list check still out) ends that connection once it
// is registered; before, the kill found no connection and the stream stayed open.
TEST_P(SseAndSystem, AKillDuringTheListCheckEndsTheStreamOnceItIsAdmitted) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "kill_admitting");
  std::string list_id = suite_postgres().query_value("INSERT INTO lists (account_id, title) VALUES (" +
                                                     std::to_string(viewer.account_id) + ", 'l') RETURNING id");
  // A stream of the same token already open: its end says the gateway has seen the kill.
  SseClient witness(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(witness.response().status, 200);
  // The list check waits in PostgreSQL while this transaction holds the table.
  pqxx::connection locker(suite_postgres().conninfo());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE lists IN ACCESS EXCLUSIVE MODE");
  std::optional<SseClient> admitted;
  std::thread opener([&] {
    admitted.emplace(cluster.port(), "/api/v1/streaming/list?list=" + list_id, bearer(viewer.token));
  });
  auto waiting_on_lists = [&] {
    return suite_postgres().query_value(
               "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
               "WHERE c.relname = 'lists' AND NOT l.granted") != "0";
  };
  const bool held = eventually(waiting_on_lists, 10s);
  if (held) {
    suite_redis().publish("timeline:access_token:" + std::to_string(viewer.token_id), R"({"event":"kill"})");
  }
  const bool kill_seen = held && witness.wait_end(5s);
  lock.abort();
  opener.join();
  ASSERT_TRUE(held) << "the list check never waited on the lock";
  ASSERT_TRUE(kill_seen) << "the kill did not end the stream that was already open";
  ASSERT_TRUE(admitted);
  ASSERT_EQ(admitted->response().status, 200) << "the list check failed instead of waiting";
  EXPECT_TRUE(admitted->wait_end(5s)) << "the stream admitted after the kill stayed open";
}

TEST_P(SseAndSystem, MessagesWithoutEventOrPayloadAreNotForwarded) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "no_payload");
  std::string channel = "timeline:" + std::to_string(viewer.account_id);
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub(channel, 1));
  for (const char* junk : {R"({"event":"filters_changed"})", "not json", "[1,2]", "\"str\"", "42",
                           R"({"payload":"x"})", R"({"event":"","payload":"x"})", R"({"event":"update","payload":""})",
                           R"({"event":"update","payload":0})", R"({"event":"update","payload":null})",
                           R"({"event":"update","payload":false})"}) {
    suite_redis().publish(channel, junk);
  }
  suite_redis().publish(channel, R"({"event":"delete","payload":"the-real-one"})");
  auto event = sse.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->event, "delete");
  EXPECT_EQ(event->data, "the-real-one");
}

TEST_P(SseAndSystem, ClientLeavingReleasesTheChannel) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "leaver");
  std::string channel = "timeline:direct:" + std::to_string(viewer.account_id);
  {
    SseClient sse(cluster.port(), "/api/v1/streaming/direct", bearer(viewer.token));
    ASSERT_TRUE(wait_numsub(channel, 1));
  }
  EXPECT_TRUE(wait_numsub(channel, 0));
}

TEST_P(SseAndSystem, NamespacePrefixesChannelsAndKeys) {
  Cluster cluster(GetParam(), {{"REDIS_NAMESPACE", "ns"}});
  auto viewer = create_account(suite_postgres(), "namespaced");
  std::string channel = "timeline:" + std::to_string(viewer.account_id);
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub("ns:" + channel, 1)) << cluster.logs();
  // The gateway's subscriptions reach its broker in order: once a later one is in Redis,
  // a SUBSCRIBE of the unprefixed name would be too.
  SseClient later(cluster.port(), "/api/v1/streaming/hashtag?tag=nslater", bearer(viewer.token));
  ASSERT_EQ(later.response().status, 200);
  ASSERT_TRUE(wait_numsub("ns:timeline:hashtag:nslater", 1)) << cluster.logs();
  EXPECT_EQ(suite_redis().numsub(channel), 0);
  EXPECT_EQ(suite_redis().command({"GET", "ns:subscribed:" + channel}), "1");
  suite_redis().publish("ns:" + channel, R"({"event":"delete","payload":"ns"})");
  auto event = sse.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->data, "ns");
  suite_redis().publish("ns:timeline:access_token:" + std::to_string(viewer.token_id), R"({"event":"kill"})");
  EXPECT_TRUE(sse.wait_end(5s));
}

INSTANTIATE_TEST_SUITE_P(Deployments, SseAndSystem, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
