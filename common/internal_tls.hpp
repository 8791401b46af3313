#pragma once
// Mutual TLS between the tiers (docs/internal-tls.md): when SLUICE_TLS_CERT,
// SLUICE_TLS_KEY and SLUICE_TLS_CA are set, brokers and auth serve gRPC only to peers
// presenting a certificate signed by that CA, and gateways (and auth, towards the
// broker) present theirs and verify the server's. The files are re-read every
// SLUICE_TLS_REFRESH_SECONDS, so rotated certificates take effect without a restart.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/env.hpp"

namespace sluice {

struct InternalTls {
  std::string cert_path;    // SLUICE_TLS_CERT: this process's certificate chain (PEM)
  std::string key_path;     // SLUICE_TLS_KEY: its private key (PEM)
  std::string ca_path;      // SLUICE_TLS_CA: the CA bundle peers must be signed by (PEM)
  std::string server_name;  // SLUICE_TLS_SERVER_NAME: the name servers' certificates carry, when not the target's host
  unsigned refresh_seconds = 10;  // SLUICE_TLS_REFRESH_SECONDS

  bool enabled() const { return !cert_path.empty(); }
  // All three paths or none; each file must be readable PEM. Throws ConfigError.
  static InternalTls from_env(const Env& env);
};

std::shared_ptr<grpc::ServerCredentials> internal_server_credentials(const InternalTls& tls);
std::shared_ptr<grpc::ChannelCredentials> internal_channel_credentials(const InternalTls& tls);

}  // namespace sluice
