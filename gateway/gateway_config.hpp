#pragma once
// The gateway's settings: Mastodon's own variables (PORT, BIND, SOCKET,
// TRUSTED_PROXY_IP, docs/protocol.md#process-and-configuration) and Sluice's SLUICE_* ones.
#include <cstddef>
#include <cstdint>
#include <chrono>
#include <string>
#include <vector>

#include "common/broker_set.hpp"
#include "common/env.hpp"
#include "gateway/client_address.hpp"
#include "gateway/connection_limits.hpp"

namespace sluice::gateway {

struct GatewayConfig {
  // docs/protocol.md#listening: SOCKET wins over PORT/BIND.
  std::string socket_path;
  std::string bind = "127.0.0.1";
  int port = 4000;
  TrustedProxies trusted_proxies = TrustedProxies::reference_default();  // TRUSTED_PROXY_IP (docs/protocol.md#client-address)

  BrokerSetOptions brokers;                         // SLUICE_BROKER_ADDR and SLUICE_BROKER_*
  std::string auth_address = "127.0.0.1:50052";    // SLUICE_AUTH_ADDR
  std::string internal_token;                      // SLUICE_INTERNAL_TOKEN
  std::string admin_listen;                        // SLUICE_GATEWAY_ADMIN_LISTEN (empty: off)

  unsigned threads = 0;                 // SLUICE_GATEWAY_THREADS (0: one per core)
  bool reuse_port = false;              // SLUICE_REUSE_PORT: several gateways on one port
  // SLUICE_GATEWAY_IO_URING: a fan-out step's writes in one io_uring submission
  // (gateway/write_batch.hpp); one system call per write when false or unavailable.
  bool io_uring = true;
  // docs/protocol.md#slow-clients
  size_t client_queue_bytes = 4 << 20;  // SLUICE_CLIENT_QUEUE_BYTES: a client's own queued bytes
  size_t queued_bytes_max = size_t{1} << 30;  // SLUICE_QUEUED_BYTES_MAX: every queued frame, counted once
  std::chrono::milliseconds client_max_lag{60000};  // SLUICE_CLIENT_MAX_LAG_SECONDS
  size_t websocket_max_message = 1 << 20;  // SLUICE_WS_MAX_MESSAGE_BYTES
  int sse_heartbeat_seconds = 15;       // SLUICE_SSE_HEARTBEAT_SECONDS (docs/protocol.md#sse-heartbeat: 15)
  int websocket_ping_seconds = 30;      // SLUICE_WS_PING_SECONDS (docs/protocol.md#keep-alive-and-close: 30)
  int request_timeout_seconds = 30;     // SLUICE_HTTP_REQUEST_TIMEOUT_SECONDS
  int keep_alive_seconds = 5;           // idle keep-alive between plain requests (Node's 5 s)
  // docs/protocol.md#admission-limits
  size_t max_connections = default_max_connections();  // SLUICE_MAX_CONNECTIONS
  size_t max_connections_per_address = 1000;  // SLUICE_MAX_CONNECTIONS_PER_IP (0: no cap)
  size_t websocket_max_subscriptions = 100;   // SLUICE_WS_MAX_SUBSCRIPTIONS per socket (0: no cap)
  uint32_t websocket_max_messages_per_second = 50;  // SLUICE_WS_MAX_MESSAGES_PER_SECOND (0: no cap)
  size_t max_pending_lookups = 1000;  // SLUICE_MAX_PENDING_LOOKUPS: token lookups one gateway waits on (0: no cap)
  uint32_t auth_failures_per_address_per_second = 5;  // SLUICE_AUTH_FAILURES_PER_IP_PER_SECOND (0: off)
  int handshake_timeout_seconds = 10;         // SLUICE_HANDSHAKE_TIMEOUT_SECONDS: request read → stream open
  // SLUICE_DRAIN_SECONDS: on SIGTERM clients are told to go away spread over this
  // window (docs/drain.md); 0 tells them all at once, as the reference's exit does.
  std::chrono::milliseconds drain_window{0};
  // How old the blocks, mutes and domain blocks used for a status may be (docs/protocol.md#relations);
  // 0 asks the auth service for every status, like the reference's query per event.
  // The gateway owns this bound and sends it with every relations request.
  int64_t relations_max_staleness_ms = 5000;  // SLUICE_RELATIONS_MAX_STALENESS_MS

  static GatewayConfig from_env(const Env& env);
};

// The CPUs this process may run on (its affinity mask: a container's cpuset), or the
// machine's count when that cannot be read.
unsigned usable_cpus();
// Without SLUICE_GATEWAY_THREADS: one worker per usable CPU, at most as many as a
// channel's worker set can name (ChannelWorkers::kMaxWorkers); a larger host gets that
// many, not a crash at its first event.
unsigned default_worker_threads(unsigned cpus);

}  // namespace sluice::gateway
