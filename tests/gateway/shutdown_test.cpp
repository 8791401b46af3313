// Stopping a gateway while token lookups are in flight (issue: a late auth reply
// posting into a worker's freed io_context). Built with ASan/UBSan in scripts/test.sh,
// so a use after free here fails the run. The auth service below answers nothing
// until the gateway cancels: every lookup is in flight when stop() begins.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

#include "gateway/gateway.hpp"
#include "sluice/v1/auth.grpc.pb.h"
#include "tests/support/clients.hpp"
#include "tests/support/process.hpp"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

// Holds every token lookup open until the caller cancels it.
class SilentAuth final : public sluice::v1::Auth::CallbackService {
 public:
  std::atomic<int> received{0};
  std::atomic<int> cancelled{0};

  grpc::ServerUnaryReactor* LookupToken(grpc::CallbackServerContext*, const sluice::v1::TokenRequest*,
                                        sluice::v1::TokenReply*) override {
    ++received;
    return new Held(*this);
  }

 private:
  class Held final : public grpc::ServerUnaryReactor {
   public:
    explicit Held(SilentAuth& owner) : owner_(owner) {}
    void OnCancel() override {
      ++owner_.cancelled;
      Finish(grpc::Status::CANCELLED);
    }
    void OnDone() override { delete this; }

   private:
    SilentAuth& owner_;
  };
};


TEST(GatewayShutdown, StopWithLookupsInFlightCancelsThemAndLeavesNothingBehind) {
  SilentAuth auth;
  grpc::ServerBuilder builder;
  builder.RegisterService(&auth);
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server);

  GatewayConfig config;
  config.port = sluice::testing::free_port();
  config.threads = 2;
  config.brokers.addresses = "127.0.0.1:1";  // nothing there: the broker stream keeps retrying
  constexpr int kClients = 12;
  std::vector<std::unique_ptr<sluice::testing::Connection>> clients;
  {
    auto gateway = std::make_unique<Gateway>(
        config,
        [](const sluice::BrokerTarget&) {
          return sluice::grpc_broker_streams(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()), "");
        },
        server->InProcessChannel(grpc::ChannelArguments()));
    gateway->start();
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(std::make_unique<sluice::testing::Connection>("127.0.0.1", config.port));
      clients.back()->send(i % 2 == 0 ? "GET /api/v1/streaming/user HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t" +
                                            std::to_string(i) + "\r\n\r\n"
                                      : "GET /api/v1/streaming?stream=user HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer t" +
                                            std::to_string(i) + "\r\n\r\n");
    }
    ASSERT_TRUE(sluice::testing::eventually([&] { return auth.received.load() == kClients; })) << auth.received.load();
    gateway->stop();
    // stop() returned once every callback had run; the service sees each cancel.
    EXPECT_TRUE(sluice::testing::eventually([&] { return auth.cancelled.load() == kClients; })) << auth.cancelled.load();
  }  // the gateway, its workers and their io_contexts are gone here
  server->Shutdown(std::chrono::system_clock::now() + 2s);
  server->Wait();
}

}  // namespace
}  // namespace sluice::gateway
