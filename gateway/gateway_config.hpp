#pragma once
// The gateway's settings: Mastodon's own variables (PORT, BIND, SOCKET,
// TRUSTED_PROXY_IP, docs/protocol.md#process-and-configuration) and Sluice's SLUICE_* ones.
#include <cstddef>
#include <chrono>
#include <string>
#include <vector>

#include "common/env.hpp"

namespace sluice::gateway {

struct GatewayConfig {
  // docs/protocol.md#listening: SOCKET wins over PORT/BIND.
  std::string socket_path;
  std::string bind = "127.0.0.1";
  int port = 4000;
  std::vector<std::string> trusted_proxies;

  std::string broker_address = "127.0.0.1:50051";  // SLUICE_BROKER_ADDR
  std::string auth_address = "127.0.0.1:50052";    // SLUICE_AUTH_ADDR
  std::string internal_token;                      // SLUICE_INTERNAL_TOKEN
  std::string admin_listen;                        // SLUICE_GATEWAY_ADMIN_LISTEN (empty: off)

  unsigned threads = 0;                 // SLUICE_GATEWAY_THREADS (0: one per core)
  bool reuse_port = false;              // SLUICE_REUSE_PORT: several gateways on one port
  size_t client_queue_bytes = 4 << 20;  // SLUICE_CLIENT_QUEUE_BYTES: slow-client bound
  size_t websocket_max_message = 1 << 20;  // SLUICE_WS_MAX_MESSAGE_BYTES
  int sse_heartbeat_seconds = 15;       // SLUICE_SSE_HEARTBEAT_SECONDS (docs/protocol.md#sse-heartbeat: 15)
  int websocket_ping_seconds = 30;      // SLUICE_WS_PING_SECONDS (docs/protocol.md#keep-alive-and-close: 30)
  int request_timeout_seconds = 30;     // SLUICE_HTTP_REQUEST_TIMEOUT_SECONDS
  int keep_alive_seconds = 5;           // idle keep-alive between plain requests (Node's 5 s)
  // SLUICE_DRAIN_SECONDS: on SIGTERM clients are told to go away spread over this
  // window (docs/drain.md); 0 tells them all at once, as the reference's exit does.
  std::chrono::milliseconds drain_window{0};
  // How old the blocks, mutes and domain blocks used for a status may be (docs/protocol.md#relations);
  // 0 asks the auth service for every status, like the reference's query per event.
  // The auth service reads the same variable for its own cache.
  int64_t relations_max_staleness_ms = 5000;  // SLUICE_RELATIONS_MAX_STALENESS_MS
  // How long a kill makes token lookups bypass the auth cache: the auth service's
  // token cache lifetime, read from the same variable.
  int64_t token_cache_ttl_ms = 30000;  // SLUICE_TOKEN_CACHE_TTL_MS

  static GatewayConfig from_env(const Env& env);
};

}  // namespace sluice::gateway
