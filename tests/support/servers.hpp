#pragma once
// Real redis-server and PostgreSQL instances for tests: temporary data
// directories, loopback only, free ports, stopped on destruction.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

struct redisContext;

namespace sluice::testing {

class RedisServer {
 public:
  RedisServer();
  // Also listening with TLS (redis-server --tls-port) with this certificate and key;
  // clients are not asked for certificates. The plain port stays for the test's commands.
  RedisServer(const std::string& tls_cert, const std::string& tls_key);
  int tls_port() const { return tls_port_; }
  ~RedisServer();
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // Runs one command on a fresh connection; the reply rendered as text
  // (integers in decimal, arrays as space-joined elements, nil as "(nil)").
  std::string command(const std::vector<std::string>& args);
  long long integer(const std::vector<std::string>& args);
  // Number of subscribers of `channel` (PUBSUB NUMSUB).
  long long numsub(const std::string& channel);
  // How many times this server has run `command` (INFO commandstats; 0 before the
  // first). PUBSUB NUMSUB cannot tell a repeated or re-made SUBSCRIBE: these can.
  long long command_calls(const std::string& command);
  long long publish(const std::string& channel, const std::string& message);
  // Sends every command in one write on a fresh connection, then reads every reply:
  // Redis then handles them back to back (a burst, as Rails' fan-out publishes).
  void pipeline(const std::vector<std::vector<std::string>>& commands);

  void stop();
  void start();

 private:
  TempDir dir_;
  int port_;
  int tls_port_ = 0;
  std::vector<std::string> tls_args_;
  std::unique_ptr<Process> process_;
  std::mutex command_mutex_;
  redisContext* command_context_ = nullptr;  // command()'s connection, kept
};

class PostgresServer {
 public:
  // initdb into a temporary directory (as the `postgres` user when run as root),
  // start on a free port, create database `mastodon_test` and load
  // sql/schema/mastodon-<release>.sql, the release named by SLUICE_TEST_SCHEMA
  // (4.2, 4.3, 4.4, 4.5, 4.6, main; default main).
  PostgresServer();
  static std::string schema_release();
  ~PostgresServer();
  int port() const { return port_; }
  std::string database() const { return "mastodon_test"; }
  std::string user() const { return "postgres"; }
  // libpq connection string for the test database.
  std::string conninfo() const;
  // postgres:// URL form, for DATABASE_URL.
  std::string url() const;

  // Turns TLS on (ssl = on, this certificate and key; a reload, no restart): clients may
  // then connect with or without it. Returns once a TLS connection is served.
  void enable_tls(const std::string& cert, const std::string& key);
  // Back to plain connections only (ssl = off, a reload); returns once TLS is refused.
  void disable_tls();

  // Executes SQL (any number of statements) in one transaction.
  void exec(const std::string& sql);
  // First column of the first row, or "" when there is none (NULL → "").
  std::string query_value(const std::string& sql);

  void stop();
  void start();

 private:
  // Runs `statement` (an ALTER SYSTEM of ssl), reloads, and waits until TLS is `served`.
  void set_ssl(const std::string& statement, bool served);

  TempDir dir_;
  std::string data_dir_;
  int port_;
  std::unique_ptr<Process> process_;
};

// PgBouncer in transaction mode in front of a PostgresServer's test database, as
// Mastodon's documentation sets it up for its services: each statement runs on
// whichever of `server_connections` server connections is free, so nothing a client
// leaves on one (a named prepared statement) is there for its next statement.
class PgBouncer {
 public:
  PgBouncer(const PostgresServer& postgres, int server_connections);
  ~PgBouncer();
  int port() const { return port_; }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
};

// Rows the tests keep reusing: an account with a user and a token.
struct TestAccount {
  long long account_id;
  long long user_id;
  long long token_id;
  std::string token;
};
TestAccount create_account(PostgresServer& pg, const std::string& username, const std::string& scopes = "read",
                           const std::string& domain = "");

}  // namespace sluice::testing
