// End to end, run against the all-in-one binary and the three split tiers: real
// clients, real Redis, real PostgreSQL.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class Foundation : public ::testing::TestWithParam<Deployment> {};

TEST_P(Foundation, SseUserStreamDeliversEventsWithExactFraming) {
  Cluster cluster(GetParam());
  auto alice = create_account(suite_postgres(), "sse_alice");
  SseClient client(cluster.port(), "/api/v1/streaming/user", bearer(alice.token));
  ASSERT_EQ(client.response().status, 200) << cluster.logs();
  EXPECT_EQ(client.response().header("content-type"), "text/event-stream");
  EXPECT_EQ(client.response().header("cache-control"), "private, no-store");
  EXPECT_EQ(client.response().header("transfer-encoding"), "chunked");
  EXPECT_EQ(client.response().header("access-control-allow-origin"), "*");
  EXPECT_EQ(client.response().header("x-request-id").size(), 36u);
  EXPECT_EQ(client.next_block(), ":)");

  std::string channel = "timeline:" + std::to_string(alice.account_id);
  ASSERT_TRUE(wait_numsub(channel, 1)) << cluster.logs();
  suite_redis().publish(channel, R"({"event":"delete","payload":"109"})");
  suite_redis().publish(channel,
                        R"({"event":"update","payload":{"id":"110","content":"\u003cp\u003ecaf\u00e9 \u0026amp; tea\u003c/p\u003e","language":"en","account":{"id":"910002","username":"a","acct":"a"},"mentions":[],"media_attachments":[],"filtered":[]},"queued_at":1})");
  EXPECT_EQ(client.next_block(), "event: delete\ndata: 109");
  EXPECT_EQ(client.next_block(),
            "event: update\ndata: {\"id\":\"110\",\"content\":\"<p>café &amp; tea</p>\",\"language\":\"en\","
            "\"account\":{\"id\":\"910002\",\"username\":\"a\",\"acct\":\"a\"},\"mentions\":[],"
            "\"media_attachments\":[],\"filtered\":[]}");
  // JSON.stringify of a parsed object lists array-index keys first, ascending
  // (docs/protocol.md#payload-serialisation); elsewhere the original order stays.
  suite_redis().publish(channel, R"({"event":"announcement","payload":{"b":1,"10":2,"x":{"z":0,"1":1},"2":3}})");
  EXPECT_EQ(client.next_block(), R"(event: announcement
data: {"2":3,"10":2,"b":1,"x":{"1":1,"z":0}})");
}

TEST_P(Foundation, WebSocketUserStreamDeliversEventsWithExactFraming) {
  Cluster cluster(GetParam());
  auto bob = create_account(suite_postgres(), "ws_bob");
  WsClient client(cluster.port(), "/api/v1/streaming?stream=user&access_token=" + bob.token);
  ASSERT_TRUE(client.upgraded()) << client.response().head << cluster.logs();
  EXPECT_EQ(client.response().header("x-request-id").size(), 36u);
  EXPECT_EQ(client.response().header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  std::string channel = "timeline:" + std::to_string(bob.account_id);
  // The user stream holds two channels, subscribed one after the other: wait for both.
  ASSERT_TRUE(wait_numsub(channel, 1)) << cluster.logs();
  ASSERT_TRUE(wait_numsub(channel + ":notifications", 1)) << cluster.logs();
  suite_redis().publish(channel, R"({"event":"delete","payload":"109"})");
  suite_redis().publish(channel + ":notifications", R"({"event":"notifications_merged","payload":"1"})");
  EXPECT_EQ(client.next_text(), R"({"stream":["user"],"event":"delete","payload":"109"})");
  EXPECT_EQ(client.next_text(), R"({"stream":["user"],"event":"notifications_merged","payload":"1"})");
  suite_redis().publish(channel, R"({"event":"announcement","payload":{"id":"1","text":"a/b"}})");
  EXPECT_EQ(client.next_text(),
            R"({"stream":["user"],"event":"announcement","payload":"{\"id\":\"1\",\"text\":\"a/b\"}"})");
}

TEST_P(Foundation, PublicStreamAppendsEmptyFiltered) {
  Cluster cluster(GetParam());
  auto carol = create_account(suite_postgres(), "public_carol");
  SseClient client(cluster.port(), "/api/v1/streaming/public", bearer(carol.token));
  ASSERT_EQ(client.response().status, 200);
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  suite_redis().publish(
      "timeline:public",
      R"({"event":"update","payload":{"id":"1","language":"en","account":{"id":"5","username":"x","acct":"x"},"mentions":[],"media_attachments":[]}})");
  auto event = client.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->event, "update");
  EXPECT_EQ(event->data,
            R"({"id":"1","language":"en","account":{"id":"5","username":"x","acct":"x"},"mentions":[],"media_attachments":[],"filtered":[]})");
}

