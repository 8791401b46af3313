#include "common/grpc_channel.hpp"

namespace sluice {
namespace {

// Both ends of every internal stream take messages this large. A gateway's opening
// Subscribe names every channel it listens to, past gRPC's default 4 MiB at some tens of
// thousands of accounts; a server that refused it would be sent it again forever.
constexpr int kMaxInternalMessageBytes = 64 * 1024 * 1024;

}  // namespace

grpc::ChannelArguments internal_channel_arguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, kMaxInternalMessageBytes);
  // A `dns:///name:port` target that resolves to several replicas (a Kubernetes
  // headless Service) gets calls spread over every one of them, not pinned to the
  // first; a plain host:port has one address and behaves as before.
  args.SetLoadBalancingPolicyName("round_robin");
  return args;
}

void configure_internal_server(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxInternalMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);  // 0: never GOAWAY for pings
}

grpc::ChannelArguments auth_channel_arguments() {
  auto args = internal_channel_arguments();
  // Auth lookups are idempotent: one that fails UNAVAILABLE (a replica going away, or
  // one that cannot reach PostgreSQL) is tried again, and round_robin sends the retry
  // to the next replica. No health-based exclusion: a replica without PostgreSQL still
  // answers from its cache (docs/scale-out.md#auth-replicas).
  args.SetServiceConfigJSON(R"({
    "methodConfig": [{
      "name": [{"service": "sluice.v1.Auth"}],
      "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
    }]
  })");
  return args;
}

namespace {
std::shared_ptr<grpc::Channel> create_internal_channel(const std::string& address, const InternalTls& tls,
                                                       grpc::ChannelArguments args, const std::string& tls_name = {}) {
  if (tls.enabled() && !tls.server_name.empty()) {
    args.SetSslTargetNameOverride(tls.server_name);
  } else if (tls.enabled() && !tls_name.empty()) {
    args.SetSslTargetNameOverride(tls_name);
  }
  return grpc::CreateCustomChannel(address, internal_channel_credentials(tls), args);
}
}  // namespace

std::shared_ptr<grpc::Channel> internal_channel(const std::string& address, const InternalTls& tls) {
  return create_internal_channel(address, tls, internal_channel_arguments());
}

std::shared_ptr<grpc::Channel> broker_channel(const BrokerTarget& target, const InternalTls& tls) {
  auto args = internal_channel_arguments();
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(kBrokerRetryMax.count()));
  return create_internal_channel(target.address, tls, args, target.tls_name);
}

std::shared_ptr<grpc::Channel> auth_channel(const std::string& address, const InternalTls& tls) {
  return create_internal_channel(address, tls, auth_channel_arguments());
}

void add_internal_listening_port(grpc::ServerBuilder& builder, const std::string& address, const InternalTls& tls,
                                 int* bound_port) {
  builder.AddListeningPort(address, internal_server_credentials(tls), bound_port);
}

}  // namespace sluice
