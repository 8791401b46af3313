#include "gateway/gateway_metrics.hpp"

namespace sluice::gateway {

GatewayMetrics::GatewayMetrics() {
  auto& registry = metrics::Registry::global();
  for (auto kind : {ClientKind::websocket, ClientKind::eventsource}) {
    int i = static_cast<int>(kind);
    connected_clients[i] = &registry.gauge("connected_clients", "The number of clients connected to the streaming server",
                                           {{"type", kind_label(kind)}});
  }
  for (const auto& name : metric_stream_names()) {
    for (auto kind : {ClientKind::websocket, ClientKind::eventsource}) {
      connected_channels[static_cast<int>(kind)][name] =
          &registry.gauge("connected_channels", "The number of channels the streaming server is streaming to",
                          {{"type", kind_label(kind)}, {"channel", name}});
    }
  }
  for (auto kind : {ClientKind::websocket, ClientKind::eventsource}) {
    int i = static_cast<int>(kind);
    messages_sent[i] = &registry.counter("messages_sent_total",
                                         "The total number of messages the streaming server sent to clients per connection type",
                                         {{"type", kind_label(kind)}});
  }
  for (auto kind : {ClientKind::websocket, ClientKind::eventsource}) {
    int i = static_cast<int>(kind);
    slow_client_disconnects[i] = &registry.counter(
        "sluice_slow_client_disconnects_total",
        "Clients disconnected because their write queue passed SLUICE_CLIENT_QUEUE_BYTES", {{"type", kind_label(kind)}});
  }
  for (auto kind : {ClientKind::websocket, ClientKind::eventsource}) {
    int i = static_cast<int>(kind);
    drained_clients[i] = &registry.counter("sluice_drained_clients_total",
                                           "Clients told to go away while the gateway drained on shutdown",
                                           {{"type", kind_label(kind)}});
  }
  draining = &registry.gauge("sluice_gateway_draining", "1 while the gateway drains its clients before exiting");
  malformed_statuses = &registry.counter(
      "sluice_malformed_statuses_total",
      "Statuses without account, mentions or media_attachments dropped on filtered streams (the reference crashes)");
  websocket_protocol_errors =
      &registry.counter("sluice_websocket_protocol_errors_total", "WebSocket connections closed for a protocol error");
  http_bad_requests = &registry.counter("sluice_http_bad_requests_total", "Malformed HTTP requests refused");
}

metrics::Gauge& GatewayMetrics::channels(ClientKind kind, const std::string& stream_name) {
  auto& map = connected_channels[static_cast<int>(kind)];
  auto it = map.find(stream_name);
  if (it != map.end()) return *it->second;
  // Only names of the stream table reach here; keep a fallback series anyway.
  return metrics::Registry::global().gauge("connected_channels",
                                           "The number of channels the streaming server is streaming to",
                                           {{"type", kind_label(kind)}, {"channel", stream_name}});
}

}  // namespace sluice::gateway
