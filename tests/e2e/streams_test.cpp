// docs/protocol.md#streams-and-channels: every stream of the table over SSE and WebSocket, its Redis
// channel, its `stream` echo, and one delivery per subscription.
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <set>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class Streams : public ::testing::TestWithParam<Deployment> {};

struct Row {
  std::string sse_target;   // path and query for SSE
  std::string ws_query;     // query for the WebSocket ?stream=
  std::string channel;      // Redis channel it must listen to
  std::string echo;         // WebSocket `stream` field
};

std::string with_token(const std::string& target, const std::string& token) {
  return target + (target.find('?') == std::string::npos ? "?" : "&") + "access_token=" + token;
}

TEST_P(Streams, EveryRowOfTheTableOverSseAndWebSocket) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "rows");
  std::string id = std::to_string(viewer.account_id);
  std::string list_id = suite_postgres().query_value("INSERT INTO lists (account_id, title) VALUES (" + id +
                                                     ", 'friends') RETURNING id");
  std::vector<Row> rows = {
      {"/api/v1/streaming/user", "stream=user", "timeline:" + id, R"(["user"])"},
      {"/api/v1/streaming/user/notification", "stream=user:notification", "timeline:" + id + ":notifications",
       R"(["user:notification"])"},
      {"/api/v1/streaming/public", "stream=public", "timeline:public", R"(["public"])"},
      {"/api/v1/streaming/public?only_media=true", "stream=public:media", "timeline:public:media",
       R"(["public:media"])"},
      {"/api/v1/streaming/public/local", "stream=public:local", "timeline:public:local", R"(["public:local"])"},
      {"/api/v1/streaming/public/local?only_media=1", "stream=public:local:media", "timeline:public:local:media",
       R"(["public:local:media"])"},
      {"/api/v1/streaming/public/remote", "stream=public:remote", "timeline:public:remote", R"(["public:remote"])"},
      {"/api/v1/streaming/public/remote?only_media=yes", "stream=public:remote:media", "timeline:public:remote:media",
       R"(["public:remote:media"])"},
      {"/api/v1/streaming/hashtag?tag=%23Caf%C3%A9", "stream=hashtag&tag=%23Caf%C3%A9", "timeline:hashtag:cafe",
       R"(["hashtag","#Café"])"},
      {"/api/v1/streaming/hashtag/local?tag=%EF%BC%B4%EF%BC%A5%EF%BC%B3%EF%BC%B4",
       "stream=hashtag:local&tag=%EF%BC%B4%EF%BC%A5%EF%BC%B3%EF%BC%B4", "timeline:hashtag:test:local",
       R"(["hashtag:local","ＴＥＳＴ"])"},
      {"/api/v1/streaming/list?list=" + list_id, "stream=list&list=" + list_id, "timeline:list:" + list_id,
       R"(["list",")" + list_id + R"("])"},
      {"/api/v1/streaming/direct", "stream=direct", "timeline:direct:" + id, R"(["direct"])"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.sse_target);
    // The last row's clients are gone and their channels given back (the `user` row
    // also held this row's notifications channel): otherwise the SUBSCRIBE awaited
    // below could be the old one, just before its UNSUBSCRIBE.
    for (const auto& other : rows) ASSERT_TRUE(wait_numsub(other.channel, 0)) << other.channel;
    // The WebSocket first: its subscription has no acknowledgement, so the Redis
    // SUBSCRIBE it causes is the sign that it is in place.
    WsClient ws(cluster.port(), with_token("/api/v1/streaming?" + row.ws_query, viewer.token));
    ASSERT_TRUE(ws.upgraded());
    ASSERT_TRUE(wait_numsub(row.channel, 1)) << cluster.logs();
    SseClient sse(cluster.port(), row.sse_target, bearer(viewer.token));
    ASSERT_EQ(sse.response().status, 200) << sse.response().body;
    suite_redis().publish(row.channel, R"({"event":"delete","payload":"42"})");
    auto event = sse.next_event();
    ASSERT_TRUE(event);
    EXPECT_EQ(event->event, "delete");
    EXPECT_EQ(event->data, "42");
    EXPECT_EQ(ws.next_text(), R"({"stream":)" + row.echo + R"(,"event":"delete","payload":"42"})");
    // heartbeat key for every stream channel (docs/protocol.md#subscription-heartbeat-keys)
    EXPECT_EQ(suite_redis().command({"GET", "subscribed:" + row.channel}), "1");
    long long ttl = suite_redis().integer({"TTL", "subscribed:" + row.channel});
    EXPECT_GT(ttl, 1000);
    EXPECT_LE(ttl, 1080);
  }
}

