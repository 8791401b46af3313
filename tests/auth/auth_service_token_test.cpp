// LookupToken through a real gRPC channel against a real PostgreSQL (docs/protocol.md#token-lookup),
// with the token cache, its invalidations, single flight, and database failures.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <pqxx/pqxx>
#include <thread>

#include "common/config_error.hpp"
#include "common/auth_stopping.hpp"
#include "tests/auth/auth_test_support.hpp"

namespace sluice {
namespace {

using auth_test::AuthHarness;
using auth_test::eventually;
using auth_test::queries_sent;
using auth_test::shared_pg;
using auth_test::test_config;
using auth_test::unique_name;
using std::chrono::milliseconds;
using testing::TestAccount;

TestAccount account(const std::string& scopes = "read") {
  return testing::create_account(shared_pg(), unique_name("tok"), scopes);
}

// Each test gets its own tier: caches start empty.
class TokenLookupTest : public ::testing::Test {
 protected:
  TokenLookupTest() : harness(test_config()) {}
  AuthHarness harness;
};

TEST_F(TokenLookupTest, FoundTokenCarriesEveryField) {
  auto a = account("read write:statuses");
  auto reply = harness.lookup_ok(a.token);
  EXPECT_TRUE(reply.found());
  EXPECT_EQ(reply.access_token_id(), a.token_id);
  EXPECT_EQ(reply.account_id(), a.account_id);
  EXPECT_EQ(reply.user_id(), a.user_id);
  ASSERT_EQ(reply.scopes_size(), 2);
  EXPECT_EQ(reply.scopes(0), "read");
  EXPECT_EQ(reply.scopes(1), "write:statuses");
  EXPECT_FALSE(reply.has_chosen_languages());
  EXPECT_EQ(reply.permissions(), 0);
}

TEST_F(TokenLookupTest, UnknownTokenIsNotFound) {
  EXPECT_FALSE(harness.lookup_ok("no-such-token").found());
  EXPECT_FALSE(harness.lookup_ok("").found());
}

TEST_F(TokenLookupTest, RevokedTokenIsNotFound) {
  auto a = account();
  shared_pg().exec("UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " + std::to_string(a.token_id));
  EXPECT_FALSE(harness.lookup_ok(a.token).found());
}

TEST_F(TokenLookupTest, DisabledUserIsNotFound) {
  auto a = account();
  shared_pg().exec("UPDATE users SET disabled = true WHERE id = " + std::to_string(a.user_id));
  EXPECT_FALSE(harness.lookup_ok(a.token).found());
}

TEST_F(TokenLookupTest, SuspendedAccountIsNotFound) {
  auto a = account();
  shared_pg().exec("UPDATE accounts SET suspended_at = now() WHERE id = " + std::to_string(a.account_id));
  EXPECT_FALSE(harness.lookup_ok(a.token).found());
}

// `?access_token=<token>%00junk`: the reference sends the whole string, PostgreSQL refuses
// the NUL byte, and the client gets 500. libpq would have sent `<token>` alone.
TEST_F(TokenLookupTest, ATokenWithANulByteIsAnErrorNotItsPrefix) {
  auto a = account();
  const uint64_t before = queries_sent("token");
  v1::TokenReply reply;
  const grpc::Status status = harness.lookup(a.token + std::string("\0junk", 5), &reply);
  // Not UNAVAILABLE: the gateways' retry policy would ask twice more, logging each time.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_FALSE(reply.found());
  EXPECT_EQ(queries_sent("token") - before, 0u) << "nothing to send: PostgreSQL would refuse it";
  EXPECT_TRUE(harness.lookup_ok(a.token).found());
}

TEST_F(TokenLookupTest, SilencedUnconfirmedUnapprovedAndExpiredAreStillFound) {
  // docs/protocol.md#token-lookup: what is not checked.
  auto a = account();
  shared_pg().exec("UPDATE accounts SET silenced_at = now() WHERE id = " + std::to_string(a.account_id) +
                   "; UPDATE users SET confirmed_at = NULL, approved = false WHERE id = " +
                   std::to_string(a.user_id) +
                   "; UPDATE oauth_access_tokens SET expires_in = 1, created_at = now() - interval '1 day' WHERE id = " +
                   std::to_string(a.token_id));
  EXPECT_TRUE(harness.lookup_ok(a.token).found());
}

TEST_F(TokenLookupTest, ApplicationOnlyTokenIsNotFound) {
  std::string token = unique_name("app-token-");
  shared_pg().exec(
      "INSERT INTO oauth_applications (name, uid, secret, redirect_uri) VALUES ('app', '" + token + "', 's', 'urn:x');"
      "INSERT INTO oauth_access_tokens (token, scopes, application_id, resource_owner_id) "
      "SELECT '" + token + "', 'read', id, NULL FROM oauth_applications WHERE uid = '" + token + "'");
  EXPECT_FALSE(harness.lookup_ok(token).found());
}

TEST_F(TokenLookupTest, ScopesAreSplitOnSingleSpaces) {
  auto a = account("read  write ");
  auto reply = harness.lookup_ok(a.token);
  ASSERT_EQ(reply.scopes_size(), 4);
  EXPECT_EQ(reply.scopes(0), "read");
  EXPECT_EQ(reply.scopes(1), "");
  EXPECT_EQ(reply.scopes(2), "write");
  EXPECT_EQ(reply.scopes(3), "");

  auto empty = account("");
  auto empty_reply = harness.lookup_ok(empty.token);
  ASSERT_EQ(empty_reply.scopes_size(), 1);
  EXPECT_EQ(empty_reply.scopes(0), "");
}

TEST_F(TokenLookupTest, NullScopesIsInternalAndNotCached) {
  auto a = account();
  shared_pg().exec("UPDATE oauth_access_tokens SET scopes = NULL WHERE id = " + std::to_string(a.token_id));
  const uint64_t before = queries_sent("token");
  v1::TokenReply reply;
  EXPECT_EQ(harness.lookup(a.token, &reply).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(harness.lookup(a.token, &reply).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(queries_sent("token") - before, 2u);
}

TEST_F(TokenLookupTest, ChosenLanguages) {
  auto none = account();
  auto empty = account();
  auto two = account();
  shared_pg().exec("UPDATE users SET chosen_languages = '{}' WHERE id = " + std::to_string(empty.user_id) +
                   "; UPDATE users SET chosen_languages = '{en,de}' WHERE id = " + std::to_string(two.user_id));
  auto r_none = harness.lookup_ok(none.token);
  EXPECT_FALSE(r_none.has_chosen_languages());
  EXPECT_EQ(r_none.chosen_languages_size(), 0);
  auto r_empty = harness.lookup_ok(empty.token);
  EXPECT_TRUE(r_empty.has_chosen_languages());
  EXPECT_EQ(r_empty.chosen_languages_size(), 0);
  auto r_two = harness.lookup_ok(two.token);
  EXPECT_TRUE(r_two.has_chosen_languages());
  ASSERT_EQ(r_two.chosen_languages_size(), 2);
  EXPECT_EQ(r_two.chosen_languages(0), "en");
  EXPECT_EQ(r_two.chosen_languages(1), "de");
}

TEST_F(TokenLookupTest, PermissionsComeFromTheRoleOnly) {
  auto with_role = account();
  auto without_role = account();
  std::string role = shared_pg().query_value(
      "INSERT INTO user_roles (name, permissions) VALUES ('" + unique_name("role") + "', 1048577) RETURNING id");
  // The `everyone` role (id -99) is not looked at.
  shared_pg().exec(
      "INSERT INTO user_roles (id, name, permissions) VALUES (-99, 'everyone', 65536) ON CONFLICT (id) DO NOTHING;"
      "UPDATE users SET role_id = " + role + " WHERE id = " + std::to_string(with_role.user_id));
  EXPECT_EQ(harness.lookup_ok(with_role.token).permissions(), 1048577);
  EXPECT_EQ(harness.lookup_ok(without_role.token).permissions(), 0);
}

TEST_F(TokenLookupTest, SecondLookupIsACacheHit) {
  auto a = account();
  const uint64_t before = queries_sent("token");
  const uint64_t hits = auth_test::cache_hits("token");
  EXPECT_TRUE(harness.lookup_ok(a.token).found());
  EXPECT_EQ(queries_sent("token") - before, 1u);
  auto again = harness.lookup_ok(a.token);
  EXPECT_TRUE(again.found());
  EXPECT_EQ(again.access_token_id(), a.token_id);
  EXPECT_EQ(queries_sent("token") - before, 1u);
  EXPECT_EQ(auth_test::cache_hits("token") - hits, 1u);
}

TEST(TokenCacheTest, NegativeAnswersExpire) {
  auth_test::ManualClock clock;
  auto config = test_config();
  config.cache.now = clock.function();
  AuthHarness harness(config);
  const std::string token = unique_name("later-token-");
  const uint64_t before = queries_sent("token");
  EXPECT_FALSE(harness.lookup_ok(token).found());
  // The token appears, but the negative answer holds for SLUICE_TOKEN_NEGATIVE_CACHE_TTL_MS.
  auto a = account();
  shared_pg().exec("UPDATE oauth_access_tokens SET token = '" + token + "' WHERE id = " + std::to_string(a.token_id));
  clock.advance(milliseconds(999));
  EXPECT_FALSE(harness.lookup_ok(token).found());
  EXPECT_EQ(queries_sent("token") - before, 1u);
  clock.advance(milliseconds(1));
  EXPECT_TRUE(harness.lookup_ok(token).found());
  EXPECT_EQ(queries_sent("token") - before, 2u);
}

// A cached answer also says how old it is: a gateway asks again, past every cache, when
// the token was killed after its answer was produced (gateway/recent_kills.hpp).
TEST(TokenCacheTest, PositiveAnswersExpireAndReportTheirAge) {
  auth_test::ManualClock clock;
  auto config = test_config();
  config.cache.now = clock.function();
  config.cache.token_ttl = milliseconds(30000);
  AuthHarness harness(config);
  auto a = account();
  const v1::TokenReply fresh = harness.lookup_ok(a.token);
  EXPECT_TRUE(fresh.found());
  EXPECT_EQ(fresh.age_ms(), 0);
  shared_pg().exec("UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " + std::to_string(a.token_id));
  clock.advance(milliseconds(29999));
  const v1::TokenReply cached = harness.lookup_ok(a.token);
  EXPECT_TRUE(cached.found()) << "no kill was received: cached until the TTL";
  EXPECT_EQ(cached.age_ms(), 29999);
  clock.advance(milliseconds(1));
  EXPECT_FALSE(harness.lookup_ok(a.token).found());
}

TEST(TokenCacheTest, ZeroTtlQueriesEveryTime) {
  auto config = test_config();
  config.cache.token_ttl = milliseconds(0);
  config.cache.token_negative_ttl = milliseconds(0);
  AuthHarness harness(config);
  auto a = account();
  const uint64_t before = queries_sent("token");
  harness.lookup_ok(a.token);
  harness.lookup_ok(a.token);
  harness.lookup_ok("unknown");
  harness.lookup_ok("unknown");
  EXPECT_EQ(queries_sent("token") - before, 4u);
}

TEST_F(TokenLookupTest, ForgetAccessTokenRefusesARevokedTokenAtOnce) {
  auto a = account();
  auto other = account();
  EXPECT_TRUE(harness.lookup_ok(a.token).found());
  EXPECT_TRUE(harness.lookup_ok(other.token).found());
  shared_pg().exec("UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " + std::to_string(a.token_id));
  EXPECT_TRUE(harness.lookup_ok(a.token).found()) << "still cached before the kill";
  harness.tier().cache().forget_access_token(a.token_id);
  const uint64_t before = queries_sent("token");
  EXPECT_FALSE(harness.lookup_ok(a.token).found());
  EXPECT_TRUE(harness.lookup_ok(other.token).found());
  EXPECT_EQ(queries_sent("token") - before, 1u) << "the other token stayed cached";
}

// docs/protocol.md#token-lookup: while the system events that carry kills may be missed
// (no broker stream up), a cached answer is not trusted: a revocation made meanwhile is
// seen at once, as the reference, which queries every time, sees it.
TEST_F(TokenLookupTest, WhileSystemEventsMayBeMissedCachedTokensAreNotTrusted) {
  auto a = account();
  EXPECT_TRUE(harness.lookup_ok(a.token).found());
  shared_pg().exec("UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " + std::to_string(a.token_id));
  std::atomic<bool> live{true};
  harness.tier().set_system_events_live([&](const std::string&) { return live.load(); });
  EXPECT_TRUE(harness.lookup_ok(a.token).found()) << "cached while system events flow";
  live = false;
  EXPECT_FALSE(harness.lookup_ok(a.token).found()) << "a cached answer was trusted while kills could be missed";
  // Nor is what is looked up meanwhile kept: a revocation before the events are live
  // again would never drop it.
  auto b = account();
  EXPECT_TRUE(harness.lookup_ok(b.token).found());
  shared_pg().exec("UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " + std::to_string(b.token_id));
  live = true;
  EXPECT_FALSE(harness.lookup_ok(b.token).found()) << "an answer fetched while not live was kept";
  harness.tier().set_system_events_live({});
}

TEST_F(TokenLookupTest, ForgetAccountDropsEveryTokenOfTheAccount) {
  auto a = account();
  std::string second_token = unique_name("second-token-");
  std::string second_id = shared_pg().query_value(
      "INSERT INTO oauth_access_tokens (token, scopes, resource_owner_id) VALUES ('" + second_token + "', 'read', " +
      std::to_string(a.user_id) + ") RETURNING id");
  EXPECT_TRUE(harness.lookup_ok(a.token).found());
  EXPECT_TRUE(harness.lookup_ok(second_token).found());
  harness.relations(a.account_id);
  harness.filters(a.account_id);
  shared_pg().exec("UPDATE users SET disabled = true WHERE id = " + std::to_string(a.user_id));
  harness.tier().cache().forget_account(a.account_id);
  EXPECT_FALSE(harness.lookup_ok(a.token).found());
  EXPECT_FALSE(harness.lookup_ok(second_token).found());
  const uint64_t relations = queries_sent("relations"), filters = queries_sent("filters");
  harness.relations(a.account_id);
  harness.filters(a.account_id);
  EXPECT_EQ(queries_sent("relations") - relations, 1u);
  EXPECT_EQ(queries_sent("filters") - filters, 1u);
}

TEST_F(TokenLookupTest, ConcurrentLookupsOfOneTokenSendOneQuery) {
  auto a = account();
  constexpr int kCallers = 40;
  // Hold the table so the first query waits inside PostgreSQL while the others arrive.
  pqxx::connection blocker(shared_pg().conninfo());
  pqxx::work lock(blocker);
  lock.exec("LOCK TABLE oauth_access_tokens IN ACCESS EXCLUSIVE MODE");

  const uint64_t before = queries_sent("token");
  const uint64_t misses = auth_test::cache_misses("token");
  std::atomic<int> found{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&] {
      if (harness.lookup_ok(a.token).found()) ++found;
    });
  }
  ASSERT_TRUE(eventually([&] { return auth_test::cache_misses("token") - misses == kCallers; }));
  EXPECT_EQ(queries_sent("token") - before, 1u);
  lock.abort();
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(found, kCallers);
  EXPECT_EQ(queries_sent("token") - before, 1u);
}

TEST(TokenDatabaseTest, PostgresDownIsUnavailableThenRecovers) {
  auto config = test_config();
  AuthHarness harness(config);
  auto a = account();
  ASSERT_TRUE(eventually([&] { return harness.tier().ready(); }));
  std::atomic<int> changes_to_false{0}, changes_to_true{0};
  harness.tier().set_readiness_callback([&](bool ready) { ++(ready ? changes_to_true : changes_to_false); });
  EXPECT_FALSE(harness.lookup_ok("warm-the-pool").found());  // leaves an idle connection to break

  auth_test::stop_shared_pg();
  v1::TokenReply reply;
  grpc::Status status = harness.lookup(a.token, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_FALSE(reply.found());
  EXPECT_TRUE(eventually([&] { return !harness.tier().ready(); }));
  EXPECT_GE(changes_to_false.load(), 1);

  shared_pg().start();
  // The failure was not cached: the same token is found once PostgreSQL is back.
  EXPECT_TRUE(harness.lookup_ok(a.token).found());
  EXPECT_TRUE(eventually([&] { return harness.tier().ready(); }));
  EXPECT_GE(changes_to_true.load(), 2);  // the initial report, then the recovery
  harness.tier().set_readiness_callback(nullptr);
}

// A stop cancels what runs and fails what waits: those lookups are the stopping replica's
// (UNAVAILABLE with the stopping message, which a gateway answers as busy and its retry
// policy sends elsewhere), not database errors (a 500 for the client).
TEST(TokenDatabaseTest, LookupsCutByAStopAreStoppingNotDatabaseErrors) {
  AuthHarness harness(test_config(/*pool_size=*/1));
  harness.lookup_ok(unique_name("warm-"));  // the pool's one connection is open
  pqxx::connection locker(shared_pg().conninfo());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE oauth_access_tokens IN ACCESS EXCLUSIVE MODE");
  AuthCache& cache = harness.tier().cache();
  std::promise<std::exception_ptr> running, queued;
  auto answered = [](auto& promise) { return [&promise](const auto& answer) { promise.set_value(answer.error); }; };
  cache.lookup_token(unique_name("running-"), answered(running));
  ASSERT_TRUE(eventually([] {
    return shared_pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") != "0";
  })) << "the lookup never waited for the lock";
  cache.lookup_token(unique_name("queued-"), answered(queued));
  auto stopped = std::async(std::launch::async, [&harness] { harness.tier().stop(); });
  std::future<std::exception_ptr> answers[] = {running.get_future(), queued.get_future()};
  bool answered_both = true;
  for (auto& answer : answers) {
    answered_both = answered_both && answer.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  }
  lock.commit();  // in any case, so that the stop can end
  stopped.get();
  ASSERT_TRUE(answered_both) << "the stop did not cut the lookups short";
  for (auto& answer : answers) {
    const std::exception_ptr error = answer.get();
    ASSERT_NE(error, nullptr);
    try {
      std::rethrow_exception(error);
    } catch (const ServiceStopping& e) {
      EXPECT_EQ(e.what(), std::string(kAuthStoppingMessage));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not ServiceStopping: " << e.what();
    }
  }
}

// A database user that cannot see users.disabled (column privileges hide it from the
// catalogue): the query keeps the check, so lookups fail as the reference's do (not let
// disabled users in), and the readiness probe says the replica cannot serve. Once the
// privilege is granted, the probe detects the schema again: ready, and lookups served.
TEST(TokenDatabaseTest, AUserThatCannotSeeTheSecurityColumnsIsRefusedAndNotReadyUntilItCan) {
  auto a = account();
  const std::string role = unique_name("limited_");
  shared_pg().exec("CREATE ROLE " + role + " LOGIN");
  shared_pg().exec("GRANT SELECT ON oauth_access_tokens, accounts, user_roles, settings TO " + role);
  shared_pg().exec("GRANT SELECT (id, account_id, chosen_languages, role_id) ON users TO " + role);
  auto config = test_config();
  for (auto& [key, value] : config.pg.params) {
    if (key == "user") value = role;
  }
  AuthHarness harness(config);
  v1::TokenReply reply;
  const grpc::Status status = harness.lookup(a.token, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("permission denied"), std::string::npos) << status.error_message();
  EXPECT_FALSE(reply.found());
  try {
    harness.tier().tenants().find_built("")->queries().ping();
    ADD_FAILURE() << "the readiness probe passed";
  } catch (const DatabaseError& e) {
    EXPECT_NE(std::string(e.what()).find("no users.disabled visible"), std::string::npos) << e.what();
  }

  shared_pg().exec("GRANT SELECT (disabled) ON users TO " + role);
  EXPECT_TRUE(eventually([&harness] { return harness.tier().ready(); })) << "the schema was never detected again";
  EXPECT_TRUE(harness.lookup_ok(a.token).found());
}

TEST(InternalTokenTest, EveryMethodNeedsTheSharedSecret) {
  auto config = test_config();
  config.internal_token = "s3cret";
  AuthHarness harness(config);
  auto a = account();
  v1::TokenReply reply;
  EXPECT_EQ(harness.lookup(a.token, &reply).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(harness.lookup(a.token, &reply, "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(harness.lookup(a.token, &reply, "s3cre").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(harness.lookup(a.token, &reply, "s3cret").ok());
  EXPECT_TRUE(reply.found());

  auto& stub = harness.stub();
  {
    grpc::ClientContext context;
    v1::ListOwnershipReply r;
    v1::ListOwnershipRequest request;
    request.set_list_id("1");
    EXPECT_EQ(stub.CheckListOwnership(&context, request, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    v1::FeedAccessReply r;
    v1::FeedAccessRequest request;
    request.set_kind(v1::FEED_KIND_LIVE);
    EXPECT_EQ(stub.GetFeedAccess(&context, request, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    v1::RelationsReply r;
    EXPECT_EQ(stub.GetRelations(&context, v1::RelationsRequest(), &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    v1::FiltersReply r;
    EXPECT_EQ(stub.GetFilters(&context, v1::FiltersRequest(), &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    context.AddMetadata("x-sluice-internal-token", "s3cret");
    v1::FiltersReply r;
    EXPECT_TRUE(stub.GetFilters(&context, v1::FiltersRequest(), &r).ok());
  }
}

TEST(AuthConfigTest, FromEnvironment) {
  auto config = AuthConfig::from_env(Env::from_map({{"SLUICE_TOKEN_CACHE_TTL_MS", "10"},
                                                    {"SLUICE_TOKEN_NEGATIVE_CACHE_TTL_MS", "20"},
                                                    {"SLUICE_FILTERS_CACHE_TTL_MS", "40"},
                                                    {"SLUICE_SETTINGS_CACHE_TTL_MS", "50"},
                                                    {"SLUICE_AUTH_CACHE_MAX_ENTRIES", "60"},
                                                    {"SLUICE_AUTH_LISTEN", "0.0.0.0:6000"},
                                                    {"SLUICE_AUTH_ADMIN_LISTEN", ""},
                                                    {"SLUICE_INTERNAL_TOKEN", "t"},
                                                    {"DB_POOL", "3"}}));
  EXPECT_EQ(config.cache.token_ttl, milliseconds(10));
  EXPECT_EQ(config.cache.token_negative_ttl, milliseconds(20));
  EXPECT_EQ(config.cache.filters_ttl, milliseconds(40));
  EXPECT_EQ(config.cache.settings_ttl, milliseconds(50));
  EXPECT_EQ(config.cache.max_entries, 60u);
  EXPECT_EQ(config.listen, "0.0.0.0:6000");
  EXPECT_EQ(config.admin_listen, "");
  EXPECT_EQ(config.internal_token, "t");
  EXPECT_EQ(config.pg.pool_size, 3);

  auto defaults = AuthConfig::from_env(Env::from_map({}));
  EXPECT_EQ(defaults.cache.token_ttl, milliseconds(30000));
  EXPECT_EQ(defaults.cache.token_negative_ttl, milliseconds(1000));
  EXPECT_EQ(defaults.cache.filters_ttl, milliseconds(60000));
  EXPECT_EQ(defaults.cache.settings_ttl, milliseconds(0));
  EXPECT_EQ(defaults.cache.max_entries, 100000u);
  EXPECT_EQ(defaults.listen, "127.0.0.1:50052");
  EXPECT_EQ(defaults.admin_listen, "127.0.0.1:9092");
  EXPECT_EQ(defaults.internal_token, "");

  EXPECT_THROW(AuthConfig::from_env(Env::from_map({{"SLUICE_TOKEN_CACHE_TTL_MS", "-1"}})), ConfigError);
  // A thread per connection: bounded as DB_POOL is, before it is narrowed to an int.
  for (const char* connections : {"0", "10001", "4294967297"}) {
    EXPECT_THROW(AuthConfig::from_env(Env::from_map({{"SLUICE_AUTH_DB_CONNECTIONS_MAX", connections}})), ConfigError)
        << connections;
  }
  EXPECT_EQ(AuthConfig::from_env(Env::from_map({{"SLUICE_AUTH_DB_CONNECTIONS_MAX", "10000"}})).db_connections_max, 10000);
  EXPECT_THROW(AuthConfig::from_env(Env::from_map({{"SLUICE_AUTH_CACHE_MAX_ENTRIES", "lots"}})), ConfigError);
}

}  // namespace
}  // namespace sluice
