// The sluice-auth executable: configuration errors, serving over TCP with the health
// service following readiness, and a clean exit on SIGTERM.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/auth/auth_test_support.hpp"
#include "tests/support/grpc_health.hpp"
#include "tests/support/process.hpp"

namespace sluice {
namespace {

std::string binary() { return testing::bin_dir() + "/sluice-auth"; }

TEST(SluiceAuthBinaryTest, ConfigurationErrorIsOneLineAndExitCode1) {
  ASSERT_TRUE(std::filesystem::exists(binary())) << binary() << " was not built";
  testing::TempDir dir;
  std::string output;
  int rc = testing::run_command({"env", "-i", "NODE_ENV=staging", "SLUICE_ENV_DIR=" + dir.path(), binary()}, &output);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(output, "sluice-auth: Unable to resolve postgresql database configuration.\n");

  rc = testing::run_command(
      {"env", "-i", "DATABASE_URL=postgres://u@h:port/d", "SLUICE_ENV_DIR=" + dir.path(), binary()}, &output);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(output, "sluice-auth: Invalid port specified in DATABASE_URL environment variable\n");

  rc = testing::run_command(
      {"env", "-i", "SLUICE_TOKEN_CACHE_TTL_MS=soon", "SLUICE_ENV_DIR=" + dir.path(), binary()}, &output);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(output.rfind("sluice-auth: Invalid SLUICE_TOKEN_CACHE_TTL_MS environment variable", 0), 0u) << output;
}

TEST(SluiceAuthBinaryTest, ServesTokensAndHealthThenStopsOnSigterm) {
  ASSERT_TRUE(std::filesystem::exists(binary())) << binary() << " was not built";
  auto& pg = auth_test::shared_pg();
  auto account = testing::create_account(pg, "binary_user", "read");
  testing::TempDir dir;
  // A .env file fills what the environment does not set.
  {
    std::ofstream env(dir.path() + "/.env");
    env << "DATABASE_URL=" << pg.url() << "\nSLUICE_INTERNAL_TOKEN=from-dotenv\n";
  }
  const int port = testing::free_port();
  const int admin_port = testing::free_port();
  testing::Process process({binary()},
                           {{"SLUICE_ENV_DIR", dir.path()},
                            {"NODE_ENV", "development"},
                            {"LOG_LEVEL", "warn"},
                            {"SLUICE_AUTH_LISTEN", "127.0.0.1:" + std::to_string(port)},
                            {"SLUICE_AUTH_ADMIN_LISTEN", "127.0.0.1:" + std::to_string(admin_port)}},
                           dir.path() + "/auth.log");
  ASSERT_TRUE(testing::wait_for_port(port, std::chrono::seconds(30)));
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  EXPECT_TRUE(auth_test::eventually([&] { return testing::health_status(channel, "sluice.v1.Auth") == 1; }));
  EXPECT_EQ(testing::health_status(channel, ""), 1);
  EXPECT_TRUE(testing::wait_for_port(admin_port, std::chrono::seconds(10)));

  auto stub = v1::Auth::NewStub(channel);
  v1::TokenRequest request;
  request.set_token(account.token);
  {
    grpc::ClientContext context;
    v1::TokenReply reply;
    EXPECT_EQ(stub->LookupToken(&context, request, &reply).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    context.AddMetadata("x-sluice-internal-token", "from-dotenv");
    v1::TokenReply reply;
    ASSERT_TRUE(stub->LookupToken(&context, request, &reply).ok());
    EXPECT_TRUE(reply.found());
    EXPECT_EQ(reply.account_id(), account.account_id);
  }

  const auto started = std::chrono::steady_clock::now();
  int status = process.stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_NE(status, -1) << "sluice-auth did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

// docs/hosting.md#tenants: sluice-auth serves the instances of SLUICE_TENANTS_FILE and
// takes a rewritten file on SIGHUP, without a restart; a bad file at start is one line.
TEST(SluiceAuthBinaryTest, ServesTheTenantsOfItsFileAndReloadsOnSighup) {
  ASSERT_TRUE(std::filesystem::exists(binary())) << binary() << " was not built";
  auto& pg = auth_test::shared_pg();
  auto account = testing::create_account(pg, "tenant_binary_user", "read");
  testing::TempDir dir;
  const std::string tenants_path = dir.path() + "/tenants.json";
  auto write_tenants = [&](const std::vector<std::string>& names) {
    std::string json = "{\"tenants\": {";
    for (size_t i = 0; i < names.size(); ++i) {
      if (i) json += ", ";
      json += "\"" + names[i] + "\": {\"hosts\": [\"" + names[i] + ".example\"], \"env\": {\"DATABASE_URL\": \"" +
              pg.url() + "\"}}";
    }
    std::ofstream(tenants_path + ".new") << json << "}}";
    std::filesystem::rename(tenants_path + ".new", tenants_path);
  };

  std::string output;
  int rc = testing::run_command({"env", "-i", "SLUICE_ENV_DIR=" + dir.path(), "SLUICE_TENANTS_FILE=" + tenants_path,
                                 binary()},
                                &output);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(output, "sluice-auth: SLUICE_TENANTS_FILE " + tenants_path + " cannot be read\n");

  write_tenants({"first"});
  const int port = testing::free_port();
  testing::Process process({binary()},
                           {{"SLUICE_ENV_DIR", dir.path()},
                            {"SLUICE_TENANTS_FILE", tenants_path},
                            {"SLUICE_TENANTS_RELOAD_MS", "0"},
                            {"LOG_LEVEL", "warn"},
                            {"SLUICE_AUTH_LISTEN", "127.0.0.1:" + std::to_string(port)},
                            {"SLUICE_AUTH_ADMIN_LISTEN", ""}},
                           dir.path() + "/auth.log");
  ASSERT_TRUE(testing::wait_for_port(port, std::chrono::seconds(30)));
  auto stub = v1::Auth::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  auto lookup = [&](const std::string& tenant, v1::TokenReply* reply) {
    grpc::ClientContext context;
    v1::TokenRequest request;
    request.set_token(account.token);
    request.set_tenant(tenant);
    return stub->LookupToken(&context, request, reply).error_code();
  };
  v1::TokenReply reply;
  ASSERT_EQ(lookup("first", &reply), grpc::StatusCode::OK);
  EXPECT_EQ(reply.account_id(), account.account_id);
  EXPECT_EQ(lookup("second", &reply), grpc::StatusCode::NOT_FOUND);

  write_tenants({"second"});
  ASSERT_EQ(::kill(process.pid(), SIGHUP), 0);
  EXPECT_TRUE(auth_test::eventually([&] { return lookup("second", &reply) == grpc::StatusCode::OK; }));
  EXPECT_EQ(reply.account_id(), account.account_id);
  EXPECT_EQ(lookup("first", &reply), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(process.running()) << "SIGHUP must reload, not stop";

  int status = process.stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_NE(status, -1) << "sluice-auth did not exit after SIGTERM";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace sluice