// docs/protocol.md#subscription-heartbeat-keys: the reference SETs `subscribed:<channel>`
// on every subscription, so a key that vanished (deleted, evicted, lost in a failover)
// is back as soon as anyone subscribes again, even while the channel stays held.
TEST_P(Streams, VanishedSubscribedKeyReturnsOnTheNextSubscription) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "key_back");
  std::string channel = "timeline:" + std::to_string(viewer.account_id);
  std::string key = "subscribed:" + channel;
  SseClient first(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(first.response().status, 200);
  ASSERT_TRUE(eventually([&] { return suite_redis().command({"GET", key}) == "1"; })) << cluster.logs();
  // NUMSUB cannot tell a re-made subscription: count the commands.
  const long long subscribes = suite_redis().command_calls("subscribe");
  const long long unsubscribes = suite_redis().command_calls("unsubscribe");
  auto deleted_at = std::chrono::steady_clock::now();
  ASSERT_EQ(suite_redis().integer({"DEL", key}), 1);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "SSE" : "WebSocket");
    std::unique_ptr<SseClient> sse;
    std::unique_ptr<WsClient> ws;
    if (round == 0) {
      deleted_at = std::chrono::steady_clock::now();
      sse = std::make_unique<SseClient>(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
      ASSERT_EQ(sse->response().status, 200);
    } else {
      ASSERT_EQ(suite_redis().integer({"DEL", key}), 1);
      deleted_at = std::chrono::steady_clock::now();
      ws = std::make_unique<WsClient>(cluster.port(), "/api/v1/streaming?stream=user&access_token=" + viewer.token);
      ASSERT_TRUE(ws->upgraded());
    }
    // The gateway and the broker each gather touches for a short window (250 ms and
    // 100 ms); the wait here is generous, the figure is printed.
    ASSERT_TRUE(eventually([&] { return suite_redis().command({"GET", key}) == "1"; }, 5s)) << cluster.logs();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - deleted_at);
    std::cout << "[subscribed key back after " << took.count() << " ms]" << std::endl;
    long long ttl = suite_redis().integer({"TTL", key});
    EXPECT_GE(ttl, 900);
    EXPECT_LE(ttl, 1080);
  }
  // The channel stayed held throughout: one Redis subscription, never re-made. The
  // second client's leaving is handled once the gateway counts it gone; a subscription
  // made after that reaches Redis after anything its leaving caused.
  ASSERT_TRUE(eventually([&] { return metric(cluster.port(), R"(connected_clients{type="websocket"})") == 0; }));
  const std::string marker = "timeline:hashtag:marker" + std::to_string(viewer.account_id);
  SseClient after(cluster.port(), "/api/v1/streaming/hashtag?tag=marker" + std::to_string(viewer.account_id),
                  bearer(viewer.token));
  ASSERT_EQ(after.response().status, 200);
  ASSERT_TRUE(wait_numsub(marker, 1));
  EXPECT_EQ(suite_redis().numsub(channel), 1);
  EXPECT_EQ(suite_redis().command_calls("subscribe"), subscribes + 1);
  EXPECT_EQ(suite_redis().command_calls("unsubscribe"), unsubscribes);
}

TEST_P(Streams, UserStreamWithoutNotificationScopeSkipsNotifications) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "statuses_only", "read:statuses");
  std::string id = std::to_string(viewer.account_id);
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  ASSERT_TRUE(wait_numsub("timeline:" + id, 1));
  // Marker: a later client's channel reaches Redis after anything this one asked for.
  auto later = create_account(suite_postgres(), "statuses_marker");
  SseClient marker(cluster.port(), "/api/v1/streaming/user", bearer(later.token));
  ASSERT_TRUE(wait_numsub("timeline:" + std::to_string(later.account_id), 1));
  EXPECT_EQ(suite_redis().numsub("timeline:" + id + ":notifications"), 0);
  auto denied = http_request(cluster.port(), "GET", "/api/v1/streaming/user/notification", bearer(viewer.token));
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(denied.body, R"({"error":"Access token does not have the required scopes"})");
}

