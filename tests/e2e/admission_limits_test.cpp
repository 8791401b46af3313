// docs/protocol.md#admission-limits: every limit refuses with its answer, counts in
// /metrics, and leaves the connections within it alone.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <pqxx/pqxx>
#include <functional>
#include <regex>
#include <thread>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class AdmissionLimits : public ::testing::TestWithParam<Deployment> {};

long long refusals(int port, const std::string& limit) {
  auto metrics = http_request(port, "GET", "/metrics");
  std::smatch match;
  std::regex line("sluice_admission_refusals_total\\{limit=\"" + limit + "\"\\} ([0-9]+)");
  if (!std::regex_search(metrics.body, match, line)) return -1;  // a renamed metric fails the test
  return std::stoll(match[1]);
}

TEST_P(AdmissionLimits, GatewayConnectionLimitAnswers503WithRetryAfter) {
  Cluster cluster(GetParam(), {{"SLUICE_MAX_CONNECTIONS", "3"}});
  auto viewer = create_account(suite_postgres(), "limit_total");
  ASSERT_EQ(refusals(cluster.port(), "connections"), 0);
  SseClient first(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(first.response().status, 200);
  WsClient second(cluster.port(), "/api/v1/streaming?stream=user", bearer(viewer.token));
  ASSERT_TRUE(second.upgraded());
  // Two streams and this request make three: still admitted.
  SseClient third(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_EQ(third.response().status, 200);

  auto refused = http_request(cluster.port(), "GET", "/api/v1/streaming/user", bearer(viewer.token));
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.body, R"({"error":"Too many connections"})");
  EXPECT_EQ(refused.header("retry-after"), "5");
  WsClient refused_ws(cluster.port(), "/api/v1/streaming?stream=user", bearer(viewer.token));
  EXPECT_EQ(refused_ws.response().status, 503);
  EXPECT_EQ(refused_ws.response().header("retry-after"), "5");
  third.close();
  // Once a stream has gone, a new one is admitted again.
  ASSERT_TRUE(eventually([&] {
    SseClient again(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
    return again.response().status == 200;
  }, 10s));
  EXPECT_GE(refusals(cluster.port(), "connections"), 2);
  // The streams within the limit were never touched.
  EXPECT_EQ(first.next_block(), ":)");
  suite_redis().publish("timeline:" + std::to_string(viewer.account_id), R"({"event":"notification","payload":"{}"})");
  auto event = first.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->event, "notification");
}

// docs/protocol.md#http-surface: a client that sends plain requests and never reads the
// answers is closed once a response has waited the request timeout, and its place under
// SLUICE_MAX_CONNECTIONS is free again. Before, the stuck write held both for ever.
TEST_P(AdmissionLimits, AClientThatStopsReadingPlainResponsesIsClosedAndItsPlaceFreed) {
  Cluster cluster(GetParam(), {{"SLUICE_MAX_CONNECTIONS", "1"}, {"SLUICE_HTTP_REQUEST_TIMEOUT_SECONDS", "1"}});
  auto viewer = create_account(suite_postgres(), "limit_unread");
  Connection stuck("127.0.0.1", cluster.port(), /*receive_buffer=*/4096);
  // Blocking sends, given up after 30 s: pipelined health checks until the gateway,
  // stuck writing answers nobody reads, stops taking them and then closes the socket.
  timeval give_up{30, 0};
  ASSERT_EQ(::setsockopt(stuck.fd(), SOL_SOCKET, SO_SNDTIMEO, &give_up, sizeof give_up), 0);
  std::string burst;
  for (int i = 0; i < 1000; ++i) burst += "GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\n\r\n";
  int error = 0;
  while (error == 0) {
    if (::send(stuck.fd(), burst.data(), burst.size(), MSG_NOSIGNAL) < 0) error = errno;
  }
  EXPECT_TRUE(error == ECONNRESET || error == EPIPE) << "the send ended with " << std::strerror(error)
                                                      << " (EAGAIN: the gateway never closed the socket)";
  ASSERT_TRUE(eventually([&] {
    SseClient stream(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
    return stream.response().status == 200;
  }, 10s)) << "the stuck connection's place was not freed";
}

TEST_P(AdmissionLimits, PerAddressCapCountsTheForwardedAddressOfATrustedProxy) {
  Cluster cluster(GetParam(), {{"SLUICE_MAX_CONNECTIONS_PER_IP", "2"}, {"TRUSTED_PROXY_IP", "loopback"}});
  auto viewer = create_account(suite_postgres(), "limit_ip");
  auto from = [&](const std::string& ip) {
    auto headers = bearer(viewer.token);
    headers["X-Forwarded-For"] = ip;
    return headers;
  };
  SseClient a1(cluster.port(), "/api/v1/streaming/user", from("203.0.113.1"));
  WsClient a2(cluster.port(), "/api/v1/streaming?stream=user", from("203.0.113.1"));
  ASSERT_EQ(a1.response().status, 200);
  ASSERT_TRUE(a2.upgraded());
  auto refused = http_request(cluster.port(), "GET", "/api/v1/streaming/user", from("203.0.113.1"));
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.body, R"({"error":"Too many connections from this address"})");
  EXPECT_EQ(refused.header("retry-after"), "5");
  WsClient refused_ws(cluster.port(), "/api/v1/streaming?stream=user", from("203.0.113.1"));
  EXPECT_EQ(refused_ws.response().status, 429);
  // Another address, and the proxy itself (no forwarded address), are not capped by it.
  SseClient b(cluster.port(), "/api/v1/streaming/user", from("203.0.113.2"));
  EXPECT_EQ(b.response().status, 200);
  SseClient proxy1(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  SseClient proxy2(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  SseClient proxy3(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  EXPECT_EQ(proxy3.response().status, 200);
  EXPECT_EQ(refusals(cluster.port(), "address"), 2);
  // A slot frees when its connection closes.
  a2.send_close(1000);
  ASSERT_TRUE(a2.wait_closed(5s));
  ASSERT_TRUE(eventually([&] {
    SseClient again(cluster.port(), "/api/v1/streaming/user", from("203.0.113.1"));
    return again.response().status == 200;
  }, 10s));
}

TEST_P(AdmissionLimits, WebSocketSubscriptionCapAnswersWithAnErrorFrame) {
  Cluster cluster(GetParam(), {{"SLUICE_WS_MAX_SUBSCRIPTIONS", "2"}});
  auto viewer = create_account(suite_postgres(), "limit_subs");
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=user", bearer(viewer.token));
  ASSERT_TRUE(ws.upgraded());
  ws.send_text(R"({"type":"subscribe","stream":"public"})");
  ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":"third"})");
  auto error = ws.next_text();
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, R"({"error":"Too many subscriptions","status":429})");
  // Subscribing again to a held stream is not a new subscription.
  ws.send_text(R"({"type":"subscribe","stream":"public"})");
  // Unsubscribing frees a place.
  ws.send_text(R"({"type":"unsubscribe","stream":"public"})");
  ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":"third"})");
  ASSERT_TRUE(wait_numsub("timeline:hashtag:third", 1));
  suite_redis().publish("timeline:hashtag:third", R"({"event":"delete","payload":"77"})");
  auto event = ws.next_text();
  ASSERT_TRUE(event);
  EXPECT_EQ(*event, R"({"stream":["hashtag","third"],"event":"delete","payload":"77"})");
  EXPECT_EQ(refusals(cluster.port(), "subscriptions"), 1);
}

TEST_P(AdmissionLimits, WebSocketMessageRateAnswersWithAnErrorAndIgnoresTheMessage) {
  Cluster cluster(GetParam(), {{"SLUICE_WS_MAX_MESSAGES_PER_SECOND", "3"}});
  auto viewer = create_account(suite_postgres(), "limit_rate");
  WsClient ws(cluster.port(), "/api/v1/streaming", bearer(viewer.token));
  ASSERT_TRUE(ws.upgraded());
  // Four messages in one write: the bucket holds three.
  std::string burst;
  for (const char* tag : {"r1", "r2", "r3", "r4"}) {
    burst += WsClient::encode_frame(1, std::string(R"({"type":"subscribe","stream":"hashtag","tag":")") + tag + "\"}");
  }
  ws.connection().send(burst);
  auto error = ws.next_text();
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, R"({"error":"Too many messages","status":429})");
  for (const char* tag : {"r1", "r2", "r3"}) EXPECT_TRUE(wait_numsub(std::string("timeline:hashtag:") + tag, 1));
  // Once the bucket has refilled a marker subscription goes through; requests of one
  // socket run in order, so had r4 been taken it would be subscribed by now.
  ASSERT_TRUE(eventually([&] {
    ws.send_text(R"({"type":"subscribe","stream":"hashtag","tag":"r5"})");
    return wait_numsub("timeline:hashtag:r5", 1, 400ms);
  }, 10s));
  EXPECT_TRUE(wait_numsub("timeline:hashtag:r4", 0, 0ms));
  EXPECT_GE(refusals(cluster.port(), "messages"), 1);
}

