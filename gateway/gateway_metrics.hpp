#pragma once
// The reference's client metrics (docs/protocol.md#metrics), primed at start, plus Sluice's own.
#include <array>
#include <string>
#include <unordered_map>

#include "common/metrics.hpp"
#include "gateway/client.hpp"

namespace sluice::gateway {

// docs/protocol.md#admission-limits: why a request or message was refused.
enum class Refusal : uint8_t {
  connections,        // the gateway holds SLUICE_MAX_CONNECTIONS
  address,            // the client address holds SLUICE_MAX_CONNECTIONS_PER_IP
  subscriptions,      // a WebSocket holds SLUICE_WS_MAX_SUBSCRIPTIONS
  messages,           // a WebSocket sent more than SLUICE_WS_MAX_MESSAGES_PER_SECOND
  handshake_timeout,  // a stream was not admitted within SLUICE_HANDSHAKE_TIMEOUT_SECONDS
  auth_failures,      // the client address spent SLUICE_AUTH_FAILURES_PER_IP_PER_SECOND
  auth_busy,          // the auth tier refused the lookup under load
  pending_lookups,    // the gateway already waits on SLUICE_MAX_PENDING_LOOKUPS lookups
  count_
};
const char* refusal_label(Refusal refusal);

struct GatewayMetrics {
  GatewayMetrics();

  metrics::Gauge& clients(ClientKind kind) { return *connected_clients[static_cast<int>(kind)]; }
  metrics::Gauge& channels(ClientKind kind, const std::string& stream_name);
  metrics::Counter& sent(ClientKind kind) { return *messages_sent[static_cast<int>(kind)]; }

  std::array<metrics::Gauge*, 2> connected_clients{};
  std::array<metrics::Counter*, 2> messages_sent{};
  std::array<std::unordered_map<std::string, metrics::Gauge*>, 2> connected_channels;
  std::array<metrics::Counter*, 2> slow_client_disconnects{};
  std::array<metrics::Counter*, 2> drained_clients{};
  metrics::Gauge* draining = nullptr;
  metrics::Counter* malformed_statuses = nullptr;
  metrics::Counter* websocket_protocol_errors = nullptr;
  metrics::Counter* http_bad_requests = nullptr;
  std::array<metrics::Counter*, static_cast<size_t>(Refusal::count_)> refusals{};
  metrics::Counter& refused(Refusal refusal) { return *refusals[static_cast<size_t>(refusal)]; }
  metrics::Gauge* open_connections = nullptr;
};

}  // namespace sluice::gateway
