// docs/protocol.md#authentication and docs/protocol.md#websocket-protocol over
// WebSocket: token sources, the handshake, subscribe and unsubscribe messages and
// their errors, bad input, keep-alive and kill.
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class WebSocket : public ::testing::TestWithParam<Deployment> {};

TEST_P(WebSocket, TokenSourcesAndSubprotocolEcho) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_tokens");
  WsClient by_header(cluster.port(), "/api/v1/streaming/", bearer(viewer.token));
  EXPECT_TRUE(by_header.upgraded());
  EXPECT_EQ(by_header.response().header("sec-websocket-protocol"), "");
  WsClient by_protocol(cluster.port(), "/any/path/at/all", {{"Sec-WebSocket-Protocol", viewer.token}});
  EXPECT_TRUE(by_protocol.upgraded());
  EXPECT_EQ(by_protocol.response().header("sec-websocket-protocol"), viewer.token);
  // The header wins even when it is wrong (docs/protocol.md#edge-cases).
  WsClient header_wins(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token, bearer("wrong"));
  EXPECT_EQ(header_wins.response().status, 401);
  EXPECT_EQ(header_wins.response().header("x-error-message"), "Invalid access token");
  // SSE accepts the subprotocol header too.
  SseClient sse(cluster.port(), "/api/v1/streaming/user", {{"Sec-WebSocket-Protocol", viewer.token}});
  EXPECT_EQ(sse.response().status, 200);
}

TEST_P(WebSocket, ScopesAreCheckedPerSubscriptionNotAtUpgrade) {
  Cluster cluster(GetParam());
  auto writer = create_account(suite_postgres(), "ws_writer", "write follow");
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=public&access_token=" + writer.token);
  ASSERT_TRUE(ws.upgraded());
  EXPECT_EQ(ws.next_text(), R"({"error":"Access token does not have the required scopes","status":401})");
  ws.send_text(R"({"type":"subscribe","stream":"foo"})");
  EXPECT_EQ(ws.next_text(), R"({"error":"Access token does not have the required scopes","status":401})");
}

TEST_P(WebSocket, SubscribeErrorsCarryTheContractMessages) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_errors");
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=foo&access_token=" + viewer.token);
  ASSERT_TRUE(ws.upgraded());
  EXPECT_EQ(ws.next_text(), R"({"error":"Unknown stream type","status":400})");
  ws.send_text(R"({"type":"subscribe"})");
  EXPECT_EQ(ws.next_text(), R"({"error":"Unknown stream type","status":400})");
  ws.send_text(R"({"type":"subscribe","stream":"hashtag"})");
  EXPECT_EQ(ws.next_text(), R"({"error":"Missing tag name parameter","status":400})");
  ws.send_text(R"({"type":"subscribe","stream":"hashtag:local","tag":""})");
  EXPECT_EQ(ws.next_text(), R"({"error":"Missing tag name parameter","status":400})");
  ws.send_text(R"({"type":"subscribe","stream":"list"})");
  EXPECT_EQ(ws.next_text(), R"({"error":"Missing list name parameter","status":400})");
  ws.send_text(R"({"type":"subscribe","stream":"list","list":"abc"})");
  EXPECT_EQ(ws.next_text(), R"({"error":"Not authorized to stream this list","status":401})");
  ws.send_text(R"({"type":"unsubscribe","stream":"nope"})");
  EXPECT_EQ(ws.next_text(), R"({"error":"Error unsubscribing from channel"})");
  // Unknown keys on unsubscribe are a silent no-op: nothing comes before the marker.
  ws.send_text(R"({"type":"unsubscribe","stream":"public"})");
  std::string marker = ws_settle(ws);
  EXPECT_EQ(ws_texts_before_marker(ws, marker), std::vector<std::string>{});
}

