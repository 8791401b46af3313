// docs/protocol.md#http-surface: middleware order, CORS, request ids, unauthenticated routes,
// unknown channels before authentication, JSON errors, database failures.
#include <gtest/gtest.h>

#include <regex>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class HttpSurface : public ::testing::TestWithParam<Deployment> {};

const std::regex kUuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");

TEST_P(HttpSurface, OptionsIsAnsweredBeforeRoutingAndAuth) {
  Cluster cluster(GetParam());
  for (const char* path : {"/api/v1/streaming/user", "/anything/at/all", "/metrics"}) {
    auto response = http_request(cluster.port(), "OPTIONS", path, {{"Access-Control-Request-Headers", "authorization"}});
    EXPECT_EQ(response.status, 204) << path;
    EXPECT_EQ(response.header("access-control-allow-origin"), "*");
    EXPECT_EQ(response.header("access-control-allow-methods"), "GET,HEAD,PUT,PATCH,POST,DELETE");
    EXPECT_EQ(response.header("access-control-allow-headers"), "authorization");
    EXPECT_EQ(response.header("vary"), "Access-Control-Request-Headers");
    EXPECT_EQ(response.header("content-length"), "0");
    EXPECT_TRUE(std::regex_match(response.header("x-request-id"), kUuid));
  }
  auto bare = http_request(cluster.port(), "OPTIONS", "/api/v1/streaming/public");
  EXPECT_EQ(bare.status, 204);
  EXPECT_EQ(bare.header("access-control-allow-headers"), "");
}

