#pragma once
// A broker tier registered on an in-process gRPC server, as the all-in-one binary does,
// with gateways simulated by real Events streams (tests/broker/gateway_client.hpp).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "broker/broker_tier.hpp"
#include "tests/broker/gateway_client.hpp"
#include "tests/support/process.hpp"

namespace sluice::testing {

class InProcessBroker {
 public:
  // With `tenants`, the broker serves the instances of a tenants file.
  explicit InProcessBroker(BrokerConfig config, std::shared_ptr<const Tenants> tenants = nullptr)
      : tier_(std::make_unique<BrokerTier>(std::move(config), std::move(tenants))) {
    grpc::ServerBuilder builder;
    builder.RegisterService(tier_->service());
    server_ = builder.BuildAndStart();
    tier_->start();
  }
  ~InProcessBroker() {
    tier_->stop();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
    tier_.reset();
  }
  InProcessBroker(const InProcessBroker&) = delete;
  InProcessBroker& operator=(const InProcessBroker&) = delete;

  BrokerTier& tier() { return *tier_; }
  std::shared_ptr<grpc::Channel> channel() { return server_->InProcessChannel(grpc::ChannelArguments()); }
  // A gateway stream that said Hello and got Ready.
  std::unique_ptr<GatewayClient> gateway(const std::string& id = "gw") {
    auto client = std::make_unique<GatewayClient>(channel());
    client->hello(id);
    EXPECT_TRUE(client->wait_ready()) << "no Ready after Hello";
    return client;
  }
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return eventually([this] { return tier_->ready(); }, timeout);
  }

 private:
  std::unique_ptr<BrokerTier> tier_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace sluice::testing
