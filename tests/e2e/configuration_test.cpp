// docs/protocol.md#redis-configuration, docs/protocol.md#postgresql-configuration and
// docs/protocol.md#process-and-configuration: the environment variables Mastodon admins
// already set, startup errors with the reference's messages, SOCKET, .env loading.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

struct Outcome {
  int exit_code = -1;
  std::string output;
};

// Runs a binary that is expected to refuse its configuration and exit by itself.
Outcome run_binary(const std::string& name, std::map<std::string, std::string> env) {
  TempDir dir;
  env.emplace("SLUICE_ENV_DIR", dir.path());
  env.emplace("SLUICE_BROKER_ADMIN_LISTEN", "");
  env.emplace("SLUICE_AUTH_ADMIN_LISTEN", "");
  std::string log = dir.path() + "/out.log";
  Process process({bin_dir() + "/" + name}, env, log);
  int status = process.wait(std::chrono::seconds(20));
  Outcome outcome;
  if (status != -1 && WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  std::ifstream in(log);
  std::getline(in, outcome.output, '\0');
  return outcome;
}

struct BadConfig {
  std::string binary;
  std::map<std::string, std::string> env;
  std::string message;
};

TEST(Configuration, BadSettingsStopEveryBinaryWithOneClearLine) {
  std::vector<BadConfig> cases = {
      {"sluice", {{"PORT", "abc"}}, "sluice: Invalid PORT environment variable: abc"},
      {"sluice", {{"REDIS_PORT", "x6379"}}, "sluice: Invalid REDIS_PORT environment variable: x6379"},
      {"sluice", {{"REDIS_DB", "db"}}, "sluice: Invalid REDIS_DB environment variable: db"},
      {"sluice", {{"DB_POOL", "many"}}, "sluice: Invalid DB_POOL environment variable: many"},
      {"sluice", {{"DB_PORT", "five"}}, "sluice: Invalid DB_PORT environment variable: five"},
      {"sluice", {{"NODE_ENV", "staging"}}, "sluice: Unable to resolve postgresql database configuration."},
      {"sluice",
       {{"DATABASE_URL", "postgres://u@localhost:notaport/db"}},
       "sluice: Invalid port specified in DATABASE_URL environment variable"},
      {"sluice-gateway", {{"PORT", "abc"}}, "sluice-gateway: Invalid PORT environment variable: abc"},
      {"sluice-broker", {{"REDIS_PORT", "x"}}, "sluice-broker: Invalid REDIS_PORT environment variable: x"},
      {"sluice-auth", {{"DB_POOL", "x"}}, "sluice-auth: Invalid DB_POOL environment variable: x"},
      {"sluice-broker",
       {{"SLUICE_TLS_CERT", "/nonexistent.pem"}},
       "sluice-broker: SLUICE_TLS_CERT, SLUICE_TLS_KEY and SLUICE_TLS_CA must be set together"},
      {"sluice-auth",
       {{"SLUICE_TLS_CERT", "/nonexistent.pem"}, {"SLUICE_TLS_KEY", "/nonexistent.key"}, {"SLUICE_TLS_CA", "/ca.pem"}},
       "sluice-auth: Invalid SLUICE_TLS_CERT environment variable: cannot read /nonexistent.pem"},
      {"sluice-gateway",
       {{"SLUICE_TLS_CERT", "/etc/hostname"}, {"SLUICE_TLS_KEY", "/etc/hostname"}, {"SLUICE_TLS_CA", "/etc/hostname"}},
       "sluice-gateway: Invalid SLUICE_TLS_CERT environment variable: /etc/hostname holds no PEM CERTIFICATE"},
      {"sluice-gateway",
       {{"SLUICE_CLIENT_QUEUE_BYTES", "-1"}},
       "sluice-gateway: Invalid SLUICE_CLIENT_QUEUE_BYTES environment variable"},
      // docs/hosting.md#tenants: every tier stops on a tenants file it cannot use.
      {"sluice",
       {{"SLUICE_TENANTS_FILE", "/nonexistent/tenants.json"}},
       "sluice: SLUICE_TENANTS_FILE /nonexistent/tenants.json cannot be read"},
      {"sluice-gateway",
       {{"SLUICE_TENANTS_FILE", "/nonexistent/tenants.json"}},
       "sluice-gateway: SLUICE_TENANTS_FILE /nonexistent/tenants.json cannot be read"},
      {"sluice-broker",
       {{"SLUICE_TENANTS_FILE", "/nonexistent/tenants.json"}},
       "sluice-broker: SLUICE_TENANTS_FILE /nonexistent/tenants.json cannot be read"},
      {"sluice-auth",
       {{"SLUICE_TENANTS_FILE", "/nonexistent/tenants.json"}},
       "sluice-auth: SLUICE_TENANTS_FILE /nonexistent/tenants.json cannot be read"},
  };
  for (const auto& c : cases) {
    auto env = c.env;
    // REDIS_URL would make every other REDIS_* variable unread (docs/protocol.md#redis-configuration).
    env.emplace("REDIS_URL", c.env.count("REDIS_PORT") || c.env.count("REDIS_DB") ? "" : suite_redis().url());
    env.emplace("PORT", std::to_string(free_port()));
    auto outcome = run_binary(c.binary, env);
    EXPECT_EQ(outcome.exit_code, 1) << c.binary << " " << c.message << "\n" << outcome.output;
    EXPECT_EQ(outcome.output.rfind(c.message, 0), 0u) << "expected: " << c.message << "\ngot: " << outcome.output;
    EXPECT_EQ(std::count(outcome.output.begin(), outcome.output.end(), '\n'), 1) << outcome.output;
  }
}

// An admin address found unusable only when the tier already serves (its gRPC port
// open, the broker's Redis thread running): the process still stops with the error
// (common/standalone_tier.hpp stops its parts from its destructor). With no gateway
// stream open at that moment this passes without that stop too: it pins the exit path,
// not the wait a stream opened in that window would cause.
TEST(Configuration, AnAdminAddressThatCannotBeUsedStopsASplitTierWithTheError) {
  for (const auto& [binary, variable] : std::vector<std::pair<std::string, std::string>>{
           {"sluice-broker", "SLUICE_BROKER_ADMIN_LISTEN"}, {"sluice-auth", "SLUICE_AUTH_ADMIN_LISTEN"}}) {
    const std::string listen_variable = binary == "sluice-broker" ? "SLUICE_BROKER_LISTEN" : "SLUICE_AUTH_LISTEN";
    auto outcome = run_binary(binary, {{"REDIS_URL", suite_redis().url()},
                                       {listen_variable, "127.0.0.1:" + std::to_string(free_port())},
                                       {variable, "256.0.0.1:9"}});
    EXPECT_EQ(outcome.exit_code, 1) << binary << "\n" << outcome.output;
    EXPECT_NE(outcome.output.find(binary + ": Invalid admin listen address: 256.0.0.1:9"), std::string::npos)
        << outcome.output;
  }
}

// The reference takes a level pino does not know as unset (logging.js,
// initializeLogLevel): `verbose`, 4.2's default, must not stop a pod.
TEST(Configuration, AnUnknownLogLevelIsTheDefaultNotAnError) {
  for (auto deployment : {Deployment::all_in_one, Deployment::split}) {
    int port = free_port();
    Cluster cluster(deployment, {{"PORT", std::to_string(port)}, {"LOG_LEVEL", "verbose"}});
    EXPECT_EQ(http_request(port, "GET", "/api/v1/streaming/health").status, 200);
  }
}

TEST(Configuration, LeadingIntegersAreAcceptedLikeParseInt) {
  int port = free_port();
  Cluster cluster(Deployment::all_in_one, {{"PORT", std::to_string(port) + "abc"}, {"DB_POOL", "3x"}});
  EXPECT_EQ(http_request(port, "GET", "/api/v1/streaming/health").status, 200);
}

TEST(Configuration, DbVariablesAndRedisHostPortWork) {
  auto& pg = suite_postgres();
  Cluster cluster(Deployment::all_in_one, {{"DATABASE_URL", ""},
                                           {"NODE_ENV", "development"},
                                           {"DB_HOST", "127.0.0.1"},
                                           {"DB_PORT", std::to_string(pg.port())},
                                           {"DB_USER", pg.user()},
                                           {"DB_NAME", pg.database()},
                                           {"DB_SSLMODE", "disable"},
                                           {"REDIS_URL", ""},
                                           {"REDIS_HOST", "127.0.0.1"},
                                           {"REDIS_PORT", std::to_string(suite_redis().port())}});
  auto viewer = create_account(pg, "db_vars");
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200) << cluster.logs();
  std::string channel = "timeline:" + std::to_string(viewer.account_id);
  ASSERT_TRUE(wait_numsub(channel, 1));
  suite_redis().publish(channel, R"({"event":"delete","payload":"env"})");
  auto event = sse.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->data, "env");
}

