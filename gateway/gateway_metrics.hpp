#pragma once
// The reference's client metrics (docs/protocol.md#metrics), primed at start, plus Sluice's own.
#include <array>
#include <string>
#include <unordered_map>

#include "common/metrics.hpp"
#include "gateway/client.hpp"

namespace sluice::gateway {

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
};

}  // namespace sluice::gateway
