#pragma once
// Where Redis is and how names are written there (docs/protocol.md#redis-configuration).
#include <string>
#include <string_view>
#include <vector>

#include "common/env.hpp"

namespace sluice {

struct RedisEndpoint {
  std::string host;
  int port = 0;
};

struct RedisConfig {
  enum class Mode { tcp, unix_socket, sentinel };

  Mode mode = Mode::tcp;
  // Mode::tcp
  std::string host = "127.0.0.1";
  int port = 6379;
  // Mode::unix_socket
  std::string path;
  // Mode::sentinel: the sentinels are asked for the master's address on every connect.
  std::vector<RedisEndpoint> sentinels;
  std::string sentinel_master;
  std::string sentinel_username;
  std::string sentinel_password;
  // The data connection, in every mode.
  int db = 0;
  std::string username;
  std::string password;
  // rediss:// (docs/protocol.md#redis-tls): the data connection speaks TLS and checks
  // the server's certificate against the system's CAs plus NODE_EXTRA_CA_CERTS (the
  // file Node, and so the reference, adds to its CAs) and against `host`.
  bool tls = false;
  std::string tls_extra_ca_file;  // NODE_EXTRA_CA_CERTS
  // NODE_TLS_REJECT_UNAUTHORIZED=0: Node's default check is off, certificates unverified.
  bool tls_verify = true;
  // REDIS_NAMESPACE; empty means none.
  std::string redis_namespace;

  // "<namespace>:<name>", or `name` when there is no namespace.
  std::string with_namespace(std::string_view name) const;
  // Cuts len(namespace)+1 characters off an incoming channel name without checking
  // what they are, as the reference does (docs/protocol.md#redis-namespace).
  std::string_view without_namespace(std::string_view channel) const;
  // Where this connects, for logs (never includes a password).
  std::string describe() const;
  // Everything that tells one Redis connection from another (all but the namespace):
  // instances whose keys are equal share one connection pair (docs/hosting.md#redis).
  std::string connection_key() const;
  // The Redis server this reaches, whatever the database, user or TLS: Pub/Sub channels
  // belong to the server, not to a database, so two instances with equal keys and
  // namespaces would receive each other's events. Addresses are compared as written: two
  // names of one host, a socket path and a TCP port of one server, or a master reached
  // directly and through Sentinel are not recognised as one.
  std::string server_key() const;
};

// Reads the variables of docs/protocol.md#redis-configuration: REDIS_URL, else
// Sentinel, else REDIS_HOST/PORT/DB. Throws
// ConfigError with one line naming the variable.
RedisConfig redis_config_from_env(const Env& env);

}  // namespace sluice