TEST(AdmissionLimitsSplit, HandshakeTimeoutAnswers503WhenAuthDoesNotAnswer) {
  Cluster cluster(Deployment::split, {{"SLUICE_HANDSHAKE_TIMEOUT_SECONDS", "1"}});
  auto viewer = create_account(suite_postgres(), "limit_handshake");
  cluster.signal_tier("auth", SIGSTOP);
  auto sse = http_request(cluster.port(), "GET", "/api/v1/streaming/user", bearer(viewer.token));
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=user", bearer(viewer.token));
  cluster.signal_tier("auth", SIGCONT);
  EXPECT_EQ(sse.status, 503);
  EXPECT_EQ(sse.body, R"({"error":"Timed out"})");
  EXPECT_EQ(sse.header("retry-after"), "5");
  EXPECT_EQ(ws.response().status, 503);
  EXPECT_EQ(refusals(cluster.port(), "handshake_timeout"), 2);
  // Auth answers again: the next request is admitted.
  SseClient after(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  EXPECT_EQ(after.response().status, 200);
}

// docs/protocol.md#auth-overload: an address that keeps presenting invalid tokens is
// refused before its lookups reach the auth tier; other addresses are not.
TEST_P(AdmissionLimits, InvalidTokensSpendTheAddressBudgetThenGet429) {
  Cluster cluster(GetParam(), {{"SLUICE_AUTH_FAILURES_PER_IP_PER_SECOND", "2"}, {"TRUSTED_PROXY_IP", "loopback"}});
  auto viewer = create_account(suite_postgres(), "limit_flood");
  auto from = [](const std::string& ip, const std::string& token) {
    auto headers = bearer(token);
    headers["X-Forwarded-For"] = ip;
    return headers;
  };
  EXPECT_EQ(http_request(cluster.port(), "GET", "/api/v1/streaming/user", from("198.51.100.7", "nope-1")).status, 401);
  EXPECT_EQ(http_request(cluster.port(), "GET", "/api/v1/streaming/user", from("198.51.100.7", "nope-2")).status, 401);
  auto refused = http_request(cluster.port(), "GET", "/api/v1/streaming/user", from("198.51.100.7", "nope-3"));
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.body, R"({"error":"Too many failed authentication attempts"})");
  EXPECT_EQ(refused.header("retry-after"), "5");
  WsClient refused_ws(cluster.port(), "/api/v1/streaming?stream=user", from("198.51.100.7", "nope-4"));
  EXPECT_EQ(refused_ws.response().status, 429);
  // Another address with a valid token streams as usual.
  SseClient other(cluster.port(), "/api/v1/streaming/user", from("198.51.100.8", viewer.token));
  EXPECT_EQ(other.response().status, 200);
  EXPECT_EQ(refusals(cluster.port(), "auth_failures"), 2);
  // The budget refills with time: a valid token from the address is admitted again.
  ASSERT_TRUE(eventually([&] {
    SseClient again(cluster.port(), "/api/v1/streaming/user", from("198.51.100.7", viewer.token));
    return again.response().status == 200;
  }, 10s));
}

