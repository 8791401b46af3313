#pragma once
// The gRPC server a tier serves other tiers from: the internal TLS choice and keepalive
// limits (common/grpc_channel.hpp), and grpc.health.v1.Health, whose status for each
// service follows that tier's readiness (k8s/README.md: the probes ask `sluice.v1.Broker`
// and `sluice.v1.Auth`). sluice-broker, sluice-auth and the all-in-one build it here, so
// how a tier reports health is decided once.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/internal_tls.hpp"

namespace sluice {

class InternalServer {
 public:
  struct Service {
    const char* name;  // the health service name, e.g. "sluice.v1.Broker"
    grpc::Service* service;
  };
  struct Listen {
    std::string address;       // empty: in-process channels only (the all-in-one)
    const char* variable = "";  // named in the error when it cannot listen
    InternalTls tls;            // plaintext unless configured
  };

  // Starts serving `services`, each NOT_SERVING until set_serving says otherwise.
  // `configure` may add channel arguments of the tier's own. Throws ConfigError naming
  // the variable when the address cannot be listened on.
  InternalServer(const Listen& listen, std::vector<Service> services,
                 const std::function<void(grpc::ServerBuilder&)>& configure = {});
  InternalServer(const InternalServer&) = delete;
  InternalServer& operator=(const InternalServer&) = delete;

  // Sets `name`'s health. A server of one service reports its overall health ("") the
  // same, for probes that name no service.
  void set_serving(const char* name, bool serving);
  // Stops taking calls, lets those in flight finish within `grace`, and waits for them.
  void shutdown(std::chrono::milliseconds grace);

  // For a gateway in the same process (the all-in-one).
  std::shared_ptr<grpc::Channel> in_process_channel(const grpc::ChannelArguments& args);

 private:
  std::vector<Service> services_;
  std::unique_ptr<grpc::Server> server_;
  grpc::HealthCheckServiceInterface* health_ = nullptr;
};

// Keeps a service's health equal to its tier's readiness while in scope. stop() (or the
// end of the scope), for the start of a shutdown, detaches it and reports NOT_SERVING, so
// probes and clients turn away before calls are refused. The tiers'
// set_readiness_callback waits for a call in progress, so from then on the tier's thread
// no longer calls into the server. Declared after both, it is undone before either goes.
template <class Tier>
class ReportReadiness {
 public:
  ReportReadiness(Tier& tier, InternalServer& server, const char* name) : tier_(tier), server_(server), name_(name) {
    tier_.set_readiness_callback([&server, name](bool ready) { server.set_serving(name, ready); });
  }
  ~ReportReadiness() { stop(); }
  ReportReadiness(const ReportReadiness&) = delete;
  ReportReadiness& operator=(const ReportReadiness&) = delete;

  void stop() {
    tier_.set_readiness_callback(nullptr);
    server_.set_serving(name_, false);
  }

 private:
  Tier& tier_;
  InternalServer& server_;
  const char* name_;
};

}  // namespace sluice