TEST_P(Streams, NotificationScopeAloneOpensOnlyTheNotificationStream) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "notif_only", "read:notifications");
  auto user = http_request(cluster.port(), "GET", "/api/v1/streaming/user", bearer(viewer.token));
  EXPECT_EQ(user.status, 401);
  EXPECT_EQ(user.body, R"({"error":"Access token does not have the required scopes"})");
  SseClient sse(cluster.port(), "/api/v1/streaming/user/notification", bearer(viewer.token));
  EXPECT_EQ(sse.response().status, 200);
}

TEST_P(Streams, OneEventIsDeliveredOncePerSubscription) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "twice");
  std::string id = std::to_string(viewer.account_id);
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  ASSERT_TRUE(ws.upgraded());
  ws.send_text(R"({"type":"subscribe","stream":"user"})");
  ws.send_text(R"({"type":"subscribe","stream":"user:notification"})");
  ws.send_text(R"({"type":"subscribe","stream":"user"})");  // duplicate: ignored
  std::string marker = ws_settle(ws);
  suite_redis().publish("timeline:" + id + ":notifications", R"({"event":"notifications_merged","payload":"1"})");
  std::set<std::string> got;
  for (int i = 0; i < 2; ++i) {
    auto text = ws.next_text();
    ASSERT_TRUE(text);
    got.insert(*text);
  }
  EXPECT_EQ(got, (std::set<std::string>{R"({"stream":["user"],"event":"notifications_merged","payload":"1"})",
                                        R"({"stream":["user:notification"],"event":"notifications_merged","payload":"1"})"}));
  EXPECT_EQ(ws_texts_before_marker(ws, marker), std::vector<std::string>{}) << "a third copy arrived";
}

TEST_P(Streams, SameHashtagSpelledTwiceKeepsTheFirstSpelling) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "spelling");
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":"Straße"})");
  ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":"straße"})");
  std::string marker = ws_settle(ws);
  suite_redis().publish("timeline:hashtag:straße", R"({"event":"delete","payload":"9"})");
  EXPECT_EQ(ws_texts_before_marker(ws, marker),
            std::vector<std::string>{R"({"stream":["hashtag","Straße"],"event":"delete","payload":"9"})"});
}

TEST_P(Streams, ListOwnershipIsCheckedOnSubscribeAndUnsubscribe) {
  Cluster cluster(GetParam());
  auto owner = create_account(suite_postgres(), "list_owner");
  auto other = create_account(suite_postgres(), "list_other");
  std::string list_id = suite_postgres().query_value("INSERT INTO lists (account_id, title) VALUES (" +
                                                     std::to_string(owner.account_id) + ", 'l') RETURNING id");
  WsClient intruder(cluster.port(), "/api/v1/streaming?access_token=" + other.token);
  intruder.send_text(R"({"type":"subscribe","stream":"list","list":")" + list_id + R"("})");
  EXPECT_EQ(intruder.next_text(), R"({"error":"Not authorized to stream this list","status":401})");
  intruder.send_text(R"({"type":"unsubscribe","stream":"list","list":")" + list_id + R"("})");
  EXPECT_EQ(intruder.next_text(), R"({"error":"Error unsubscribing from channel"})");

  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + owner.token);
  ws.send_text(R"({"type":"subscribe","stream":"list","list":")" + list_id + R"("})");
  ASSERT_TRUE(wait_numsub("timeline:list:" + list_id, 1));
  ws.send_text(R"({"type":"unsubscribe","stream":"list","list":")" + list_id + R"("})");
  EXPECT_TRUE(wait_numsub("timeline:list:" + list_id, 0));
}

INSTANTIATE_TEST_SUITE_P(Deployments, Streams, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