// docs/protocol.md#auth-overload: lookups queue for PostgreSQL up to SLUICE_AUTH_QUEUE_MAX;
// beyond, the client gets 503 with Retry-After at once instead of joining a pile-up.
TEST_P(AdmissionLimits, FullAuthQueueAnswers503WithRetryAfter) {
  Cluster cluster(GetParam(), {{"DB_POOL", "1"}, {"SLUICE_AUTH_QUEUE_MAX", "1"}, {"SLUICE_TOKEN_NEGATIVE_CACHE_TTL_MS", "0"}});
  auto viewer = create_account(suite_postgres(), "limit_queue");
  // Hold the token table so that the one pool connection's query waits.
  pqxx::connection locker(suite_postgres().conninfo());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE oauth_access_tokens IN ACCESS EXCLUSIVE MODE");
  std::vector<std::thread> waiting;
  auto release = [&] {
    if (waiting.empty()) return;
    lock.abort();
    for (auto& thread : waiting) thread.join();
    waiting.clear();
  };
  struct Release {
    std::function<void()> run;
    ~Release() { run(); }
  } release_on_exit{release};
  auto send_and_wait = [&](const std::string& token) {
    waiting.emplace_back([&, token] { http_request(cluster.port(), "GET", "/api/v1/streaming/user", bearer(token), 30s); });
  };
  send_and_wait("queued-1");
  // Wait until that query holds the pool's connection (it waits on the lock).
  ASSERT_TRUE(eventually([&] {
    return suite_postgres().query_value(
               "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%oauth_access_tokens%'") == "1";
  }, 10s));
  send_and_wait("queued-2");
  int probes = 0;
  ASSERT_TRUE(eventually([&] {
    // A probe that finds the queue free waits in it; it gives up after 2 s and the next
    // one finds the queue full. Each probe has its own token: lookups of one token
    // share a single query and would wait together instead.
    auto busy = http_request(cluster.port(), "GET", "/api/v1/streaming/user",
                             bearer("probe-" + std::to_string(++probes)), 2s);
    if (busy.status != 503) return false;
    EXPECT_EQ(busy.body, R"({"error":"Service busy"})");
    EXPECT_EQ(busy.header("retry-after"), "5");
    return true;
  }, 20s));
  release();
  EXPECT_GE(refusals(cluster.port(), "auth_busy"), 1);
  // Once PostgreSQL answers again, so does the auth tier.
  SseClient after(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  EXPECT_EQ(after.response().status, 200);
}

INSTANTIATE_TEST_SUITE_P(Deployments, AdmissionLimits, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
