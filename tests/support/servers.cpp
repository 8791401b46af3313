#include "tests/support/servers.hpp"

#include <hiredis/hiredis.h>
#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sluice::testing {
namespace {

std::string reply_text(const redisReply* reply) {
  if (!reply) return "(error)";
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(reply->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (size_t i = 0; i < reply->elements; ++i) {
        if (i) out += ' ';
        out += reply_text(reply->element[i]);
      }
      return out;
    }
  }
  return {};
}

std::string find_pg_binary(const std::string& name) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    auto candidate = entry.path() / "bin" / name;
    if (std::filesystem::exists(candidate)) return candidate.string();
  }
  return name;  // rely on PATH
}

// PostgreSQL refuses to run as root: use the `postgres` account then.
std::vector<std::string> as_postgres_user(std::vector<std::string> argv) {
  if (::geteuid() != 0) return argv;
  std::vector<std::string> wrapped = {"runuser", "-u", "postgres", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

void chown_to_postgres(const std::string& path) {
  if (::geteuid() != 0) return;
  passwd* pw = ::getpwnam("postgres");
  if (!pw) throw std::runtime_error("running as root but there is no 'postgres' user to run PostgreSQL");
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown " + path + " failed");
}

}  // namespace

RedisServer::RedisServer() : port_(free_port()) { start(); }

RedisServer::RedisServer(const std::string& tls_cert, const std::string& tls_key)
    : port_(free_port()), tls_port_(free_port()) {
  tls_args_ = {"--tls-port", std::to_string(tls_port_), "--tls-cert-file", tls_cert, "--tls-key-file", tls_key,
               "--tls-ca-cert-file", tls_cert, "--tls-auth-clients", "no"};
  start();
}

RedisServer::~RedisServer() { stop(); }

void RedisServer::start() {
  std::vector<std::string> argv{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", dir_.path(), "--logfile",
                                dir_.path() + "/redis.log"};
  argv.insert(argv.end(), tls_args_.begin(), tls_args_.end());
  process_ = std::make_unique<Process>(argv, std::map<std::string, std::string>{}, dir_.path() + "/redis.out");
  if (!wait_for_port(port_, std::chrono::seconds(20))) throw std::runtime_error("redis-server did not start");
  if (tls_port_ && !wait_for_port(tls_port_, std::chrono::seconds(20))) {
    throw std::runtime_error("redis-server did not open its TLS port");
  }
}

void RedisServer::stop() {
  {
    std::lock_guard lock(command_mutex_);
    if (command_context_) redisFree(command_context_);
    command_context_ = nullptr;
  }
  if (process_) process_->stop(SIGTERM);
  process_.reset();
}

namespace {
// A command's words as hiredis takes them (pointers into `args`, which must outlive it).
struct CommandArgv {
  explicit CommandArgv(const std::vector<std::string>& args) {
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  int count() const { return static_cast<int>(argv.size()); }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
};
}  // namespace

// One connection, kept: a new one per command (floods publish tens of thousands of
// messages) would leave as many sockets in TIME_WAIT and can run out of local ports.
std::string RedisServer::command(const std::vector<std::string>& args) {
  CommandArgv command(args);
  std::lock_guard lock(command_mutex_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!command_context_) {
      redisContext* ctx = redisConnect("127.0.0.1", port_);
      if (!ctx || ctx->err) {
        if (ctx) redisFree(ctx);
        throw std::runtime_error("cannot connect to test redis");
      }
      command_context_ = ctx;
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(command_context_, command.count(), command.argv.data(), command.lens.data()));
    if (!reply) {
      // The connection went away (a restart, a CLIENT KILL): the command never ran.
      redisFree(command_context_);
      command_context_ = nullptr;
      continue;
    }
    std::string text = reply_text(reply);
    freeReplyObject(reply);
    return text;
  }
  throw std::runtime_error("test redis does not answer");
}

void RedisServer::pipeline(const std::vector<std::vector<std::string>>& commands) {
  redisContext* ctx = redisConnect("127.0.0.1", port_);
  if (!ctx || ctx->err) {
    if (ctx) redisFree(ctx);
    throw std::runtime_error("cannot connect to test redis");
  }
  for (const auto& args : commands) {
    CommandArgv command(args);
    redisAppendCommandArgv(ctx, command.count(), command.argv.data(), command.lens.data());
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(ctx, &reply) != REDIS_OK) {
      redisFree(ctx);
      throw std::runtime_error("test redis did not answer a pipelined command");
    }
    freeReplyObject(reply);
  }
  redisFree(ctx);
}

