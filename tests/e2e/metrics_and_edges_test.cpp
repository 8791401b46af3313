// docs/protocol.md#metrics and docs/protocol.md#edge-cases (bad input and faults).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include <sys/socket.h>

#include <regex>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class MetricsAndEdges : public ::testing::TestWithParam<Deployment> {};

double sample(const std::string& text, const std::string& series) {
  auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + series.size() + 2));
}

TEST_P(MetricsAndEdges, ReferenceMetricsArePrimedAndMove) {
  Cluster cluster(GetParam());
  auto before = http_request(cluster.port(), "GET", "/metrics").body;
  for (const char* header :
       {"# HELP connected_clients The number of clients connected to the streaming server",
        "# TYPE connected_clients gauge",
        "# HELP connected_channels The number of channels the streaming server is streaming to",
        "# HELP messages_sent_total The total number of messages the streaming server sent to clients per connection type",
        "# TYPE messages_sent_total counter", "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge", "# TYPE process_open_fds gauge"}) {
    EXPECT_NE(before.find(header), std::string::npos) << header;
  }
  for (const char* type : {"websocket", "eventsource"}) {
    for (const char* channel : {"system", "user", "user:notification", "list", "direct", "public", "public:media",
                                "public:local", "public:local:media", "public:remote", "public:remote:media",
                                "hashtag", "hashtag:local"}) {
      std::string series = std::string("connected_channels{type=\"") + type + "\",channel=\"" + channel + "\"}";
      EXPECT_EQ(sample(before, series), 0) << series;
    }
    EXPECT_EQ(sample(before, std::string("connected_clients{type=\"") + type + "\"}"), 0);
  }
  if (GetParam() == Deployment::all_in_one) {
    // One process exposes what the reference's single process did.
    for (const char* name : {"redis_subscriptions", "redis_messages_received_total", "pg_pool_total_connections",
                             "pg_pool_idle_connections", "pg_pool_waiting_queries"}) {
      EXPECT_NE(before.find(std::string("# HELP ") + name + " "), std::string::npos) << name;
    }
  }

  auto viewer = create_account(suite_postgres(), "metrics");
  SseClient sse(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=public&access_token=" + viewer.token);
  ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":"metric"})");
  ASSERT_TRUE(wait_numsub("timeline:hashtag:metric", 1));
  suite_redis().publish("timeline:public", R"({"event":"delete","payload":"1"})");
  ASSERT_TRUE(sse.next_event());
  ASSERT_TRUE(ws.next_text());
  auto after = http_request(cluster.port(), "GET", "/metrics").body;
  EXPECT_EQ(sample(after, R"(connected_clients{type="eventsource"})"), 1);
  EXPECT_EQ(sample(after, R"(connected_clients{type="websocket"})"), 1);
  EXPECT_EQ(sample(after, R"(connected_channels{type="eventsource",channel="system"})"), 2);
  EXPECT_EQ(sample(after, R"(connected_channels{type="websocket",channel="system"})"), 2);
  EXPECT_EQ(sample(after, R"(connected_channels{type="eventsource",channel="public"})"), 1);
  EXPECT_EQ(sample(after, R"(connected_channels{type="websocket",channel="public"})"), 1);
  EXPECT_EQ(sample(after, R"(connected_channels{type="websocket",channel="hashtag"})"), 1);
  EXPECT_EQ(sample(after, R"(messages_sent_total{type="eventsource"})"), 1);
  EXPECT_EQ(sample(after, R"(messages_sent_total{type="websocket"})"), 1);
}

