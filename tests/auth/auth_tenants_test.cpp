// One auth tier serving several instances from a tenants file (docs/hosting.md#tenants),
// each with its own database, against a real PostgreSQL: the same token string answers
// each instance from its own rows, invalidations stay within their instance, a reload
// adds, changes and removes instances, and the connection cap holds across them.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <pqxx/pqxx>

#include "auth/system_events.hpp"
#include "common/config_error.hpp"
#include "tests/auth/auth_test_support.hpp"

namespace sluice {
namespace {

using auth_test::shared_pg;
using auth_test::unique_name;
using testing::TestAccount;

std::string conninfo_of(const std::string& database) {
  return "host=127.0.0.1 port=" + std::to_string(shared_pg().port()) + " user=postgres dbname=" + database;
}

void exec_in(const std::string& database, const std::string& sql) {
  pqxx::connection connection(conninfo_of(database));
  pqxx::nontransaction(connection).exec(sql);
}

// A copy of the test database as it is now: an instance with the same accounts and
// tokens, which the test then makes differ.
std::string copy_of_test_database() {
  std::string name = unique_name("tenant_db");
  exec_in("postgres", "CREATE DATABASE " + name + " TEMPLATE " + shared_pg().database());
  return name;
}

std::shared_ptr<const Tenants> tenants_file(const std::string& json) {
  auto& pg = shared_pg();
  Env base = Env::from_map({{"DB_HOST", "127.0.0.1"},
                            {"DB_PORT", std::to_string(pg.port())},
                            {"DB_USER", pg.user()},
                            {"DB_PASS", ""},
                            {"DB_POOL", "2"}});
  return std::make_shared<const Tenants>(Tenants::parse(json, base));
}

std::string tenant_json(const std::string& name, const std::string& database) {
  return "\"" + name + "\": {\"hosts\": [\"" + name + ".example\"], \"env\": {\"DB_NAME\": \"" + database + "\"}}";
}

class TenantsHarness {
 public:
  TenantsHarness(std::shared_ptr<const Tenants> tenants, int db_connections_max) {
    AuthConfig config = auth_test::test_config();
    config.db_connections_max = db_connections_max;
    tier_ = std::make_unique<AuthTier>(config, std::move(tenants));
    grpc::ServerBuilder builder;
    builder.RegisterService(tier_->service());
    server_ = builder.BuildAndStart();
    stub_ = v1::Auth::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  ~TenantsHarness() {
    tier_->stop();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }
  AuthTier& tier() { return *tier_; }

  grpc::Status lookup(const std::string& tenant, const std::string& token, v1::TokenReply* reply) {
    grpc::ClientContext context;
    v1::TokenRequest request;
    request.set_token(token);
    request.set_tenant(tenant);
    return stub_->LookupToken(&context, request, reply);
  }
  v1::TokenReply lookup_ok(const std::string& tenant, const std::string& token) {
    v1::TokenReply reply;
    grpc::Status status = lookup(tenant, token, &reply);
    EXPECT_TRUE(status.ok()) << tenant << ": " << status.error_message();
    return reply;
  }
  grpc::StatusCode lookup_code(const std::string& tenant) {
    v1::TokenReply reply;
    return lookup(tenant, "any", &reply).error_code();
  }
  v1::RelationsReply relations(const std::string& tenant, int64_t account_id) {
    grpc::ClientContext context;
    v1::RelationsRequest request;
    request.set_account_id(account_id);
    request.set_max_age_ms(0);
    request.set_tenant(tenant);
    v1::RelationsReply reply;
    EXPECT_TRUE(stub_->GetRelations(&context, request, &reply).ok());
    return reply;
  }

 private:
  std::unique_ptr<AuthTier> tier_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Auth::Stub> stub_;
};

v1::ChannelEvent kill_access_token(const std::string& tenant, int64_t token_id) {
  v1::ChannelEvent event;
  event.set_tenant(tenant);
  event.set_channel("timeline:access_token:" + std::to_string(token_id));
  event.set_event("kill");
  event.set_system_channel(v1::SYSTEM_CHANNEL_ACCESS_TOKEN);
  event.set_system_id(token_id);
  event.set_system_id_valid(true);
  return event;
}

TEST(AuthTenants, TheSameTokenAndIdsAnswerEachInstanceFromItsOwnDatabase) {
  TestAccount shared = testing::create_account(shared_pg(), unique_name("both"), "read");
  TestAccount blocked = testing::create_account(shared_pg(), unique_name("blocked"), "read");
  const std::string copy = copy_of_test_database();
  // Same token string and account ids in both; the copy differs in scopes and blocks.
  exec_in(copy, "UPDATE oauth_access_tokens SET scopes = 'read:statuses' WHERE id = " + std::to_string(shared.token_id));
  exec_in(copy, "INSERT INTO blocks (account_id, target_account_id) VALUES (" + std::to_string(shared.account_id) +
                    ", " + std::to_string(blocked.account_id) + ")");
  TestAccount only_in_original = testing::create_account(shared_pg(), unique_name("orig"), "read");

  TenantsHarness harness(
      tenants_file("{\"tenants\": {" + tenant_json("a", shared_pg().database()) + ", " + tenant_json("b", copy) + "}}"),
      /*db_connections_max=*/2);

  v1::TokenReply in_a = harness.lookup_ok("a", shared.token);
  v1::TokenReply in_b = harness.lookup_ok("b", shared.token);
  ASSERT_TRUE(in_a.found());
  ASSERT_TRUE(in_b.found());
  EXPECT_EQ(in_a.scopes(0), "read");
  EXPECT_EQ(in_b.scopes(0), "read:statuses");
  EXPECT_TRUE(harness.lookup_ok("a", only_in_original.token).found());
  EXPECT_FALSE(harness.lookup_ok("b", only_in_original.token).found());
  EXPECT_EQ(harness.relations("a", shared.account_id).blocking_size(), 0);
  ASSERT_EQ(harness.relations("b", shared.account_id).blocking_size(), 1);
  EXPECT_EQ(harness.relations("b", shared.account_id).blocking(0), blocked.account_id);

  EXPECT_EQ(harness.lookup_code(""), grpc::StatusCode::NOT_FOUND) << "no environment instance beside a tenants file";
  EXPECT_EQ(harness.lookup_code("c"), grpc::StatusCode::NOT_FOUND);

  int held = 0;
  harness.tier().tenants().for_each_built([&](TenantAuth& tenant) { held += tenant.pool().total(); });
  EXPECT_LE(held, 2);
  EXPECT_LE(std::stoi(shared_pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE datname IN ('" +
                                              shared_pg().database() + "', '" + copy + "') AND application_name = ''"
                                              " AND pid <> pg_backend_pid()")),
            2);
}

TEST(AuthTenants, AKillInOneInstanceLeavesTheOthersCacheAlone) {
  TestAccount account = testing::create_account(shared_pg(), unique_name("kill"), "read");
  const std::string copy = copy_of_test_database();
  TenantsHarness harness(
      tenants_file("{\"tenants\": {" + tenant_json("a", shared_pg().database()) + ", " + tenant_json("b", copy) + "}}"),
      4);
  ASSERT_TRUE(harness.lookup_ok("a", account.token).found());
  ASSERT_TRUE(harness.lookup_ok("b", account.token).found());
  // Revoked in both databases; only b hears of it.
  const std::string revoke = "UPDATE oauth_access_tokens SET revoked_at = now() WHERE id = " + std::to_string(account.token_id);
  exec_in(shared_pg().database(), revoke);
  exec_in(copy, revoke);
  EXPECT_TRUE(apply_system_event(harness.tier().tenants(), kill_access_token("b", account.token_id)));
  EXPECT_FALSE(harness.lookup_ok("b", account.token).found());
  EXPECT_TRUE(harness.lookup_ok("a", account.token).found()) << "a's cached answer stands until a's own kill";
  EXPECT_FALSE(apply_system_event(harness.tier().tenants(), kill_access_token("c", account.token_id)));
  EXPECT_TRUE(apply_system_event(harness.tier().tenants(), kill_access_token("a", account.token_id)));
  EXPECT_FALSE(harness.lookup_ok("a", account.token).found());
}

TEST(AuthTenants, AReloadAddsChangesAndRemovesInstances) {
  TestAccount account = testing::create_account(shared_pg(), unique_name("reload"), "read");
  const std::string copy = copy_of_test_database();
  exec_in(copy, "DELETE FROM oauth_access_tokens WHERE id = " + std::to_string(account.token_id));
  TenantsHarness harness(tenants_file("{\"tenants\": {" + tenant_json("a", shared_pg().database()) + "}}"), 4);
  EXPECT_EQ(harness.lookup_code("b"), grpc::StatusCode::NOT_FOUND);

  harness.tier().update_tenants(
      tenants_file("{\"tenants\": {" + tenant_json("a", shared_pg().database()) + ", " + tenant_json("b", copy) + "}}"));
  EXPECT_TRUE(harness.lookup_ok("a", account.token).found());
  EXPECT_FALSE(harness.lookup_ok("b", account.token).found());

  // b moves to the original database: its old pool and cache go, the new ones answer.
  harness.tier().update_tenants(tenants_file("{\"tenants\": {" + tenant_json("a", shared_pg().database()) + ", " +
                                             tenant_json("b", shared_pg().database()) + "}}"));
  EXPECT_TRUE(harness.lookup_ok("b", account.token).found());

  // A wrong variable takes out only its own instance, with the reason.
  harness.tier().update_tenants(tenants_file(
      "{\"tenants\": {" + tenant_json("a", shared_pg().database()) +
      ", \"b\": {\"hosts\": [\"b.example\"], \"env\": {\"DB_PORT\": \"not-a-port\"}}}}"));
  v1::TokenReply reply;
  grpc::Status refused = harness.lookup("b", account.token, &reply);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("DB_PORT"), std::string::npos) << refused.error_message();
  EXPECT_TRUE(harness.lookup_ok("a", account.token).found());