long long RedisServer::integer(const std::vector<std::string>& args) { return std::stoll(command(args)); }

long long RedisServer::numsub(const std::string& channel) {
  std::string text = command({"PUBSUB", "NUMSUB", channel});
  auto space = text.rfind(' ');
  return std::stoll(text.substr(space + 1));
}

long long RedisServer::command_calls(const std::string& name) {
  std::string info = command({"INFO", "commandstats"});
  std::string key = "cmdstat_" + name + ":calls=";
  auto at = info.find(key);
  if (at == std::string::npos) return 0;
  return std::stoll(info.substr(at + key.size()));
}

long long RedisServer::publish(const std::string& channel, const std::string& message) {
  return integer({"PUBLISH", channel, message});
}

PostgresServer::PostgresServer() : port_(free_port()) {
  data_dir_ = dir_.path() + "/data";
  std::filesystem::create_directory(data_dir_);
  chown_to_postgres(dir_.path());
  chown_to_postgres(data_dir_);
  std::string output;
  int rc = run_command(as_postgres_user({find_pg_binary("initdb"), "-D", data_dir_, "-U", "postgres", "--auth=trust",
                                         "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"}),
                       &output);
  if (rc != 0) throw std::runtime_error("initdb failed: " + output);
  start();
  std::string createdb_out;
  {
    pqxx::connection admin("host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres");
    pqxx::nontransaction tx(admin);
    tx.exec("CREATE DATABASE mastodon_test");
  }
  std::string schema_path = source_dir() + "/sql/schema/mastodon-" + schema_release() + ".sql";
  std::ifstream schema(schema_path);
  if (!schema) throw std::runtime_error("no schema fixture " + schema_path + " (SLUICE_TEST_SCHEMA names a release)");
  std::stringstream text;
  text << schema.rdbuf();
  pqxx::connection conn(conninfo());
  pqxx::nontransaction tx(conn);
  tx.exec(text.str());
}

PostgresServer::~PostgresServer() { stop(); }

std::string PostgresServer::schema_release() {
  const char* release = std::getenv("SLUICE_TEST_SCHEMA");
  return release && *release ? release : "main";
}