TEST(Configuration, DotEnvFillsUnsetVariablesOnly) {
  TempDir dir;
  int port = free_port();
  {
    std::ofstream env(dir.path() + "/.env.production");
    env << "# Mastodon's .env.production\nREDIS_NAMESPACE=fromdotenv\nPORT=1\nexport LOG_LEVEL=\"warn\"\n";
  }
  Cluster cluster(Deployment::all_in_one, {{"SLUICE_ENV_DIR", dir.path()}, {"PORT", std::to_string(port)}});
  auto viewer = create_account(suite_postgres(), "dotenv");
  SseClient sse(port, "/api/v1/streaming/user", bearer(viewer.token));  // the set PORT won over the file's
  ASSERT_EQ(sse.response().status, 200);
  EXPECT_TRUE(wait_numsub("fromdotenv:timeline:" + std::to_string(viewer.account_id), 1)) << cluster.logs();
}

TEST(Configuration, SocketListensOnAUnixSocketWithMode0666) {
  TempDir dir;
  std::string path = dir.path() + "/streaming.sock";
  std::map<std::string, std::string> env = {{"REDIS_URL", suite_redis().url()},
                                            {"DATABASE_URL", suite_postgres().url()},
                                            {"SOCKET", path},
                                            {"SLUICE_ENV_DIR", dir.path()},
                                            {"SLUICE_BROKER_ADMIN_LISTEN", ""},
                                            {"SLUICE_AUTH_ADMIN_LISTEN", ""}};
  Process sluice({bin_dir() + "/sluice"}, env, dir.path() + "/sluice.log");
  // The socket file appears at bind(), before its mode is set and before listen():
  // wait for the line the server writes once it is listening.
  ASSERT_TRUE(eventually(
      [&] { return read_file(dir.path() + "/sluice.log").find("streaming API listening") != std::string::npos; }, 20s));
  struct stat info{};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0666);
  Connection connection(path);
  connection.send("GET /api/v1/streaming/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string response;
  while (connection.fill(2s)) response += connection.buffer(), connection.buffer().clear();
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("\r\n\r\nOK"), std::string::npos);
}

}  // namespace
}  // namespace sluice::testing
