// How AuthClient::lookup_token reads the auth tier's failures (docs/protocol.md#auth-overload):
// those the client is told to retry later (busy: 503 with Retry-After) and those that
// are failures (500). The auth service is scripted; the real tier's statuses are tested
// in tests/auth.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>

#include "common/grpc_channel.hpp"
#include "gateway/auth_client.hpp"
#include "sluice/v1/auth.grpc.pb.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
namespace v1 = sluice::v1;

class FailingTokenAuth final : public v1::Auth::CallbackService {
 public:
  grpc::Status answer;
  grpc::ServerUnaryReactor* LookupToken(grpc::CallbackServerContext* context, const v1::TokenRequest*,
                                        v1::TokenReply*) override {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(answer);
    return reactor;
  }
};

LookupStatus lookup_answered(const grpc::Status& answer) {
  FailingTokenAuth service;
  service.answer = answer;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  AuthClient client(server->InProcessChannel(grpc::ChannelArguments()), "");
  std::promise<LookupStatus> answered;
  client.lookup_token("", "token", [&](TokenResult result) { answered.set_value(result.status); });
  auto future = answered.get_future();
  EXPECT_EQ(future.wait_for(20s), std::future_status::ready);
  LookupStatus status = future.get();
  client.stop();
  server->Shutdown(std::chrono::system_clock::now() + 5s);
  server->Wait();
  return status;
}

// A lone replica restarting answers "stopping" on every attempt: its clients are told to
// come back, not that something failed. A database that fails is a failure, as in the
// reference (500).
TEST(AuthClientToken, AStoppingReplicaIsBusyAndAFailedDatabaseAnError) {
  EXPECT_EQ(lookup_answered(grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(kAuthStoppingMessage))),
            LookupStatus::busy);
  EXPECT_EQ(lookup_answered(grpc::Status(grpc::StatusCode::UNAVAILABLE, "database query failed")),
            LookupStatus::error);
  EXPECT_EQ(lookup_answered(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "the auth service is busy")),
            LookupStatus::busy);
}

}  // namespace
}  // namespace sluice::gateway