void PostgresServer::start() {
  process_ = std::make_unique<Process>(
      as_postgres_user({find_pg_binary("postgres"), "-D", data_dir_, "-p", std::to_string(port_), "-k", dir_.path(),
                        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off", "-c", "max_connections=200", "-c",
                        "shared_preload_libraries=pg_stat_statements"}),
      std::map<std::string, std::string>{}, dir_.path() + "/postgres.log");
  if (!wait_for_port(port_, std::chrono::seconds(30))) throw std::runtime_error("postgres did not start");
  // Accepting TCP is not the same as accepting queries: wait for a real login.
  for (int i = 0; i < 300; ++i) {
    try {
      pqxx::connection probe("host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres");
      return;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  throw std::runtime_error("postgres does not accept logins");
}

void PostgresServer::stop() {
  // SIGINT is PostgreSQL's "fast shutdown".
  if (process_) process_->stop(SIGINT, std::chrono::seconds(20));
  process_.reset();
}

void PostgresServer::enable_tls(const std::string& cert, const std::string& key) {
  for (const auto& [from, to] : {std::pair{cert, "server.crt"}, std::pair{key, "server.key"}}) {
    const std::string target = data_dir_ + "/" + to;
    std::filesystem::copy_file(from, target, std::filesystem::copy_options::overwrite_existing);
    chown_to_postgres(target);
    std::filesystem::permissions(target, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  set_ssl("ALTER SYSTEM SET ssl = on", true);
}

void PostgresServer::disable_tls() { set_ssl("ALTER SYSTEM RESET ssl", false); }

void PostgresServer::set_ssl(const std::string& statement, bool served) {
  {
    pqxx::connection admin(conninfo() + " sslmode=disable");
    pqxx::nontransaction tx(admin);
    tx.exec(statement);
    tx.exec("SELECT pg_reload_conf()");
  }
  // The reload is asynchronous: in force once a TLS connection is served, or refused.
  for (int i = 0; i < 300; ++i) {
    bool tls_served = false;
    try {
      pqxx::connection probe(conninfo() + " sslmode=require");
      tls_served = true;
    } catch (const std::exception&) {
    }
    if (tls_served == served) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error(std::string("postgres did not ") + (served ? "start" : "stop") + " serving TLS");
}

namespace {
bool pgbouncer_at_least(int major, int minor) {
  std::string output;
  if (run_command({"/usr/sbin/pgbouncer", "--version"}, &output) != 0) return false;
  int found_major = 0, found_minor = 0;
  if (std::sscanf(output.c_str(), "PgBouncer %d.%d", &found_major, &found_minor) != 2) return false;
  return found_major > major || (found_major == major && found_minor >= minor);
}
}  // namespace

PgBouncer::PgBouncer(const PostgresServer& postgres, int server_connections) : port_(free_port()) {
  chown_to_postgres(dir_.path());
  {
    std::ofstream users(dir_.path() + "/users.txt");
    users << "\"" << postgres.user() << "\" \"\"\n";  // trust: the name must still be listed
  }
  std::ofstream ini(dir_.path() + "/pgbouncer.ini");
  ini << "[databases]\n"
      << postgres.database() << " = host=127.0.0.1 port=" << postgres.port() << " dbname=" << postgres.database()
      << "\n[pgbouncer]\n"
      << "listen_addr = 127.0.0.1\nlisten_port = " << port_ << "\nunix_socket_dir =\n"
      << "auth_type = trust\nauth_file = " << dir_.path() << "/users.txt\n"
      << "pool_mode = transaction\ndefault_pool_size = " << server_connections << "\nmin_pool_size = 0\n"
      << "max_client_conn = 200\nignore_startup_parameters = extra_float_digits,options\n"
      // From 1.21 PgBouncer can carry named statements across server connections (on
      // by default from 1.24); Mastodon's documented setup, and this test, are without.
      << (pgbouncer_at_least(1, 21) ? "max_prepared_statements = 0\n" : "")
      << "logfile = " << dir_.path() << "/pgbouncer.log\n";
  ini.close();
  // PgBouncer refuses to run as root, as PostgreSQL does.
  process_ = std::make_unique<Process>(as_postgres_user({"/usr/sbin/pgbouncer", dir_.path() + "/pgbouncer.ini"}),
                                       std::map<std::string, std::string>{}, dir_.path() + "/stderr.log");
  if (!wait_for_port(port_, std::chrono::seconds(30))) throw std::runtime_error("pgbouncer did not start");
}

PgBouncer::~PgBouncer() {
  // Immediate before 1.23, after the clients leave from then on: the test's have left.
  if (process_) process_->stop(SIGTERM, std::chrono::seconds(20));
}

std::string PostgresServer::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=mastodon_test";
}

std::string PostgresServer::url() const {
  return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/mastodon_test";
}

void PostgresServer::exec(const std::string& sql) {
  pqxx::connection conn(conninfo());
  pqxx::work tx(conn);
  tx.exec(sql);
  tx.commit();
}

std::string PostgresServer::query_value(const std::string& sql) {
  pqxx::connection conn(conninfo());
  pqxx::nontransaction tx(conn);
  auto result = tx.exec(sql);
  if (result.empty() || result[0].empty() || result[0][0].is_null()) return {};
  return result[0][0].c_str();
}

TestAccount create_account(PostgresServer& pg, const std::string& username, const std::string& scopes,
                           const std::string& domain) {
  static std::atomic<int> counter{0};
  int n = ++counter;
  TestAccount account{};
  // Usernames are unique per domain: suffix a counter so tests may reuse names.
  std::string unique_name = username + "_" + std::to_string(n);
  account.account_id = std::stoll(pg.query_value(
      "INSERT INTO accounts (username, domain) VALUES ('" + unique_name + "', " +
      (domain.empty() ? std::string("NULL") : "'" + domain + "'") + ") RETURNING id"));
  account.user_id = std::stoll(pg.query_value("INSERT INTO users (email, account_id) VALUES ('" + username + "-" +
                                              std::to_string(n) + "@example.test', " +
                                              std::to_string(account.account_id) + ") RETURNING id"));
  account.token = "token-" + username + "-" + std::to_string(n) + "-" + std::to_string(::getpid());
  account.token_id = std::stoll(pg.query_value(
      "INSERT INTO oauth_access_tokens (token, scopes, resource_owner_id) VALUES ('" + account.token + "', '" +
      scopes + "', " + std::to_string(account.user_id) + ") RETURNING id"));
  return account;
}

}  // namespace sluice::testing