TEST_P(Foundation, MissingAndRevokedTokensAreRefused) {
  Cluster cluster(GetParam());
  auto missing = http_request(cluster.port(), "GET", "/api/v1/streaming/public");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.header("content-type"), "application/json");
  EXPECT_EQ(missing.body, R"({"error":"Missing access token"})");

  auto dave = create_account(suite_postgres(), "revoked_dave");
  suite_postgres().exec("UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " +
                        std::to_string(dave.token_id));
  auto revoked = http_request(cluster.port(), "GET", "/api/v1/streaming/public", bearer(dave.token));
  EXPECT_EQ(revoked.status, 401);
  EXPECT_EQ(revoked.body, R"({"error":"Invalid access token"})");

  WsClient no_token(cluster.port(), "/api/v1/streaming?stream=public");
  EXPECT_EQ(no_token.response().status, 401);
  EXPECT_EQ(no_token.response().header("x-error-message"), "Missing access token");
  EXPECT_EQ(no_token.response().header("content-length"), "0");
  EXPECT_EQ(no_token.response().header("connection"), "close");
  WsClient bad_token(cluster.port(), "/api/v1/streaming?stream=public&access_token=" + dave.token);
  EXPECT_EQ(bad_token.response().status, 401);
  EXPECT_EQ(bad_token.response().header("x-error-message"), "Invalid access token");
}

TEST_P(Foundation, TwoClientsShareOneRedisSubscriptionReleasedWhenBothLeave) {
  Cluster cluster(GetParam());
  auto erin = create_account(suite_postgres(), "share_erin");
  std::string channel = "timeline:hashtag:sharedtag";
  {
    SseClient first(cluster.port(), "/api/v1/streaming/hashtag?tag=SharedTag", bearer(erin.token));
    ASSERT_EQ(first.response().status, 200);
    ASSERT_TRUE(wait_numsub(channel, 1)) << cluster.logs();
    // NUMSUB stays 1 however often the one connection subscribes: count the commands.
    const long long subscribes = suite_redis().command_calls("subscribe");
    WsClient second(cluster.port(), "/api/v1/streaming?stream=hashtag&tag=sharedtag&access_token=" + erin.token);
    ASSERT_TRUE(second.upgraded());
    // A second SUBSCRIBE (the bug this pins) would have been sent before the marker's.
    ws_settle(second);
    EXPECT_EQ(suite_redis().command_calls("subscribe") - subscribes, 1) << "only the marker's SUBSCRIBE";
    EXPECT_EQ(suite_redis().numsub(channel), 1);
    suite_redis().publish(channel, R"({"event":"delete","payload":"7"})");
    auto sse = first.next_event();
    ASSERT_TRUE(sse);
    EXPECT_EQ(sse->data, "7");
    EXPECT_EQ(second.next_text(), R"({"stream":["hashtag","sharedtag"],"event":"delete","payload":"7"})");
  }
  EXPECT_TRUE(wait_numsub(channel, 0)) << cluster.logs();
}

TEST_P(Foundation, EventsFlowAgainAfterRedisRestarts) {
  Cluster cluster(GetParam());
  auto fay = create_account(suite_postgres(), "restart_fay");
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(fay.token));
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=user&access_token=" + fay.token);
  ASSERT_EQ(sse.response().status, 200);
  ASSERT_TRUE(ws.upgraded());
  std::string channel = "timeline:" + std::to_string(fay.account_id);
  ASSERT_TRUE(wait_numsub(channel, 1));

  suite_redis().stop();
  suite_redis().start();
  ASSERT_TRUE(wait_numsub(channel, 1, 20s)) << cluster.logs();
  suite_redis().publish(channel, R"({"event":"delete","payload":"after-restart"})");
  auto event = sse.next_event(10s);
  ASSERT_TRUE(event) << cluster.logs();
  EXPECT_EQ(event->data, "after-restart");
  EXPECT_EQ(ws.next_text(10s), R"({"stream":["user"],"event":"delete","payload":"after-restart"})");
}

