// docs/protocol.md#redis-tls: REDIS_URL=rediss://… speaks TLS to Redis (here
// redis-server --tls-port), verifying the server's certificate against the system's
// CAs plus NODE_EXTRA_CA_CERTS, as the reference (Node, ioredis) does.
#include <gtest/gtest.h>

#include "tests/e2e/cluster.hpp"
#include "tests/support/pki.hpp"

namespace sluice::testing {
namespace {

class RedisTls : public ::testing::TestWithParam<Deployment> {};

struct TlsRedis {
  explicit TlsRedis(const std::string& subject_alt_names = "DNS:localhost,IP:127.0.0.1") {
    pki.make_ca("redis-ca");
    pki.make_cert("redis", "redis-ca", subject_alt_names);
    server = std::make_unique<RedisServer>(pki.path("redis.pem"), pki.path("redis.key"));
  }
  std::string url(const std::string& host) const {
    return "rediss://" + host + ":" + std::to_string(server->tls_port()) + "/0";
  }
  TestPki pki;
  std::unique_ptr<RedisServer> server;
};

TEST_P(RedisTls, EventsFlowOverRediss) {
  TlsRedis redis;
  Cluster cluster(GetParam(), {{"REDIS_URL", redis.url("localhost")},
                               {"NODE_EXTRA_CA_CERTS", redis.pki.path("redis-ca.pem")}});
  auto viewer = create_account(suite_postgres(), "rediss");
  std::string channel = "timeline:" + std::to_string(viewer.account_id);
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=user", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  ASSERT_TRUE(ws.upgraded());
  // The broker subscribed over TLS: the server (seen on its plain port) counts it.
  ASSERT_TRUE(eventually([&] { return redis.server->numsub(channel) == 1; }, 10s)) << cluster.logs();
  // Many events, some large, to cross TLS record and read-buffer boundaries.
  for (int i = 0; i < 200; ++i) {
    redis.server->publish(channel, R"({"event":"delete","payload":")" + std::to_string(i) + std::string(i * 200, 'x') + "\"}");
  }
  for (int i = 0; i < 200; ++i) {
    auto event = sse.next_event(10s);
    ASSERT_TRUE(event) << i;
    ASSERT_EQ(event->data, std::to_string(i) + std::string(i * 200, 'x'));
    auto text = ws.next_text(10s);
    ASSERT_TRUE(text) << i;
  }
  // The heartbeat keys go over the same TLS connection.
  EXPECT_TRUE(eventually([&] { return redis.server->command({"EXISTS", "subscribed:" + channel}) == "1"; }, 10s));
}

// Refused on every attempt, not only the first: the retries (logged at debug) fail the
// same way, and nothing ever subscribed. Both connections (subscriber and commands) log
// each refusal, so six lines are several attempts of each.
void expect_every_attempt_refused(Cluster& cluster, TlsRedis& redis) {
  EXPECT_TRUE(eventually([&] { return count_occurrences(cluster.full_logs(), "certificate verify failed") >= 6; }, 15s))
      << cluster.logs();
  EXPECT_EQ(redis.server->integer({"PUBSUB", "NUMPAT"}), 0);
  EXPECT_EQ(redis.server->command({"PUBSUB", "CHANNELS"}), "");
}

TEST_P(RedisTls, UntrustedCertificateIsRefused) {
  TlsRedis redis;
  // Without NODE_EXTRA_CA_CERTS the test CA is unknown: the connection must fail.
  Cluster cluster(GetParam(), {{"REDIS_URL", redis.url("localhost")}, {"LOG_LEVEL", "debug"}});
  expect_every_attempt_refused(cluster, redis);
}

TEST_P(RedisTls, CertificateForAnotherNameIsRefused) {
  TlsRedis redis("DNS:redis.elsewhere.example");
  Cluster wrong_name(GetParam(), {{"REDIS_URL", redis.url("localhost")},
                                  {"NODE_EXTRA_CA_CERTS", redis.pki.path("redis-ca.pem")},
                                  {"LOG_LEVEL", "debug"}});
  expect_every_attempt_refused(wrong_name, redis);
}

// NODE_TLS_REJECT_UNAUTHORIZED=0 turns Node's certificate check off for ioredis too: a
// certificate from an unknown CA, for another name, is accepted (a warning says so).
TEST_P(RedisTls, NodeTlsRejectUnauthorizedZeroAcceptsAnyCertificate) {
  TlsRedis redis("DNS:redis.elsewhere.example");
  Cluster cluster(GetParam(), {{"REDIS_URL", redis.url("localhost")}, {"NODE_TLS_REJECT_UNAUTHORIZED", "0"}});
  auto viewer = create_account(suite_postgres(), "rediss_unverified");
  std::string channel = "timeline:" + std::to_string(viewer.account_id);
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  ASSERT_TRUE(eventually([&] { return redis.server->numsub(channel) == 1; }, 10s)) << cluster.logs();
  redis.server->publish(channel, R"({"event":"delete","payload":"7"})");
  auto event = sse.next_event(10s);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->data, "7");
  EXPECT_NE(cluster.full_logs().find("Redis certificates are not verified"), std::string::npos);
}

// Node warns about an extra CA file it cannot load and goes on with its own CAs; so do
// the broker here and the auth tier for PostgreSQL.
TEST(RedisTlsConfig, AnUnreadableExtraCaFileIsAWarning) {
  TempDir dir;
  std::map<std::string, std::string> env = {{"REDIS_URL", "rediss://localhost:1"},
                                            {"NODE_EXTRA_CA_CERTS", dir.path() + "/missing.pem"},
                                            {"SLUICE_ENV_DIR", dir.path()},
                                            {"SLUICE_BROKER_LISTEN", "127.0.0.1:" + std::to_string(free_port())},
                                            {"SLUICE_BROKER_ADMIN_LISTEN", ""}};
  Process broker({bin_dir() + "/sluice-broker"}, env, dir.path() + "/broker.log");
  // A later marker than the warning: it went on to connect (and failed: nothing listens).
  EXPECT_TRUE(eventually([&] { return read_file(dir.path() + "/broker.log").find("Redis connection failed") != std::string::npos; }, 20s))
      << read_file(dir.path() + "/broker.log");
  const std::string log = read_file(dir.path() + "/broker.log");
  EXPECT_NE(log.find("NODE_EXTRA_CA_CERTS cannot be loaded"), std::string::npos) << log;
  EXPECT_EQ(broker.wait(std::chrono::milliseconds(0)), -1) << "the broker stopped: " << log;
}

INSTANTIATE_TEST_SUITE_P(Deployments, RedisTls, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
