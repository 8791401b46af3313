// How AuthClient::lookup_token reads the auth tier's failures (docs/protocol.md#auth-overload):
// those the client is told to retry later (busy: 503 with Retry-After) and those that
// are failures (500). The auth service is scripted; the real tier's statuses are tested
// in tests/auth.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
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

// An auth tier that takes every lookup and never answers (a replica blackholed).
class HungAuth final : public v1::Auth::CallbackService {
 public:
  grpc::ServerUnaryReactor* LookupToken(grpc::CallbackServerContext* context, const v1::TokenRequest*,
                                        v1::TokenReply*) override {
    std::lock_guard lock(mutex_);
    held_.push_back(context->DefaultReactor());
    return held_.back();
  }
  // The reactors must be finished before the server can stop.
  void finish_all() {
    std::lock_guard lock(mutex_);
    for (auto* reactor : held_) reactor->Finish(grpc::Status::CANCELLED);
    held_.clear();
  }

 private:
  std::mutex mutex_;
  std::vector<grpc::ServerUnaryReactor*> held_;
};

// A lookup that admits a stream gives up at the handshake timeout, when the client has
// had its 503: a hung auth tier does not keep it counted among the pending lookups
// (SLUICE_MAX_PENDING_LOOKUPS) for the 20 s other calls get.
TEST(AuthClientToken, AnAdmissionLookupEndsAtItsDeadline) {
  HungAuth service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  AuthClient client(server->InProcessChannel(grpc::ChannelArguments()), "", 300ms);
  std::promise<LookupStatus> answered;
  client.lookup_token("", "token", [&](TokenResult result) { answered.set_value(result.status); });
  auto future = answered.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready) << "still waiting: the 20 s deadline";
  EXPECT_NE(future.get(), LookupStatus::ok);
  // Counted until just after its callback returns.
  auto until = std::chrono::steady_clock::now() + 5s;
  while (client.calls_in_flight() > 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  EXPECT_EQ(client.calls_in_flight(), 0u);
  client.stop();
  service.finish_all();
  server->Shutdown(std::chrono::system_clock::now() + 5s);
  server->Wait();
}

}  // namespace
}  // namespace sluice::gateway
