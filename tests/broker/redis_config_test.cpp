// REDIS_* configuration (docs/protocol.md#redis-configuration).
#include "broker/redis_config.hpp"

#include <gtest/gtest.h>

#include "common/config_error.hpp"

namespace sluice {
namespace {

RedisConfig from(std::map<std::string, std::string> vars) { return redis_config_from_env(Env::from_map(std::move(vars))); }

std::string error_of(std::map<std::string, std::string> vars) {
  try {
    redis_config_from_env(Env::from_map(std::move(vars)));
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(RedisConfig, DefaultsAreLocalhost6379Db0) {
  RedisConfig config = from({});
  EXPECT_EQ(config.mode, RedisConfig::Mode::tcp);
  EXPECT_EQ(config.host, "127.0.0.1");
  EXPECT_EQ(config.port, 6379);
  EXPECT_EQ(config.db, 0);
  EXPECT_EQ(config.username, "");
  EXPECT_EQ(config.password, "");
  EXPECT_EQ(config.redis_namespace, "");
}

TEST(RedisConfig, HostPortDbUserPassword) {
  RedisConfig config = from({{"REDIS_HOST", "redis.internal"},
                             {"REDIS_PORT", "6380"},
                             {"REDIS_DB", "3"},
                             {"REDIS_USERNAME", "mastodon"},
                             {"REDIS_PASSWORD", "secret"}});
  EXPECT_EQ(config.mode, RedisConfig::Mode::tcp);
  EXPECT_EQ(config.host, "redis.internal");
  EXPECT_EQ(config.port, 6380);
  EXPECT_EQ(config.db, 3);
  EXPECT_EQ(config.username, "mastodon");
  EXPECT_EQ(config.password, "secret");
}

// Mastodon 4.3.1 and later read REDIS_USER (mastodon#32493); 4.3.0 read REDIS_USERNAME.
TEST(RedisConfig, RedisUserWinsOverTheOlderRedisUsername) {
  EXPECT_EQ(from({{"REDIS_USER", "new"}}).username, "new");
  EXPECT_EQ(from({{"REDIS_USER", "new"}, {"REDIS_USERNAME", "old"}}).username, "new");
  EXPECT_EQ(from({{"REDIS_USERNAME", "old"}}).username, "old");
  RedisConfig sentinel = from({{"REDIS_USER", "u"}, {"REDIS_SENTINELS", "10.0.0.1"}, {"REDIS_SENTINEL_MASTER", "m"}});
  EXPECT_EQ(sentinel.sentinel_username, "u");
}

TEST(RedisConfig, EmptyHostStaysEmpty) { EXPECT_EQ(from({{"REDIS_HOST", ""}}).host, ""); }

TEST(RedisConfig, IntegersUseLeadingIntegerParse) {
  RedisConfig config = from({{"REDIS_PORT", "6380abc"}, {"REDIS_DB", " 2x"}});
  EXPECT_EQ(config.port, 6380);
  EXPECT_EQ(config.db, 2);
}

TEST(RedisConfig, EmptyIntegerMeansDefault) {
  RedisConfig config = from({{"REDIS_PORT", ""}, {"REDIS_DB", ""}});
  EXPECT_EQ(config.port, 6379);
  EXPECT_EQ(config.db, 0);
}

TEST(RedisConfig, InvalidIntegersNameTheVariable) {
  EXPECT_EQ(error_of({{"REDIS_PORT", "abc"}}), "Invalid REDIS_PORT environment variable: abc");
  EXPECT_EQ(error_of({{"REDIS_DB", "x1"}}), "Invalid REDIS_DB environment variable: x1");
  EXPECT_EQ(error_of({{"REDIS_SENTINELS", "s1"}, {"REDIS_SENTINEL_MASTER", "m"}, {"REDIS_SENTINEL_PORT", "no"}}),
            "Invalid REDIS_SENTINEL_PORT environment variable: no");
}

TEST(RedisConfig, UrlWithEverything) {
  RedisConfig config = from({{"REDIS_URL", "redis://user:p%40ss@redis.example:6390/4"}});
  EXPECT_EQ(config.mode, RedisConfig::Mode::tcp);
  EXPECT_EQ(config.host, "redis.example");
  EXPECT_EQ(config.port, 6390);
  EXPECT_EQ(config.db, 4);
  EXPECT_EQ(config.username, "user");
  EXPECT_EQ(config.password, "p@ss");
}

TEST(RedisConfig, UrlPasswordOnlyAndDefaults) {
  RedisConfig config = from({{"REDIS_URL", "redis://:secret@cache"}});
  EXPECT_EQ(config.host, "cache");
  EXPECT_EQ(config.port, 6379);
  EXPECT_EQ(config.db, 0);
  EXPECT_EQ(config.username, "");
  EXPECT_EQ(config.password, "secret");
}

TEST(RedisConfig, UrlWithIpv6Host) {
  RedisConfig config = from({{"REDIS_URL", "redis://[::1]:6391/2"}});
  EXPECT_EQ(config.host, "::1");
  EXPECT_EQ(config.port, 6391);
  EXPECT_EQ(config.db, 2);
}

TEST(RedisConfig, UrlIgnoresTheOtherVariables) {
  RedisConfig config = from({{"REDIS_URL", "redis://cache:7000"},
                             {"REDIS_HOST", "other"},
                             {"REDIS_PORT", "not a number"},
                             {"REDIS_DB", "5"},
                             {"REDIS_PASSWORD", "ignored"},
                             {"REDIS_SENTINELS", "s1"},
                             {"REDIS_SENTINEL_MASTER", "m"},
                             {"REDIS_NAMESPACE", "ns"}});
  EXPECT_EQ(config.mode, RedisConfig::Mode::tcp);
  EXPECT_EQ(config.host, "cache");
  EXPECT_EQ(config.port, 7000);
  EXPECT_EQ(config.db, 0);
  EXPECT_EQ(config.password, "");
  EXPECT_EQ(config.redis_namespace, "ns");
}

TEST(RedisConfig, EmptyUrlFallsThrough) {
  RedisConfig config = from({{"REDIS_URL", ""}, {"REDIS_HOST", "h"}});
  EXPECT_EQ(config.host, "h");
}

TEST(RedisConfig, UnixSocketUrl) {
  RedisConfig config = from({{"REDIS_URL", "unix:///run/redis/redis.sock"}});
  EXPECT_EQ(config.mode, RedisConfig::Mode::unix_socket);
  EXPECT_EQ(config.path, "/run/redis/redis.sock");
  EXPECT_EQ(config.db, 0);
}

TEST(RedisConfig, UnixSocketUrlWithDb) {
  RedisConfig config = from({{"REDIS_URL", "unix:///run/redis/redis.sock?db=7"}});
  EXPECT_EQ(config.mode, RedisConfig::Mode::unix_socket);
  EXPECT_EQ(config.path, "/run/redis/redis.sock");
  EXPECT_EQ(config.db, 7);
}

TEST(RedisConfig, TlsUrlTurnsOnTlsWithNodesExtraCaFile) {
  RedisConfig config = from({{"REDIS_URL", "rediss://u:secret@cache.example:6380/2"}, {"NODE_EXTRA_CA_CERTS", "/ca.pem"}});
  EXPECT_TRUE(config.tls);
  EXPECT_EQ(config.mode, RedisConfig::Mode::tcp);
  EXPECT_EQ(config.host, "cache.example");
  EXPECT_EQ(config.port, 6380);
  EXPECT_EQ(config.db, 2);
  EXPECT_EQ(config.username, "u");
  EXPECT_EQ(config.password, "secret");
  EXPECT_EQ(config.tls_extra_ca_file, "/ca.pem");
  EXPECT_EQ(config.describe(), "rediss://cache.example:6380/2");
  EXPECT_TRUE(config.tls_verify);
  EXPECT_FALSE(from({{"REDIS_URL", "redis://cache:6380"}}).tls);
  // Node's NODE_TLS_REJECT_UNAUTHORIZED=0: nothing verified, and another connection.
  RedisConfig unverified = from({{"REDIS_URL", "rediss://cache.example:6380/2"}, {"NODE_TLS_REJECT_UNAUTHORIZED", "0"}});
  EXPECT_FALSE(unverified.tls_verify);
  EXPECT_NE(unverified.connection_key(), from({{"REDIS_URL", "rediss://cache.example:6380/2"}}).connection_key());
  EXPECT_TRUE(from({{"REDIS_URL", "rediss://cache.example:6380/2"}, {"NODE_TLS_REJECT_UNAUTHORIZED", "1"}}).tls_verify);
}

TEST(RedisConfig, BadUrlsNameTheVariableWithoutThePassword) {
  std::string bad_port = error_of({{"REDIS_URL", "redis://u:hunter2@cache:port/1"}});
  EXPECT_EQ(bad_port, "Invalid REDIS_URL environment variable: redis://u:[Redacted]@cache:port/1 (bad port)");
  EXPECT_EQ(error_of({{"REDIS_URL", "redis://cache/abc"}}),
            "Invalid REDIS_URL environment variable: redis://cache/abc (the database must be a number)");
  EXPECT_EQ(error_of({{"REDIS_URL", "http://cache"}}),
            "Invalid REDIS_URL environment variable: http://cache (expected redis://, rediss:// or unix://)");
  EXPECT_EQ(error_of({{"REDIS_URL", "unix://"}}), "Invalid REDIS_URL environment variable: unix:// (no socket path)");
}

TEST(RedisConfig, Sentinel) {
  RedisConfig config = from({{"REDIS_SENTINELS", "s1:26380, s2,[::1]:26390"},
                             {"REDIS_SENTINEL_MASTER", "mymaster"},
                             {"REDIS_DB", "2"},
                             {"REDIS_USERNAME", "user"},
                             {"REDIS_PASSWORD", "pass"},
                             {"REDIS_HOST", "ignored"}});
  EXPECT_EQ(config.mode, RedisConfig::Mode::sentinel);
  ASSERT_EQ(config.sentinels.size(), 3u);
  EXPECT_EQ(config.sentinels[0].host, "s1");
  EXPECT_EQ(config.sentinels[0].port, 26380);
  EXPECT_EQ(config.sentinels[1].host, "s2");
  EXPECT_EQ(config.sentinels[1].port, 26379);
  EXPECT_EQ(config.sentinels[2].host, "::1");
  EXPECT_EQ(config.sentinels[2].port, 26390);
  EXPECT_EQ(config.sentinel_master, "mymaster");
  EXPECT_EQ(config.db, 2);
  EXPECT_EQ(config.username, "user");
  EXPECT_EQ(config.password, "pass");
  // Sentinel auth defaults to the data connection's.
  EXPECT_EQ(config.sentinel_username, "user");
  EXPECT_EQ(config.sentinel_password, "pass");
}

TEST(RedisConfig, SentinelPortAndOwnCredentials) {
  RedisConfig config = from({{"REDIS_SENTINELS", "a,b:1"},
                             {"REDIS_SENTINEL_MASTER", "m"},
                             {"REDIS_SENTINEL_PORT", "5000"},
                             {"REDIS_PASSWORD", "data"},
                             {"REDIS_SENTINEL_USERNAME", "sentry"},
                             {"REDIS_SENTINEL_PASSWORD", "watch"}});
  ASSERT_EQ(config.sentinels.size(), 2u);
  EXPECT_EQ(config.sentinels[0].port, 5000);
  EXPECT_EQ(config.sentinels[1].port, 1);
  EXPECT_EQ(config.sentinel_username, "sentry");
  EXPECT_EQ(config.sentinel_password, "watch");
  EXPECT_EQ(config.password, "data");
}

TEST(RedisConfig, SentinelNeedsBothVariables) {
  EXPECT_EQ(from({{"REDIS_SENTINELS", "s1"}}).mode, RedisConfig::Mode::tcp);
  EXPECT_EQ(from({{"REDIS_SENTINEL_MASTER", "m"}}).mode, RedisConfig::Mode::tcp);
  EXPECT_EQ(from({{"REDIS_SENTINELS", ""}, {"REDIS_SENTINEL_MASTER", "m"}}).mode, RedisConfig::Mode::tcp);
}

TEST(RedisConfig, BadSentinelList) {
  EXPECT_EQ(error_of({{"REDIS_SENTINELS", "s1:x"}, {"REDIS_SENTINEL_MASTER", "m"}}),
            "Invalid REDIS_SENTINELS environment variable: s1:x");
  EXPECT_EQ(error_of({{"REDIS_SENTINELS", " , "}, {"REDIS_SENTINEL_MASTER", "m"}}),
            "Invalid REDIS_SENTINELS environment variable:  , ");
}

TEST(RedisConfig, NamespaceHelpers) {
  RedisConfig config = from({{"REDIS_NAMESPACE", "mastodon"}});
  EXPECT_EQ(config.with_namespace("timeline:public"), "mastodon:timeline:public");
  EXPECT_EQ(config.without_namespace("mastodon:timeline:public"), "timeline:public");
  // Cut without checking, like the reference.
  EXPECT_EQ(config.without_namespace("xxxxxxxxxtimeline:1"), "timeline:1");
  EXPECT_EQ(config.without_namespace("short"), "");
}

TEST(RedisConfig, NoNamespace) {
  RedisConfig config = from({{"REDIS_NAMESPACE", ""}});
  EXPECT_EQ(config.with_namespace("timeline:public"), "timeline:public");
  EXPECT_EQ(config.without_namespace("timeline:public"), "timeline:public");
}

TEST(RedisConfig, DescribeNeverShowsThePassword) {
  RedisConfig config = from({{"REDIS_URL", "redis://u:topsecret@cache:6390/1"}});
  EXPECT_EQ(config.describe(), "cache:6390/1");
}

}  // namespace
}  // namespace sluice