  harness.tier().update_tenants(tenants_file("{\"tenants\": {" + tenant_json("b", shared_pg().database()) + "}}"));
  EXPECT_EQ(harness.lookup_code("a"), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(harness.lookup_ok("b", account.token).found());
}

// An instance removed by a reload while one of its lookups waits on its database: a stop
// cancels that lookup too (before, it waited for as long as the database held it).
TEST(AuthTenants, AStopCutsTheLookupsOfARemovedInstanceToo) {
  TenantsHarness harness(tenants_file("{\"tenants\": {" + tenant_json("a", shared_pg().database()) + "}}"), 4);
  EXPECT_FALSE(harness.lookup_ok("a", unique_name("warm-")).found());
  pqxx::connection locker(conninfo_of(shared_pg().database()));
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE oauth_access_tokens IN ACCESS EXCLUSIVE MODE");
  std::promise<std::exception_ptr> cut;
  // The answer holds its instance, as AuthService's answers do: a removed instance lives
  // until its last lookup is answered.
  std::shared_ptr<TenantAuth> instance = harness.tier().tenants().find("a").tenant;
  instance->cache().lookup_token(unique_name("held-"),
                                 [&cut, instance](const AuthAnswer<v1::TokenReply>& answer) { cut.set_value(answer.error); });
  instance.reset();
  ASSERT_TRUE(auth_test::eventually([] {
    return shared_pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") != "0";
  })) << "the lookup never waited for the lock";
  harness.tier().update_tenants(tenants_file("{\"tenants\": {" + tenant_json("b", shared_pg().database()) + "}}"));
  // A pass over the instances before the stop, as the readiness probe makes every
  // interval: it must not let go of the removed one while its lookup runs.
  int visited = 0;
  harness.tier().tenants().for_each_built([&visited](TenantAuth&) { ++visited; });
  EXPECT_EQ(visited, 1) << "the removed instance, still answering a lookup (b was never built)";
  auto stopped = std::async(std::launch::async, [&harness] { harness.tier().stop(); });
  std::future<std::exception_ptr> answer = cut.get_future();
  const bool answered = answer.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  lock.commit();  // in any case, so that the stop can end
  stopped.get();
  ASSERT_TRUE(answered) << "the stop did not cancel the removed instance's lookup";
  const std::exception_ptr error = answer.get();
  ASSERT_NE(error, nullptr);
  EXPECT_THROW(std::rethrow_exception(error), ServiceStopping);
}

TEST(AuthTenants, WrongVariablesInTheFileStopTheStartNamingTheTenant) {
  auto tenants = tenants_file(R"({"tenants": {"club": {"hosts": ["club.example"], "env": {"DB_PORT": "x"}}}})");
  AuthConfig config = auth_test::test_config();
  try {
    AuthTier tier(config, tenants);
    FAIL() << "a tenant with DB_PORT=x was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tenant club"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("DB_PORT"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice
