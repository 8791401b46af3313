#include "gateway/gateway_metrics.hpp"

namespace sluice::gateway {

const char* refusal_label(Refusal refusal) {
  switch (refusal) {
    case Refusal::connections: return "connections";
    case Refusal::address: return "address";
    case Refusal::subscriptions: return "subscriptions";
    case Refusal::messages: return "messages";
    case Refusal::handshake_timeout: return "handshake_timeout";
    case Refusal::auth_failures: return "auth_failures";
    case Refusal::auth_busy: return "auth_busy";
    case Refusal::pending_lookups: return "pending_lookups";
    case Refusal::queued_requests: return "queued_requests";
    case Refusal::count_: break;
  }
  return "unknown";
}

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
        "Clients disconnected for falling behind: own queue past SLUICE_CLIENT_QUEUE_BYTES, "
        "process queues past SLUICE_QUEUED_BYTES_MAX, or behind for SLUICE_CLIENT_MAX_LAG_SECONDS", {{"type", kind_label(kind)}});
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
  for (size_t i = 0; i < refusals.size(); ++i) {
    refusals[i] = &registry.counter("sluice_admission_refusals_total",
                                    "Requests and WebSocket messages refused by an admission limit",
                                    {{"limit", refusal_label(static_cast<Refusal>(i))}});
  }
  unknown_hosts = &registry.counter("sluice_unknown_host_requests_total",
                                    "Requests refused because no tenant serves their Host (docs/hosting.md#routing)");
  batched_writes = &registry.counter("sluice_gateway_batched_writes_total",
                                     "Socket writes the workers handed to the kernel together through io_uring");
  write_submissions = &registry.counter("sluice_gateway_write_submissions_total",
                                        "io_uring_enter system calls that carried the batched writes");
  open_connections = &registry.gauge("sluice_open_connections",
                                     "Client connections the gateway holds, streaming or not (SLUICE_MAX_CONNECTIONS)");
}

TenantMetrics* GatewayMetrics::tenant(const std::string& tenant) {
  if (tenant.empty()) return nullptr;
  std::lock_guard lock(tenants_mutex_);
  auto& slot = tenants_[tenant];
  if (slot) return slot.get();
  slot = std::make_unique<TenantMetrics>();
  auto& registry = metrics::Registry::global();
  for (auto kind : {ClientKind::websocket, ClientKind::eventsource}) {
    int i = static_cast<int>(kind);
    slot->connected_clients[i] = &registry.gauge("sluice_tenant_connected_clients",
                                                 "Clients connected to the streaming server, per instance of the tenants file",
                                                 {{"tenant", tenant}, {"type", kind_label(kind)}});
    slot->messages_sent[i] = &registry.counter("sluice_tenant_messages_sent_total",
                                               "Messages sent to clients, per instance of the tenants file and connection type",
                                               {{"tenant", tenant}, {"type", kind_label(kind)}});
  }
  return slot.get();
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
