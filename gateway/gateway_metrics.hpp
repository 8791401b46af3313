#pragma once
// The reference's client metrics (docs/protocol.md#metrics), primed at start, plus Sluice's own.
#include <array>
#include <memory>
#include <mutex>
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
  queued_requests,    // a WebSocket's requests queued behind a waiting check are at their bound
  count_
};
const char* refusal_label(Refusal refusal);

// docs/hosting.md#observability: one instance's clients and messages, beside the
// reference's totals (which still count every instance). Series exist for tenants of
// the tenants file only, so their number is bounded by the file.
struct TenantMetrics {
  std::array<metrics::Gauge*, 2> connected_clients{};
  std::array<metrics::Counter*, 2> messages_sent{};
  metrics::Gauge& clients(ClientKind kind) { return *connected_clients[static_cast<int>(kind)]; }
  metrics::Counter& sent(ClientKind kind) { return *messages_sent[static_cast<int>(kind)]; }
};

struct GatewayMetrics {
  GatewayMetrics();

  // The series of `tenant`; nullptr for the environment's one instance ("").
  TenantMetrics* tenant(const std::string& tenant);
  // A client connected (+1) or went away (-1): the reference's gauge and, with
  // `tenant` (Client::tenant_metrics), its instance's.
  void count_client(ClientKind kind, TenantMetrics* tenant, int delta) {
    clients(kind).add(delta);
    if (tenant) tenant->clients(kind).add(delta);
  }
  // Messages sent to clients of `kind`, of the instance `tenant` when there is one.
  void count_sent(ClientKind kind, TenantMetrics* tenant, uint64_t messages) {
    sent(kind).inc(messages);
    if (tenant) tenant->sent(kind).inc(messages);
  }

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
  metrics::Counter* unknown_hosts = nullptr;
  // gateway/write_batch.hpp: socket writes handed to the kernel through io_uring, and
  // the system calls that carried them (their ratio is the batching an operator gets).
  metrics::Counter* batched_writes = nullptr;
  metrics::Counter* write_submissions = nullptr;

 private:
  std::mutex tenants_mutex_;
  std::unordered_map<std::string, std::unique_ptr<TenantMetrics>> tenants_;
};

}  // namespace sluice::gateway