TEST_P(WebSocket, MalformedMessagesAreIgnoredAndTheSocketStays) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_garbage");
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  ASSERT_TRUE(ws.upgraded());
  for (const char* junk : {"not json", "{", "null", "0", "\"\"", "[1,2]", "42", "true", R"({"type":"dance"})",
                           R"({"stream":"public"})", R"({"type":5,"stream":"public"})"}) {
    ws.send_text(junk);
  }
  ws.send_text(std::string(300, '[') + std::string(300, ']'));
  // No frame answers any of them: the first text is the event that follows.
  ws.send_text(R"({"type":"subscribe","stream":["hashtag","ignored"],"tag":"garbage"})");
  ASSERT_TRUE(wait_numsub("timeline:hashtag:garbage", 1)) << cluster.logs();
  suite_redis().publish("timeline:hashtag:garbage", R"({"event":"delete","payload":"1"})");
  EXPECT_EQ(ws.next_text(), R"({"stream":["hashtag","garbage"],"event":"delete","payload":"1"})");
}

// docs/protocol.md#websocket-stream-echo: `hashtag:local` echoes its own stream name
// and the tag as given, for a subscribe message as for ?stream= (streams_test).
TEST_P(WebSocket, HashtagLocalSubscribeEchoesItsOwnName) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_tag_local");
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  ASSERT_TRUE(ws.upgraded());
  ws.send_text(R"({"type":"subscribe","stream":"hashtag:local","tag":"#Dragon"})");
  ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":"#Dragon"})");
  ASSERT_TRUE(wait_numsub("timeline:hashtag:dragon:local", 1)) << cluster.logs();
  ASSERT_TRUE(wait_numsub("timeline:hashtag:dragon", 1)) << cluster.logs();
  suite_redis().publish("timeline:hashtag:dragon:local", R"({"event":"delete","payload":"7"})");
  EXPECT_EQ(ws.next_text(), R"({"stream":["hashtag:local","#Dragon"],"event":"delete","payload":"7"})");
  suite_redis().publish("timeline:hashtag:dragon", R"({"event":"delete","payload":"8"})");
  EXPECT_EQ(ws.next_text(), R"({"stream":["hashtag","#Dragon"],"event":"delete","payload":"8"})");
}

// Requests of one socket are handled in the order sent, even while the first waits
// for its feed-access check: an immediate unsubscribe leaves nothing behind.
TEST_P(WebSocket, SubscribeThenUnsubscribeInOneBreathLeavesNoSubscription) {
  Cluster cluster(GetParam(), {{"SLUICE_SETTINGS_CACHE_TTL_MS", "0"}});
  auto viewer = create_account(suite_postgres(), "ws_order");
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  ASSERT_TRUE(ws.upgraded());
  std::string both = WsClient::encode_frame(1, R"({"type":"subscribe","stream":"hashtag","tag":"inorder"})") +
                     WsClient::encode_frame(1, R"({"type":"unsubscribe","stream":"hashtag","tag":"inorder"})") +
                     WsClient::encode_frame(1, R"({"type":"subscribe","stream":"hashtag","tag":"after"})");
  ws.connection().send(both);
  ASSERT_TRUE(wait_numsub("timeline:hashtag:after", 1)) << cluster.logs();
  EXPECT_EQ(suite_redis().numsub("timeline:hashtag:inorder"), 0);
  suite_redis().publish("timeline:hashtag:inorder", R"({"event":"delete","payload":"stray"})");
  suite_redis().publish("timeline:hashtag:after", R"({"event":"delete","payload":"kept"})");
  EXPECT_EQ(ws.next_text(), R"({"stream":["hashtag","after"],"event":"delete","payload":"kept"})");
}

// docs/protocol.md#opening-a-websocket: a repeated `stream` query parameter subscribes its first value.
TEST_P(WebSocket, RepeatedStreamParameterUsesTheFirst) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_repeated");
  WsClient ws(cluster.port(),
              "/api/v1/streaming?stream=hashtag&stream=direct&tag=firstwins&access_token=" + viewer.token);
  ASSERT_TRUE(ws.upgraded());
  ASSERT_TRUE(wait_numsub("timeline:hashtag:firstwins", 1)) << cluster.logs();
  ws_settle(ws);  // a subscription of the other value would be in Redis before the marker's
  EXPECT_EQ(suite_redis().numsub("timeline:direct:" + std::to_string(viewer.account_id)), 0);
}

// docs/protocol.md#client-messages: requests queued behind one whose check is waiting
// hold at most 1 MiB of the socket's memory; a request past that is dropped. A list
// subscribe waits in PostgreSQL while three subscribes with 400 KB tags queue behind it:
// the third would pass the bound. A small one after it still fits.
TEST_P(WebSocket, RequestsQueuedBehindAWaitingCheckAreBoundedInBytes) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_queue_bytes");
  std::string list_id = suite_postgres().query_value("INSERT INTO lists (account_id, title) VALUES (" +
                                                     std::to_string(viewer.account_id) + ", 'l') RETURNING id");
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  ASSERT_TRUE(ws.upgraded());
  pqxx::connection locker(suite_postgres().conninfo());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE lists IN ACCESS EXCLUSIVE MODE");
  ws.send_text(R"({"type":"subscribe","stream":"list","list":")" + list_id + "\"}");
  const bool held = eventually(
      [&] {
        return suite_postgres().query_value("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                            "WHERE c.relname = 'lists' AND NOT l.granted") != "0";
      },
      10s);
  std::vector<std::string> tags;
  for (char last : {'1', '2', '3'}) tags.push_back("queued" + std::string(400000, 'q') + last);
  const std::string dropped = R"(sluice_admission_refusals_total{limit="queued_requests"})";
  bool refused = false;
  if (held) {
    for (const auto& tag : tags) ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":")" + tag + "\"}");
    ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":"queuedsmall"})");
    // The third is refused while the list check still waits.
    refused = eventually([&] { return metric(cluster.port(), dropped) == 1; }, 20s);
  }
  lock.abort();
  ASSERT_TRUE(held) << "the list check never waited on the lock";
  ASSERT_TRUE(refused) << "no queued request was refused";
  // Requests run in the order sent: once the last is in Redis, the others have run.
  ASSERT_TRUE(wait_numsub("timeline:hashtag:queuedsmall", 1)) << cluster.logs();
  EXPECT_EQ(suite_redis().numsub("timeline:hashtag:" + tags[0]), 1);
  EXPECT_EQ(suite_redis().numsub("timeline:hashtag:" + tags[1]), 1);
  EXPECT_EQ(suite_redis().numsub("timeline:hashtag:" + tags[2]), 0) << "the request past 1 MiB was queued";
}

