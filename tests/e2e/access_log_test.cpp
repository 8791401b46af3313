// docs/protocol.md#access-log: a JSON line per answered request and per ended
// stream, and no token in any line of any tier, whichever way the client sent it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class AccessLog : public ::testing::TestWithParam<Deployment> {};

std::vector<nlohmann::json> lines_with_message(const std::string& logs, const std::string& message) {
  std::vector<nlohmann::json> out;
  size_t pos = 0;
  while (pos < logs.size()) {
    size_t end = logs.find('\n', pos);
    if (end == std::string::npos) end = logs.size();
    auto line = nlohmann::json::parse(logs.substr(pos, end - pos), nullptr, false);
    if (line.is_object() && line.value("msg", "") == message) out.push_back(line);
    pos = end + 1;
  }
  return out;
}

TEST_P(AccessLog, EveryRequestAndStreamEndIsLoggedAndNoTokenReachesAnyLine) {
  Cluster cluster(GetParam(), {{"TRUSTED_PROXY_IP", "127.0.0.1"}});
  auto viewer = create_account(suite_postgres(), "access_log");
  // A token that fails and one that works, sent every way a client can send one.
  const std::string bogus = "bogus-token-that-must-never-be-logged";
  EXPECT_EQ(http_request(cluster.port(), "GET", "/api/v1/streaming/user?access_token=" + bogus).status, 401);
  EXPECT_EQ(http_request(cluster.port(), "GET", "/api/v1/streaming/user?access%5Ftoken=" + bogus).status, 401);
  // A good token given twice is an array to the reference, looked up as `{"T","T"}`
  // (docs/protocol.md#token-sources): refused.
  EXPECT_EQ(http_request(cluster.port(), "GET",
                         "/api/v1/streaming/user?access_token=" + viewer.token + "&access_token=" + viewer.token)
                .status,
            401);
  // Express answers other methods 404 after authentication (docs/protocol.md#sse-route-and-other-methods).
  EXPECT_EQ(http_request(cluster.port(), "POST",
                         "/api/v1/streaming/user?access_token=" + viewer.token + "&access_token_hint=" + bogus)
                .status,
            404);
  {
    // Two X-Forwarded-For lines (names differing in case only, so the map keeps both):
    // the client's own claim first, then the line a proxy appended (HAProxy's
    // `option forwardfor`). Read as Node joins them, the address comes from the last.
    SseClient sse(cluster.port(), "/api/v1/streaming/user?access_token=" + viewer.token,
                  {{"X-Forwarded-For", "198.51.100.7"}, {"x-forwarded-for", "203.0.113.9, 127.0.0.1"}});
    ASSERT_EQ(sse.response().status, 200);
    ASSERT_EQ(sse.next_block(), ":)");
  }
  {
    WsClient ws(cluster.port(), "/api/v1/streaming?stream=public", {{"Sec-WebSocket-Protocol", viewer.token}});
    ASSERT_TRUE(ws.upgraded());
    ws.send_text(R"({"type":"subscribe","stream":"user"})");
    ws_settle(ws);
    ws.send_close(1000);
    ASSERT_TRUE(ws.wait_closed(5s));
  }
  {
    WsClient ws(cluster.port(), "/api/v1/streaming", bearer(viewer.token));
    ASSERT_TRUE(ws.upgraded());
    ws.send_close(1000);
    ASSERT_TRUE(ws.wait_closed(5s));
  }
  // The health request after everything else: its line is the marker that the
  // earlier requests' lines have been written.
  const std::string marker = "/api/v1/streaming/health?marker=access-log-done";
  ASSERT_EQ(http_request(cluster.port(), "GET", marker).status, 200);
  std::string logs;
  ASSERT_TRUE(eventually([&] {
    logs = cluster.full_logs();
    return logs.find(marker) != std::string::npos &&
           lines_with_message(logs, "stream ended").size() >= 3;
  }, 10s)) << cluster.logs();

  EXPECT_EQ(logs.find(bogus), std::string::npos) << "a token reached the log";
  EXPECT_EQ(logs.find(viewer.token), std::string::npos) << "a token reached the log";

  auto requests = lines_with_message(logs, "request completed");
  int unauthorized = 0, streams = 0, upgrades = 0, forwarded = 0;
  for (const auto& line : requests) {
    EXPECT_EQ(line["level"], "info");
    EXPECT_TRUE(line.contains("req_id") && line.contains("duration_ms") && line.contains("bytes") &&
                line.contains("client_ip") && line.contains("method"))
        << line.dump();
    int status = line["status"];
    std::string path = line["path"];
    if (status == 401 || status == 404) {
      unauthorized += status == 401;
      EXPECT_NE(path.find("=[Redacted]"), std::string::npos) << path;
    }
    if (status == 200 && line.value("stream", "") == "user") {
      ++streams;
      // The trusted proxy 127.0.0.1 forwarded for 127.0.0.1, which forwarded for 203.0.113.9
      // (not the 198.51.100.7 the client claimed on its own line).
      if (path == "/api/v1/streaming/user?access_token=[Redacted]") {
        ++forwarded;
        EXPECT_EQ(line["client_ip"], "203.0.113.9");
      }
    }
    if (status == 101) ++upgrades;
  }
  EXPECT_EQ(unauthorized, 3);
  EXPECT_GE(streams, 1);
  EXPECT_EQ(forwarded, 1) << "the forwarded stream's line was not found, so its address went unchecked";
  EXPECT_EQ(upgrades, 2);

  auto ends = lines_with_message(logs, "stream ended");
  bool sse_end = false, ws_end = false;
  for (const auto& line : ends) {
    if (line["type"] == "eventsource" && line["stream"] == "user") sse_end = true;
    if (line["type"] == "websocket" && line["reason"] == "client closed" &&
        line["stream"].get<std::string>().find("public,user") == 0) {
      ws_end = true;
      EXPECT_GT(line["bytes"].get<long long>(), 0);
    }
  }
  EXPECT_TRUE(sse_end) << logs;
  EXPECT_TRUE(ws_end) << logs;
}

INSTANTIATE_TEST_SUITE_P(Deployments, AccessLog, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
