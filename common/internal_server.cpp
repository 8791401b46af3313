#include "common/internal_server.hpp"

#include <grpcpp/health_check_service_interface.h>

#include <cstring>

#include "common/config_error.hpp"
#include "common/grpc_channel.hpp"

namespace sluice {

InternalServer::InternalServer(const Listen& listen, std::vector<Service> services,
                               const std::function<void(grpc::ServerBuilder&)>& configure)
    : services_(std::move(services)) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  configure_internal_server(builder);
  if (configure) configure(builder);
  int bound_port = 0;
  if (!listen.address.empty()) {
    add_internal_listening_port(builder, listen.address, listen.tls, &bound_port);
  }
  for (const Service& s : services_) builder.RegisterService(s.service);
  server_ = builder.BuildAndStart();
  if (listen.address.empty() && !server_) throw ConfigError("cannot start the in-process gRPC server");
  if (!listen.address.empty() && (!server_ || bound_port == 0)) {
    throw ConfigError("cannot listen on " + listen.address + " (" + listen.variable + ")");
  }
  health_ = server_->GetHealthCheckService();
  for (const Service& s : services_) set_serving(s.name, false);
}

void InternalServer::set_serving(const char* name, bool serving) {
  if (!health_) return;
  health_->SetServingStatus(name, serving);
  if (services_.size() == 1 && std::strcmp(services_.front().name, name) == 0) health_->SetServingStatus(serving);
}

void InternalServer::shutdown(std::chrono::milliseconds grace) {
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
}

std::shared_ptr<grpc::Channel> InternalServer::in_process_channel(const grpc::ChannelArguments& args) {
  return server_->InProcessChannel(args);
}

}  // namespace sluice