TEST_P(MetricsAndEdges, MalformedHttpGetsAnErrorAndTheServerCarriesOn) {
  Cluster cluster(GetParam());
  EXPECT_EQ(raw_exchange(cluster.port(), "NOT HTTP AT ALL\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(raw_exchange(cluster.port(), "GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n").rfind("HTTP/1.1 400", 0),
            0u);
  std::string huge = "GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  EXPECT_EQ(raw_exchange(cluster.port(), huge).rfind("HTTP/1.1 431", 0), 0u);
  EXPECT_EQ(raw_exchange(cluster.port(), std::string("\0\1\2\3\xff\xfe", 6) + "\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // A client that connects and says nothing is dropped after the request timeout; meanwhile, all is well.
  Connection idle("127.0.0.1", cluster.port());
  EXPECT_EQ(http_request(cluster.port(), "GET", "/api/v1/streaming/health").status, 200);
}

// docs/protocol.md#http-surface: the idle keep-alive 5 s end when the next request's first
// byte comes; from then the request timeout (30 s) applies, so a head begun within the
// 5 s and finished after them is answered. Before, the socket closed at 5 s mid-head.
TEST_P(MetricsAndEdges, AKeepAliveRequestBegunWhileIdleMayFinishAfterTheIdleTimeout) {
  Cluster cluster(GetParam());
  const std::string request = "GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\n\r\n";
  auto answered = [](Connection& connection) {
    while (connection.buffer().find("\r\n\r\nOK") == std::string::npos) {
      if (!connection.fill(5s)) return false;
    }
    connection.buffer().clear();
    return true;
  };
  Connection connection("127.0.0.1", cluster.port());
  connection.send(request);
  ASSERT_TRUE(answered(connection));
  // A second keep-alive connection, answered after the first: its idle 5 s end no
  // earlier than the first's, so its close marks that the first's have passed too.
  Connection witness("127.0.0.1", cluster.port());
  witness.send(request);
  ASSERT_TRUE(answered(witness));
  connection.send(request.substr(0, 4));  // the next head begins within the idle 5 s
  ASSERT_TRUE(witness.wait_closed(15s)) << "an idle keep-alive connection was never closed";
  connection.send(request.substr(4));
  EXPECT_TRUE(answered(connection)) << "closed before the head was complete";
  // The same for a body: a whole head within the idle 5 s (Beast takes it at once, so
  // nothing stays buffered), its body after them.
  Connection second_witness("127.0.0.1", cluster.port());
  second_witness.send(request);
  ASSERT_TRUE(answered(second_witness));
  connection.send("GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n");
  ASSERT_TRUE(second_witness.wait_closed(15s)) << "an idle keep-alive connection was never closed";
  connection.send("body");
  EXPECT_TRUE(answered(connection)) << "closed while its body was on the way";
}

// docs/protocol.md#malformed-requests: a raw byte from 0x80 up in the request target is
// refused as Node's parser refuses it (Beast alone would accept it), and header bytes are
// Latin-1 characters, so a raw UTF-8 token reaches the lookup as the reference's mojibake.
TEST_P(MetricsAndEdges, RawNonAsciiTargetsAndLatin1HeadersAsTheReference) {
  Cluster cluster(GetParam());
  for (const std::string target : {"/api/v1/streaming/hashtag?tag=caf\xC3\xA9", "/api/v1/streaming/health\xC3\xA9"}) {
    auto answer = raw_exchange(cluster.port(), "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n", 0), 0u) << answer;
  }
  auto list_request = [&](const std::string& token_bytes) {
    return raw_exchange(cluster.port(), "GET /api/v1/streaming/list?list=999999 HTTP/1.1\r\nHost: x\r\n"
                                        "Connection: close\r\nAuthorization: Bearer " + token_bytes + "\r\n\r\n");
  };
  const std::string raw_e_acute = "\xC3\xA9";        // "é" as the client's UTF-8 bytes
  const std::string mojibake = "\xC3\x83\xC2\xA9";  // those two bytes read as Latin-1 "Ã©", in UTF-8
  auto stored_as_mojibake = create_account(suite_postgres(), "latin1_mojibake");
  auto stored_as_utf8 = create_account(suite_postgres(), "latin1_utf8");
  auto store_token = [&](const TestAccount& account, const std::string& token) {
    suite_postgres().exec("UPDATE oauth_access_tokens SET token = '" + token + "' WHERE id = " +
                          std::to_string(account.token_id));
  };
  store_token(stored_as_mojibake, "latin1-" + mojibake + "-" + stored_as_mojibake.token);
  store_token(stored_as_utf8, "latin1-" + raw_e_acute + "-" + stored_as_utf8.token);
  // Authenticated (the list is then refused as not the account's): the header matched "Ã©".
  auto matched = list_request("latin1-" + raw_e_acute + "-" + stored_as_mojibake.token);
  EXPECT_NE(matched.find(R"({"error":"Not authorized to stream this list"})"), std::string::npos) << matched;
  // The same bytes never match a token stored as "é".
  auto unmatched = list_request("latin1-" + raw_e_acute + "-" + stored_as_utf8.token);
  EXPECT_NE(unmatched.find(R"({"error":"Invalid access token"})"), std::string::npos) << unmatched;
}

// docs/protocol.md#malformed-requests: HTTP/1.1 strictness as Node's parser has it
// (RFC 9112 asks the same): no Host → 400, a folded header → 400, an absolute-form
// target is served like its path.
TEST_P(MetricsAndEdges, HostObsFoldAndAbsoluteFormAsTheReference) {
  Cluster cluster(GetParam());
  std::string no_host = raw_exchange(cluster.port(), "GET /api/v1/streaming/health HTTP/1.1\r\n\r\n");
  EXPECT_EQ(no_host.rfind("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n", 0), 0u) << no_host;
  EXPECT_NE(no_host.find("\r\n\r\n0\r\n\r\n"), std::string::npos) << no_host;
  // Also before the stream routes and authentication.
  EXPECT_EQ(raw_exchange(cluster.port(), "GET /api/v1/streaming/public HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // An empty Host is a Host; HTTP/1.0 needs none.
  EXPECT_EQ(raw_exchange(cluster.port(), "GET /api/v1/streaming/health HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n")
                .rfind("HTTP/1.1 200 OK", 0),
            0u);
  EXPECT_EQ(raw_exchange(cluster.port(), "GET /api/v1/streaming/health HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200 OK", 0),
            0u);

  for (const char* fold : {"X-A: one\r\n two\r\n", "X-A: one\r\n\ttwo\r\n"}) {
    std::string folded = raw_exchange(
        cluster.port(), std::string("GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\n") + fold + "\r\n");
    EXPECT_EQ(folded, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
  }
  // A fold sent in a later write than the line it continues (the server may read the
  // two apart; the unit tests cover a head checked while incomplete).
  {
    Connection connection("127.0.0.1", cluster.port());
    connection.send("GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\nX-A: one\r\n");
    connection.send(" two\r\n\r\n");
    std::string answer;
    while (connection.fill(2s)) answer += std::exchange(connection.buffer(), {});
    EXPECT_EQ(answer, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
  }

  auto absolute = raw_exchange(cluster.port(),
                               "GET http://sluice.example/api/v1/streaming/health HTTP/1.1\r\nHost: sluice.example\r\n"
                               "Connection: close\r\n\r\n");
  EXPECT_EQ(absolute.rfind("HTTP/1.1 200 OK", 0), 0u) << absolute;
  EXPECT_NE(absolute.find("\r\n\r\nOK"), std::string::npos) << absolute;
  auto absolute_stream = raw_exchange(cluster.port(),
                                      "GET https://sluice.example/api/v1/streaming/public?x=1 HTTP/1.1\r\n"
                                      "Host: sluice.example\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(absolute_stream.rfind("HTTP/1.1 401", 0), 0u) << absolute_stream;
  EXPECT_NE(absolute_stream.find(R"({"error":"Missing access token"})"), std::string::npos);
}

// An extra CRLF after a request (RFC 9112 §2.2: clients may send one) is no request
// begun: the connection is idle and closed after Node's 5 s, not the 30 s request timeout.
TEST_P(MetricsAndEdges, AnEmptyLineAfterARequestLeavesTheConnectionIdle) {
  Cluster cluster(GetParam());
  Connection connection("127.0.0.1", cluster.port());
  connection.send("GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\n\r\n\r\n");
  std::string answer;
  while (answer.find("\r\n\r\nOK") == std::string::npos && connection.fill(5s)) {
    answer += std::exchange(connection.buffer(), {});
  }
  ASSERT_NE(answer.find("\r\n\r\nOK"), std::string::npos) << answer;
  EXPECT_TRUE(connection.wait_closed(15s)) << "the empty line was taken for a request's first byte";
}

// docs/protocol.md#malformed-requests: a method Node's parser does not know gets its bare
// 400 before any route (Beast would route it, and a stream path would cost a token
// lookup); one Node knows and Beast does not still reaches the routes; CONNECT is closed
// unanswered, as the reference has no 'connect' listener.
TEST_P(MetricsAndEdges, MethodsAsNodesParserReadsThem) {
  Cluster cluster(GetParam());
  for (const char* method : {"FOO", "get", "PRI"}) {
    EXPECT_EQ(raw_exchange(cluster.port(), std::string(method) + " /api/v1/streaming/user HTTP/1.1\r\nHost: x\r\n"
                                                                 "Authorization: Bearer t\r\n\r\n"),
              "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
        << method;
  }
  auto query = raw_exchange(cluster.port(), "QUERY /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(query.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << query;
  EXPECT_NE(query.find(R"({"error":"Unknown channel requested"})"), std::string::npos) << query;
  auto user = create_account(suite_postgres(), "query_method");
  auto query_stream = raw_exchange(cluster.port(), "QUERY /api/v1/streaming/user HTTP/1.1\r\nHost: x\r\n"
                                                   "Connection: close\r\nAuthorization: Bearer " + user.token + "\r\n\r\n");
  EXPECT_EQ(query_stream.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << query_stream;
  EXPECT_NE(query_stream.find("Cannot QUERY /api/v1/streaming/user"), std::string::npos) << query_stream;

  Connection connect("127.0.0.1", cluster.port());
  connect.send("CONNECT sluice.example:443 HTTP/1.1\r\nHost: sluice.example:443\r\n\r\n");
  std::string answer;
  while (connect.fill(10s)) answer += std::exchange(connect.buffer(), {});
  EXPECT_TRUE(connect.closed()) << "CONNECT was left open";
  EXPECT_EQ(answer, "");
}

// docs/protocol.md#token-lookup: `access_token=<token>%00junk` is the reference's 500 (its
// query fails), not a lookup of `<token>`; the gateway answers it without asking the
// auth tier (in one process, the auth cache then sees no miss for it).
TEST_P(MetricsAndEdges, ATokenWithANulByteIsTheReferences500WithoutALookup) {
  Cluster cluster(GetParam());
  auto user = create_account(suite_postgres(), "nul_token");
  const std::string misses = R"(sluice_auth_cache_misses_total{cache="token"})";
  const auto before = sample(http_request(cluster.port(), "GET", "/metrics").body, misses);
  auto answer = http_request(cluster.port(), "GET", "/api/v1/streaming/user?access_token=" + user.token + "%00junk");
  EXPECT_EQ(answer.status, 500);
  EXPECT_EQ(answer.body, R"({"error":"An unexpected error occurred"})");
  if (GetParam() == Deployment::all_in_one) {
    EXPECT_EQ(sample(http_request(cluster.port(), "GET", "/metrics").body, misses), before) << "the auth tier was asked";
  }
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(user.token));
  EXPECT_EQ(sse.response().status, 200) << "the token itself still works";
}

TEST_P(MetricsAndEdges, KeepAliveServesSeveralRequestsOnOneConnection) {
  Cluster cluster(GetParam());
  Connection connection("127.0.0.1", cluster.port());
  connection.send("GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string all;
  while (all.find("Unknown channel requested") == std::string::npos && connection.fill(2s)) {
    all += connection.buffer();
    connection.buffer().clear();
  }
  EXPECT_EQ(all.rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_NE(all.find("HTTP/1.1 400 Bad Request"), std::string::npos);
}

TEST_P(MetricsAndEdges, StatusWithoutAccountIsDroppedOnFilteredStreamsOnly) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "malformed_status");
  SseClient sse(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  std::string home = "timeline:" + std::to_string(viewer.account_id);
  SseClient user(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  ASSERT_TRUE(wait_numsub(home, 1));
  suite_redis().publish("timeline:public", R"({"event":"update","payload":{"id":"1","language":"en"}})");
  suite_redis().publish("timeline:public", R"({"event":"delete","payload":"after"})");
  auto event = sse.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->event, "delete");
  // Streams without filtering forward it untouched (docs/protocol.md#which-events-are-forwarded).
  suite_redis().publish(home, R"({"event":"update","payload":{"id":"1","language":"en"}})");
  auto home_event = user.next_event();
  ASSERT_TRUE(home_event);
  EXPECT_EQ(home_event->data, R"({"id":"1","language":"en"})");
}

TEST_P(MetricsAndEdges, VeryLongAndUnusualHashtags) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "long_tag");
  std::string tag(4000, 'x');
  SseClient sse(cluster.port(), "/api/v1/streaming/hashtag?tag=" + tag, bearer(viewer.token));
  EXPECT_EQ(sse.response().status, 200);
  EXPECT_TRUE(wait_numsub("timeline:hashtag:" + tag, 1));
  SseClient empty(cluster.port(), "/api/v1/streaming/hashtag?tag=%21%21", bearer(viewer.token));
  EXPECT_EQ(empty.response().status, 200);
  EXPECT_TRUE(wait_numsub("timeline:hashtag:", 1));
  SseClient turkish(cluster.port(), "/api/v1/streaming/hashtag?tag=%C4%B0stanbul", bearer(viewer.token));
  EXPECT_TRUE(wait_numsub("timeline:hashtag:istanbul", 1));
}

// sluice_slow_client_disconnects_total for SSE clients; -1 when the series is missing
// (a renamed metric fails the test, never reads as 0).
// An SSE stream whose client never reads, on a tiny receive buffer, so that the
// server's queue for it must fill.
std::unique_ptr<Connection> stalled_stream(const Cluster& cluster, const std::string& path, const std::string& token) {
  auto stalled = std::make_unique<Connection>("127.0.0.1", cluster.port(), /*receive_buffer=*/4096);
  stalled->send("GET " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n");
  return stalled;
}

// A new account's home stream, stalled as above; `channel` is the one it listens on.
struct StalledUserStream {
  TestAccount viewer;
  std::string channel;
  std::unique_ptr<Connection> connection;
};

StalledUserStream stalled_user_stream(const Cluster& cluster, const std::string& username) {
  TestAccount viewer = create_account(suite_postgres(), username);
  std::string channel = "timeline:" + std::to_string(viewer.account_id);
  auto connection = stalled_stream(cluster, "/api/v1/streaming/user", viewer.token);
  return {std::move(viewer), std::move(channel), std::move(connection)};
}

double sse_slow_client_disconnects(int port) {
  return metric(port, R"(sluice_slow_client_disconnects_total{type="eventsource"})");
}

// docs/protocol.md#slow-clients: a client that stops reading is disconnected once it
// has been behind for SLUICE_CLIENT_MAX_LAG_SECONDS, and counted; everyone else is
// still served.
TEST_P(MetricsAndEdges, ClientThatStopsReadingIsDisconnectedOnceBehindTooLong) {
  Cluster cluster(GetParam(), {{"SLUICE_CLIENT_MAX_LAG_SECONDS", "1"}, {"SLUICE_SSE_HEARTBEAT_SECONDS", "1"}});
  auto [viewer, channel, stalled] = stalled_user_stream(cluster, "slow_reader");
  ASSERT_TRUE(wait_numsub(channel, 1));
  std::string payload = R"({"event":"update","payload":{"id":"1","content":")" + std::string(2000, 'x') + R"("}})";
  auto disconnects = [&] { return sse_slow_client_disconnects(cluster.port()); };
  ASSERT_EQ(disconnects(), 0.0);
  // More than the kernel's socket buffers hold, until the stalled client is cut (no
  // further backlog for the server to work through afterwards).
  bool cut = false;
  for (int i = 0; i < 20000 && !cut; ++i) {
    suite_redis().publish(channel, payload);
    if (i % 500 == 499) cut = disconnects() >= 1;
  }
  EXPECT_TRUE(eventually([&] { return disconnects() >= 1; }, 20s)) << "the stalled client was never disconnected";
  EXPECT_TRUE(stalled->wait_closed(10s));
  auto other = create_account(suite_postgres(), "prompt_reader");
  std::string other_channel = "timeline:" + std::to_string(other.account_id);
  SseClient fresh(cluster.port(), "/api/v1/streaming/user", bearer(other.token));
  ASSERT_EQ(fresh.response().status, 200);
  ASSERT_TRUE(wait_numsub(other_channel, 1));
  suite_redis().publish(other_channel, R"({"event":"delete","payload":"still-served"})");
  // Behind whatever of the flood the server still has to drop.
  auto event = fresh.next_event(30s);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->data, "still-served");
}

// docs/protocol.md#slow-clients: a stream that ends (here, its token killed) while its
// client is not reading gets no more sends, so nothing else would ever cut it: the lag
// bound (from when it fell behind) is checked on its heartbeats still. Before, such a
// connection kept its place and its queued frames for as long as the peer kept the
// write pending.
TEST_P(MetricsAndEdges, AStreamEndingWhileItsClientIsNotReadingIsCutAfterTheLagBound) {
  Cluster cluster(GetParam(), {{"SLUICE_CLIENT_MAX_LAG_SECONDS", "10"}, {"SLUICE_SSE_HEARTBEAT_SECONDS", "1"}});
  auto [viewer, channel, stalled] = stalled_user_stream(cluster, "ending_stalled");
  ASSERT_TRUE(wait_numsub(channel, 1));
  auto disconnects = [&] { return sse_slow_client_disconnects(cluster.port()); };
  ASSERT_EQ(disconnects(), 0.0);
  // 12 MB of statuses, more than the kernel's buffers take (4 MB at most each side), and
  // well under the queue bounds: the server's write is left pending.
  const std::string payload = R"({"event":"update","payload":{"id":"1","content":")" + std::string(20000, 'x') + R"("}})";
  std::vector<std::vector<std::string>> flood(600, {"PUBLISH", channel, payload});
  suite_redis().pipeline(flood);
  suite_redis().publish("timeline:access_token:" + std::to_string(viewer.token_id), R"({"event":"kill"})");
  // The kill ended the stream (its subscription is released at once) before anything cut
  // it: from here on only the ending's deadline can.
  ASSERT_TRUE(wait_numsub(channel, 0));
  ASSERT_EQ(disconnects(), 0.0) << "cut before it was ending: the test would not show the ending deadline";
  EXPECT_TRUE(eventually([&] { return disconnects() >= 1; }, 30s)) << "the ending stream was never cut";
  EXPECT_TRUE(stalled->wait_closed(10s));
}

// docs/protocol.md#slow-clients: a status that waited for its viewer's data (every one,
// with SLUICE_RELATIONS_MAX_STALENESS_MS=0) is written for its one client, so a client
// that stops reading is cut once those bytes pass SLUICE_CLIENT_QUEUE_BYTES. Before, they
// were marked as shared and counted nothing against the client's own bound.
TEST_P(MetricsAndEdges, StatusesThatWaitedForViewerDataCountAgainstTheClientsOwnQueue) {
  Cluster cluster(GetParam(), {{"SLUICE_CLIENT_QUEUE_BYTES", "65536"}, {"SLUICE_RELATIONS_MAX_STALENESS_MS", "0"}});
  auto viewer = create_account(suite_postgres(), "slow_exact");
  auto stalled = stalled_stream(cluster, "/api/v1/streaming/public", viewer.token);
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  auto disconnects = [&] { return sse_slow_client_disconnects(cluster.port()); };
  ASSERT_EQ(disconnects(), 0.0);
  // 20 KB statuses: the kernel's buffers (4 MB at most) hold about 200; 1,000 queue
  // 16 MB past them, where the queue entries alone (8 bytes each) stay under the bound.
  const std::string content(20000, 'x');
  bool cut = false;
  for (int i = 0; i < 1000 && !cut; ++i) {
    suite_redis().publish("timeline:public",
                          R"({"event":"update","payload":{"id":")" + std::to_string(i) + R"(","language":"en","content":")" +
                              content + R"(","account":{"id":"900100","username":"far","acct":"far@far.example"},)"
                              R"("mentions":[],"media_attachments":[]}})");
    if (i % 100 == 99) cut = disconnects() >= 1;
  }
  EXPECT_TRUE(eventually([&] { return disconnects() >= 1; }, 20s)) << "the stalled client was never cut";
  EXPECT_TRUE(stalled->wait_closed(10s));
  EXPECT_NE(cluster.full_logs().find("slow client: own queue"), std::string::npos) << cluster.logs();
}

// docs/protocol.md#slow-clients: a burst far past SLUICE_CLIENT_QUEUE_BYTES per client
// reaches every client that keeps reading, whole and in order, because shared frames
// are not any one client's bytes. The burst fills the sockets, so writes are partial
// and wait for room: through the worker's io_uring batch by default, and one system
// call each with SLUICE_GATEWAY_IO_URING=false (gateway/write_batch.hpp).
void expect_burst_delivered_whole(Deployment deployment, const std::string& io_uring, const std::string& reader) {
  Cluster cluster(deployment, {{"SLUICE_CLIENT_QUEUE_BYTES", "65536"}, {"SLUICE_GATEWAY_IO_URING", io_uring}});
  auto viewer = create_account(suite_postgres(), reader);
  std::string channel = "timeline:" + std::to_string(viewer.account_id);
  constexpr int kSse = 12, kWs = 4, kEvents = 1500;
  std::vector<std::unique_ptr<SseClient>> sse;
  std::vector<std::unique_ptr<WsClient>> ws;
  for (int i = 0; i < kSse; ++i) {
    sse.push_back(std::make_unique<SseClient>(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token)));
    ASSERT_EQ(sse.back()->response().status, 200);
  }
  for (int i = 0; i < kWs; ++i) {
    ws.push_back(std::make_unique<WsClient>(cluster.port(), "/api/v1/streaming?stream=user", bearer(viewer.token)));
    ASSERT_TRUE(ws.back()->upgraded());
  }
  ASSERT_TRUE(wait_numsub(channel, 1));
  ASSERT_TRUE(eventually([&] {
    auto text = http_request(cluster.port(), "GET", "/metrics").body;
    return text.find(R"(connected_channels{type="eventsource",channel="user"} )" + std::to_string(kSse)) !=
               std::string::npos &&
           text.find(R"(connected_channels{type="websocket",channel="user"} )" + std::to_string(kWs)) != std::string::npos;
  }));
  std::string pad(2000, 'p');
  // The first event is 8 MB, more than a connection's socket buffers take while the
  // client does not read (the kernel's send buffer grows to 4 MB at most): its first
  // write is partial and the rest of it waits for room.
  std::string first_pad(8 << 20, 'f');
  auto payload_of = [&](int i) {
    return R"({"id":")" + std::to_string(i) + R"(","pad":")" + (i == 0 ? first_pad : pad) + R"("})";
  };
  // Then 1499 events of 2 KB: 11 MB per client, 168 times SLUICE_CLIENT_QUEUE_BYTES.
  for (int i = 0; i < kEvents; ++i) {
    suite_redis().publish(channel, R"({"event":"notification","payload":)" + payload_of(i) + "}");
  }
  std::vector<std::thread> readers;
  std::vector<int> received(kSse + kWs, 0);
  for (int c = 0; c < kSse; ++c) {
    readers.emplace_back([&, c] {
      for (int i = 0; i < kEvents; ++i) {
        auto event = sse[c]->next_event(20s);
        if (!event || event->event != "notification" || event->data != payload_of(i)) return;
        ++received[c];
      }
    });
  }
  for (int c = 0; c < kWs; ++c) {
    readers.emplace_back([&, c] {
      for (int i = 0; i < kEvents; ++i) {
        auto text = ws[c]->next_text(20s);
        if (!text) return;
        auto message = nlohmann::json::parse(*text, nullptr, false);
        if (message.is_discarded() || message["event"] != "notification" || message["payload"] != payload_of(i)) return;
        ++received[kSse + c];
      }
    });
  }
  for (auto& reader : readers) reader.join();
  for (int c = 0; c < kSse + kWs; ++c) EXPECT_EQ(received[c], kEvents) << "client " << c;
  auto text = http_request(cluster.port(), "GET", "/metrics").body;
  EXPECT_NE(text.find(R"(sluice_slow_client_disconnects_total{type="eventsource"} 0)"), std::string::npos);
  EXPECT_NE(text.find(R"(sluice_slow_client_disconnects_total{type="websocket"} 0)"), std::string::npos);
  // The gateway says which way it wrote: batched, or (asked to, or where the kernel
  // refuses io_uring, with its reason) one by one.
  auto logs = cluster.full_logs();
  if (io_uring == "false") {
    EXPECT_NE(logs.find("SLUICE_GATEWAY_IO_URING is false"), std::string::npos) << cluster.logs();
  } else if (logs.find("batched through io_uring") == std::string::npos) {
    // Refused here (a kernel or seccomp profile without io_uring): the run above took the
    // one-by-one path, and says so rather than pass as the batched one.
    ASSERT_NE(logs.find("socket writes one system call each"), std::string::npos) << cluster.logs();
    GTEST_SKIP() << "io_uring refused on this machine: the batched path was not exercised";
  }
}

TEST_P(MetricsAndEdges, BurstIsDeliveredWholeToClientsThatKeepReading) {
  expect_burst_delivered_whole(GetParam(), "true", "burst_reader");
}

TEST_P(MetricsAndEdges, BurstIsDeliveredWholeWithOneSystemCallPerWrite) {
  expect_burst_delivered_whole(GetParam(), "false", "burst_reader_plain");
}

INSTANTIATE_TEST_SUITE_P(Deployments, MetricsAndEdges, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