TEST_P(WebSocket, BinaryFramesCloseWith1003) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_binary");
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  ASSERT_TRUE(ws.upgraded());
  ws.send_binary("\x01\x02");
  auto frame = ws.next_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->opcode, 8);
  EXPECT_EQ(frame->close_code, 1003);
  EXPECT_EQ(frame->close_reason, "The mastodon streaming server does not support binary messages");
  EXPECT_TRUE(ws.wait_closed(5s));
}

TEST_P(WebSocket, ProtocolViolationsCloseTheSocketAndNothingElse) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_protocol");
  WsClient unmasked(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  unmasked.send_frame(1, R"({"type":"subscribe","stream":"public"})", true, /*masked=*/false);
  auto frame = unmasked.next_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->opcode, 8);
  EXPECT_EQ(frame->close_code, 1002);
  WsClient bad_utf8(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  bad_utf8.send_text("\xff\xfe");
  auto close = bad_utf8.next_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code, 1007);
  // The server is still fine.
  EXPECT_EQ(http_request(cluster.port(), "GET", "/api/v1/streaming/health").status, 200);
}

TEST_P(WebSocket, ClientCloseIsAnsweredAndReleasesChannels) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_close");
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=hashtag&tag=closing&access_token=" + viewer.token);
  ASSERT_TRUE(wait_numsub("timeline:hashtag:closing", 1));
  // node ws answers with the client's code and reason (browsers show the server's
  // reason in CloseEvent.reason).
  ws.send_close(4000, "bye for now");
  auto frame = ws.next_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->opcode, 8);
  EXPECT_EQ(frame->close_code, 4000);
  EXPECT_EQ(frame->close_reason, "bye for now");
  EXPECT_TRUE(wait_numsub("timeline:hashtag:closing", 0));
}

// The ping period is a few seconds so that a slow host (sanitizers, two busy cores)
// answering a ping late is not mistaken for a silent client: each test waits for
// positive markers (a ping, a frame, the socket closing), never for a fixed time.
constexpr const char* kPingSeconds = "3";