// Each thread Sluice starts says what it is (common/thread_name.hpp), for `top -H`,
// profiles and debuggers; gRPC names its own.
TEST_P(Foundation, ThreadsCarryTheNameOfTheirRole) {
  Cluster cluster(GetParam());
  std::set<std::string> names;
  const std::string tasks = "/proc/" + std::to_string(cluster.gateway_pid()) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.insert(name);
  }
  std::vector<std::string> expected = {"gw-worker-0", "broker-set", "broker-link"};
  if (GetParam() == Deployment::all_in_one) expected = {"gw-worker-0", "broker-redis", "auth-db-0", "auth-probe"};
  for (const auto& name : expected) EXPECT_TRUE(names.count(name)) << name << " is not among the threads' names";
}

TEST_P(Foundation, StopsCleanlyOnSigterm) {
  Cluster cluster(GetParam());
  auto gus = create_account(suite_postgres(), "sigterm_gus");
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(gus.token));
  ASSERT_EQ(sse.response().status, 200);
  int status = -1;
  cluster.stop_gateway(SIGTERM, &status);
  ASSERT_NE(status, -1) << "did not exit within 15 s";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(sse.wait_end(5s));
  if (GetParam() == Deployment::split) {
    for (const char* tier : {"broker", "auth"}) {
      int tier_status = cluster.stop_tier(tier, SIGTERM);
      ASSERT_NE(tier_status, -1) << tier << " did not exit within 15 s";
      EXPECT_TRUE(WIFEXITED(tier_status)) << tier;
      EXPECT_EQ(WEXITSTATUS(tier_status), 0) << tier;
    }
  }
}

// docs/drain.md: on SIGTERM the gateway fails readiness at once, stops accepting, and
// tells every client to go away within SLUICE_DRAIN_SECONDS: SSE responses end cleanly,
// WebSockets close with 1001. The spread over the window is measured in docs/drain.md.
TEST_P(Foundation, SigtermDrainsClientsWithReadinessDown) {
  int admin_port = free_port();
  Cluster cluster(GetParam(), {{"SLUICE_DRAIN_SECONDS", "2"},
                               {"SLUICE_GATEWAY_ADMIN_LISTEN", "127.0.0.1:" + std::to_string(admin_port)}});
  auto kim = create_account(suite_postgres(), "drain_kim");
  std::vector<std::unique_ptr<SseClient>> sse;
  std::vector<std::unique_ptr<WsClient>> ws;
  for (int i = 0; i < 6; ++i) {
    sse.push_back(std::make_unique<SseClient>(cluster.port(), "/api/v1/streaming/user", bearer(kim.token)));
    ASSERT_EQ(sse.back()->response().status, 200);
    ws.push_back(std::make_unique<WsClient>(cluster.port(), "/api/v1/streaming?stream=user&access_token=" + kim.token));
    ASSERT_TRUE(ws.back()->upgraded());
  }
  ASSERT_TRUE(eventually([&] { return http_request(admin_port, "GET", "/readyz").status == 200; })) << cluster.logs();
  cluster.signal_gateway(SIGTERM);
  // Readiness goes first, while clients are still being drained.
  EXPECT_TRUE(eventually([&] { return http_request(admin_port, "GET", "/readyz").status == 503; }, 5s));
  for (auto& client : sse) EXPECT_TRUE(client->wait_end(10s));
  for (auto& client : ws) {
    auto close = client->next_frame(10s);
    ASSERT_TRUE(close);
    EXPECT_EQ(close->opcode, 8);
    EXPECT_EQ(close->close_code, 1001);
  }
  int status = cluster.wait_gateway(15s);
  ASSERT_NE(status, -1) << "did not exit";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(cluster.logs().find("\"msg\":\"draining\""), std::string::npos) << cluster.logs();
}

TEST_P(Foundation, GatewaysKeepTheirClientsWhileTheBrokerRestarts) {
  if (GetParam() != Deployment::split) GTEST_SKIP() << "the all-in-one has no separate broker";
  Cluster cluster(GetParam());
  auto ivy = create_account(suite_postgres(), "broker_restart_ivy");
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(ivy.token));
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=user&access_token=" + ivy.token);
  std::string channel = "timeline:" + std::to_string(ivy.account_id);
  ASSERT_TRUE(wait_numsub(channel, 1));
  cluster.restart_broker();
  // The gateway re-sends its channel set to the new broker, which subscribes again.
  ASSERT_TRUE(wait_numsub(channel, 1, 20s)) << cluster.logs();
  suite_redis().publish(channel, R"({"event":"delete","payload":"after-broker-restart"})");
  auto event = sse.next_event(10s);
  ASSERT_TRUE(event) << cluster.logs();
  EXPECT_EQ(event->data, "after-broker-restart");
  EXPECT_EQ(ws.next_text(10s), R"({"stream":["user"],"event":"delete","payload":"after-broker-restart"})");
}

INSTANTIATE_TEST_SUITE_P(Deployments, Foundation, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
