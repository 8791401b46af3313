#include "gateway/gateway_config.hpp"

#include <sched.h>

#include <algorithm>
#include <thread>

#include "common/config_error.hpp"
#include "gateway/channel_workers.hpp"
#include "gateway/connection_limits.hpp"

namespace sluice::gateway {
namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '\t' || c == '\n') {
      if (!current.empty()) out.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) out.push_back(current);
  return out;
}

int positive_seconds(const Env& env, const char* name, int fallback) {
  int64_t value = env.non_negative(name, fallback);
  if (value < 1 || value > 86400) {
    throw ConfigError(std::string("Invalid ") + name + " environment variable: expected 1 to 86400 seconds");
  }
  return static_cast<int>(value);
}

}  // namespace

GatewayConfig GatewayConfig::from_env(const Env& env) {
  GatewayConfig config;
  config.socket_path = env.get_or("SOCKET", "");
  int64_t port = env.integer("PORT", 4000);
  if (port < 0 || port > 65535) throw ConfigError("Invalid PORT environment variable: " + env.get_or("PORT", ""));
  config.port = static_cast<int>(port);
  if (auto bind = env.get("BIND")) {
    std::string value = *bind;
    // docs/protocol.md#listening: "[::1]" style brackets are stripped.
    if (value.size() >= 2 && value.front() == '[' && value.back() == ']') value = value.substr(1, value.size() - 2);
    config.bind = value;
  }
  if (auto trusted = env.non_empty("TRUSTED_PROXY_IP")) config.trusted_proxies = TrustedProxies::parse(split_list(*trusted));

  config.brokers = BrokerSetOptions::from_env(env, config.brokers.addresses);
  if (auto v = env.non_empty("SLUICE_AUTH_ADDR")) config.auth_address = *v;
  config.internal_token = env.get_or("SLUICE_INTERNAL_TOKEN", "");
  config.admin_listen = env.get_or("SLUICE_GATEWAY_ADMIN_LISTEN", "");

  int64_t threads = env.non_negative("SLUICE_GATEWAY_THREADS", 0);
  if (threads > ChannelWorkers::kMaxWorkers) {
    throw ConfigError("Invalid SLUICE_GATEWAY_THREADS environment variable: at most " +
                      std::to_string(ChannelWorkers::kMaxWorkers));
  }
  config.threads = threads > 0 ? static_cast<unsigned>(threads) : default_worker_threads(usable_cpus());
  config.reuse_port = env.flag("SLUICE_REUSE_PORT", false);
  config.io_uring = env.flag("SLUICE_GATEWAY_IO_URING", true);
  config.client_queue_bytes = static_cast<size_t>(env.non_negative("SLUICE_CLIENT_QUEUE_BYTES", 4 << 20));
  if (config.client_queue_bytes < 64 * 1024) {
    throw ConfigError("Invalid SLUICE_CLIENT_QUEUE_BYTES environment variable: at least 65536");
  }
  config.queued_bytes_max = static_cast<size_t>(env.non_negative("SLUICE_QUEUED_BYTES_MAX", int64_t{1} << 30));
  if (config.queued_bytes_max < (1 << 20)) {
    throw ConfigError("Invalid SLUICE_QUEUED_BYTES_MAX environment variable: at least 1048576");
  }
  config.client_max_lag = std::chrono::seconds(positive_seconds(env, "SLUICE_CLIENT_MAX_LAG_SECONDS", 60));
  config.websocket_max_message = static_cast<size_t>(env.non_negative("SLUICE_WS_MAX_MESSAGE_BYTES", 1 << 20));
  if (config.websocket_max_message < 1024) {
    throw ConfigError("Invalid SLUICE_WS_MAX_MESSAGE_BYTES environment variable: at least 1024");
  }
  config.sse_heartbeat_seconds = positive_seconds(env, "SLUICE_SSE_HEARTBEAT_SECONDS", 15);
  config.websocket_ping_seconds = positive_seconds(env, "SLUICE_WS_PING_SECONDS", 30);
  config.request_timeout_seconds = positive_seconds(env, "SLUICE_HTTP_REQUEST_TIMEOUT_SECONDS", 30);
  config.relations_max_staleness_ms = env.non_negative("SLUICE_RELATIONS_MAX_STALENESS_MS", 5000);

  // docs/protocol.md#admission-limits
  config.max_connections = static_cast<size_t>(
      env.non_negative("SLUICE_MAX_CONNECTIONS", static_cast<int64_t>(default_max_connections())));
  if (config.max_connections == 0) throw ConfigError("Invalid SLUICE_MAX_CONNECTIONS environment variable: at least 1");
  config.max_connections_per_address =
      static_cast<size_t>(env.non_negative("SLUICE_MAX_CONNECTIONS_PER_IP", 1000));
  config.websocket_max_subscriptions = static_cast<size_t>(env.non_negative("SLUICE_WS_MAX_SUBSCRIPTIONS", 100));
  config.websocket_max_messages_per_second =
      static_cast<uint32_t>(std::min<int64_t>(env.non_negative("SLUICE_WS_MAX_MESSAGES_PER_SECOND", 50), 1'000'000));
  config.max_pending_lookups = static_cast<size_t>(env.non_negative("SLUICE_MAX_PENDING_LOOKUPS", 1000));
  config.auth_failures_per_address_per_second = static_cast<uint32_t>(
      std::min<int64_t>(env.non_negative("SLUICE_AUTH_FAILURES_PER_IP_PER_SECOND", 5), 1'000'000));
  config.handshake_timeout_seconds = positive_seconds(env, "SLUICE_HANDSHAKE_TIMEOUT_SECONDS", 10);

  int64_t drain_seconds = env.non_negative("SLUICE_DRAIN_SECONDS", 0);
  if (drain_seconds > 3600) throw ConfigError("Invalid SLUICE_DRAIN_SECONDS environment variable: at most 3600");
  config.drain_window = std::chrono::seconds(drain_seconds);
  return config;
}

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<unsigned>(CPU_COUNT(&set));
  return std::thread::hardware_concurrency();
}

unsigned default_worker_threads(unsigned cpus) { return std::clamp(cpus, 1u, ChannelWorkers::kMaxWorkers); }

}  // namespace sluice::gateway