TEST_P(WebSocket, PingsKeepAnsweringClientsAndDropSilentOnes) {
  Cluster cluster(GetParam(), {{"SLUICE_WS_PING_SECONDS", kPingSeconds}});
  auto viewer = create_account(suite_postgres(), "ws_ping");
  WsClient polite(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  WsClient silent(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  ASSERT_TRUE(polite.upgraded());
  ASSERT_TRUE(silent.upgraded());
  auto ping = silent.next_frame(10s);
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->opcode, 9);
  EXPECT_EQ(ping->data, "");
  // The polite one answers each ping as it comes; the silent one never does and is
  // terminated at the next sweep, without a close frame.
  int polite_pings = 0;
  auto answer_polite = [&] {
    auto frame = polite.next_frame(100ms);
    if (frame && frame->opcode == 9) {
      ++polite_pings;
      polite.connection().send(WsClient::encode_frame(10, frame->data));
    }
  };
  auto deadline = std::chrono::steady_clock::now() + 20s;
  bool saw_close_frame = false;
  while (std::chrono::steady_clock::now() < deadline && !silent.connection().closed()) {
    auto frame = silent.next_frame(100ms);
    if (frame && frame->opcode == 8) saw_close_frame = true;
    answer_polite();
  }
  EXPECT_TRUE(silent.connection().closed());
  EXPECT_FALSE(saw_close_frame);
  // Two more pings after that sweep: sweeps that found the polite one alive.
  const int seen = polite_pings;
  deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline && polite_pings < seen + 2 && !polite.connection().closed()) {
    answer_polite();
  }
  EXPECT_GE(polite_pings, seen + 2);
  EXPECT_FALSE(polite.connection().closed());
}

TEST_P(WebSocket, ErrorFramesAreDroppedWhileAPingIsUnanswered) {
  Cluster cluster(GetParam(), {{"SLUICE_WS_PING_SECONDS", kPingSeconds}});
  auto viewer = create_account(suite_postgres(), "ws_quirk");
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + viewer.token);
  auto ping = ws.next_frame(10s);
  ASSERT_TRUE(ping);
  ASSERT_EQ(ping->opcode, 9);
  // While the ping is unanswered, an error frame is dropped. Then a pong makes the
  // socket alive again and the next error goes out: it is the first text frame.
  ws.send_text(R"({"type":"subscribe","stream":"nope"})");
  ws.connection().send(WsClient::encode_frame(10, "") +
                       WsClient::encode_frame(1, R"({"type":"subscribe","stream":"hashtag"})"));
  EXPECT_EQ(ws.next_text(10s), R"({"error":"Missing tag name parameter","status":400})")
      << "the error frame sent during the pending ping must have been dropped";
}

TEST_P(WebSocket, KillClosesWithoutStatusCode) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_kill");
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=user&access_token=" + viewer.token);
  ASSERT_TRUE(wait_numsub("timeline:" + std::to_string(viewer.account_id), 1));
  suite_redis().publish("timeline:access_token:" + std::to_string(viewer.token_id), R"({"event":"kill"})");
  auto frame = ws.next_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->opcode, 8);
  EXPECT_EQ(frame->close_code, 1005);
  EXPECT_TRUE(ws.wait_closed(5s));
}

TEST_P(WebSocket, HandshakeErrorsAfterAuthentication) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "ws_handshake");
  auto version = raw_exchange(cluster.port(),
                              "GET /api/v1/streaming?access_token=" + viewer.token +
                                  " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n");
  EXPECT_EQ(version.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << version;
  EXPECT_NE(version.find("Sec-WebSocket-Version: 13, 8"), std::string::npos);
  auto key = raw_exchange(cluster.port(), "GET /api/v1/streaming?access_token=" + viewer.token +
                                              " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                              "Sec-WebSocket-Key: nope\r\nSec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_NE(key.find("Missing or invalid Sec-WebSocket-Key header"), std::string::npos) << key;
}

INSTANTIATE_TEST_SUITE_P(Deployments, WebSocket, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