TEST_P(HttpSurface, HealthFaviconAndMetricsNeedNoToken) {
  Cluster cluster(GetParam());
  for (const char* path : {"/api/v1/streaming/health", "/api/v1/streaming/health/", "/API/V1/Streaming/Health"}) {
    auto health = http_request(cluster.port(), "GET", path);
    EXPECT_EQ(health.status, 200) << path;
    EXPECT_EQ(health.body, "OK");
    EXPECT_EQ(health.header("content-type"), "text/plain");
    EXPECT_EQ(health.header("cache-control"), "private, no-store");
    EXPECT_EQ(health.header("access-control-allow-origin"), "*");
    EXPECT_TRUE(std::regex_match(health.header("x-request-id"), kUuid));
  }
  auto head = http_request(cluster.port(), "HEAD", "/api/v1/streaming/health");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  auto favicon = http_request(cluster.port(), "GET", "/favicon.ico");
  EXPECT_EQ(favicon.status, 404);
  EXPECT_EQ(favicon.body, "");
  auto metrics = http_request(cluster.port(), "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("cache-control"), "private, no-store");
  EXPECT_NE(metrics.body.find("# TYPE connected_clients gauge"), std::string::npos);
}

TEST_P(HttpSurface, UnknownChannelIsRefusedBeforeAuthentication) {
  Cluster cluster(GetParam());
  for (const char* path : {"/foo", "/api/v1/streaming", "/api/v1/streaming/user/", "/api/v1/streaming/nope",
                           "/api/v1/streaming/USER"}) {
    auto response = http_request(cluster.port(), "GET", path);
    EXPECT_EQ(response.status, 400) << path;
    EXPECT_EQ(response.header("content-type"), "application/json");
    EXPECT_EQ(response.body, R"({"error":"Unknown channel requested"})") << path;
    EXPECT_TRUE(std::regex_match(response.header("x-request-id"), kUuid));
  }
  // Any method goes through the authentication middleware.
  EXPECT_EQ(http_request(cluster.port(), "POST", "/nope").status, 400);
}

TEST_P(HttpSurface, OtherMethodsPassAuthThenFindNoRoute) {
  Cluster cluster(GetParam());
  auto account = create_account(suite_postgres(), "post_user");
  EXPECT_EQ(http_request(cluster.port(), "POST", "/api/v1/streaming/user").status, 401);
  auto post = http_request(cluster.port(), "POST", "/api/v1/streaming/user", bearer(account.token));
  EXPECT_EQ(post.status, 404);
  EXPECT_EQ(post.body, "Cannot POST /api/v1/streaming/user");
}

// docs/protocol.md#head-requests: every answer to HEAD is its headers alone, so the next
// response on the connection is read where it starts. Pipelined on one connection: the
// health route, a refused channel, a missing token, a good token (404), then a GET whose
// answer must come right after the last header block.
TEST_P(HttpSurface, AnswersToHeadCarryNoBodySoTheConnectionStaysInStep) {
  Cluster cluster(GetParam());
  auto account = create_account(suite_postgres(), "head_user");
  const std::string host = "Host: x\r\n";
  std::string requests = "HEAD /api/v1/streaming/health HTTP/1.1\r\n" + host + "\r\n" +
                         "HEAD /foo HTTP/1.1\r\n" + host + "\r\n" +
                         "HEAD /api/v1/streaming/user HTTP/1.1\r\n" + host + "\r\n" +
                         "HEAD /api/v1/streaming/user HTTP/1.1\r\n" + host + "Authorization: Bearer " + account.token +
                         "\r\n\r\n" + "GET /api/v1/streaming/health HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n";
  std::string answers = raw_exchange(cluster.port(), requests, 10s);
  const std::vector<std::string> statuses = {"200", "400", "401", "404", "200"};
  size_t at = 0;
  for (size_t i = 0; i < statuses.size(); ++i) {
    ASSERT_EQ(answers.compare(at, 9, "HTTP/1.1 "), 0) << "answer " << i << " does not start where expected:\n" << answers;
    EXPECT_EQ(answers.substr(at + 9, 3), statuses[i]) << answers;
    size_t end = answers.find("\r\n\r\n", at);
    ASSERT_NE(end, std::string::npos) << answers;
    std::string head = answers.substr(at, end - at);
    std::smatch length;
    ASSERT_TRUE(std::regex_search(head, length, std::regex("\r\n[Cc]ontent-[Ll]ength: ([0-9]+)"))) << head;
    if (i + 1 < statuses.size()) {
      EXPECT_GT(std::stoul(length[1]), 0u) << "HEAD keeps the length of the body it leaves out: " << head;
      at = end + 4;
    } else {
      EXPECT_EQ(answers.substr(end + 4), "OK");
    }
  }
}

TEST_P(HttpSurface, ErrorsOfTheStreamRouteAreJson) {
  Cluster cluster(GetParam());
  auto account = create_account(suite_postgres(), "route_errors");
  auto tag = http_request(cluster.port(), "GET", "/api/v1/streaming/hashtag", bearer(account.token));
  EXPECT_EQ(tag.status, 400);
  EXPECT_EQ(tag.body, R"({"error":"Missing tag name parameter"})");
  auto empty_tag = http_request(cluster.port(), "GET", "/api/v1/streaming/hashtag/local?tag=", bearer(account.token));
  EXPECT_EQ(empty_tag.body, R"({"error":"Missing tag name parameter"})");
  auto list = http_request(cluster.port(), "GET", "/api/v1/streaming/list", bearer(account.token));
  EXPECT_EQ(list.status, 400);
  EXPECT_EQ(list.body, R"({"error":"Missing list name parameter"})");
  auto foreign = http_request(cluster.port(), "GET", "/api/v1/streaming/list?list=999999", bearer(account.token));
  EXPECT_EQ(foreign.status, 401);
  EXPECT_EQ(foreign.body, R"({"error":"Not authorized to stream this list"})");
  auto not_numeric = http_request(cluster.port(), "GET", "/api/v1/streaming/list?list=abc", bearer(account.token));
  EXPECT_EQ(not_numeric.status, 401);
  EXPECT_EQ(not_numeric.body, R"({"error":"Not authorized to stream this list"})");
  auto repeated_tag =
      http_request(cluster.port(), "GET", "/api/v1/streaming/hashtag?tag=a&tag=b", bearer(account.token));
  EXPECT_EQ(repeated_tag.status, 500);
  EXPECT_EQ(repeated_tag.body, R"({"error":"An unexpected error occurred"})");
}

TEST_P(HttpSurface, DatabaseDownGives500ThenRecovers) {
  Cluster cluster(GetParam());
  auto live = create_account(suite_postgres(), "db_live");
  auto fresh = create_account(suite_postgres(), "db_fresh");
  SseClient stream(cluster.port(), "/api/v1/streaming/user", bearer(live.token));
  ASSERT_EQ(stream.response().status, 200);
  std::string channel = "timeline:" + std::to_string(live.account_id);
  ASSERT_TRUE(wait_numsub(channel, 1));

  suite_postgres().stop();
  auto sse = http_request(cluster.port(), "GET", "/api/v1/streaming/user", bearer(fresh.token), 30s);
  WsClient ws(cluster.port(), "/api/v1/streaming?access_token=" + fresh.token);
  // Live streams go on while the database is away.
  suite_redis().publish(channel, R"({"event":"delete","payload":"still-here"})");
  auto event = stream.next_event();
  suite_postgres().start();

  EXPECT_EQ(sse.status, 500);
  EXPECT_EQ(sse.body, R"({"error":"An unexpected error occurred"})");
  EXPECT_EQ(ws.response().status, 500);
  EXPECT_EQ(ws.response().header("x-error-message"), "An unexpected error occurred");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->data, "still-here");
  EXPECT_TRUE(eventually([&] {
    return http_request(cluster.port(), "GET", "/api/v1/streaming/list", bearer(fresh.token)).status == 400;
  }, 30s)) << cluster.logs();
}

INSTANTIATE_TEST_SUITE_P(Deployments, HttpSurface, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
