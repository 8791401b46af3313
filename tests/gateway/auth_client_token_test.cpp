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
#include "gateway/admission.hpp"
#include "gateway/auth_client.hpp"
#include "sluice/v1/auth.grpc.pb.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
namespace v1 = sluice::v1;

class FailingAuth final : public v1::Auth::CallbackService {
 public:
  grpc::Status answer;
  grpc::ServerUnaryReactor* LookupToken(grpc::CallbackServerContext* context, const v1::TokenRequest*,
                                        v1::TokenReply*) override {
    return fail(context);
  }
  grpc::ServerUnaryReactor* CheckListOwnership(grpc::CallbackServerContext* context, const v1::ListOwnershipRequest*,
                                               v1::ListOwnershipReply*) override {
    return fail(context);
  }
  grpc::ServerUnaryReactor* GetFeedAccess(grpc::CallbackServerContext* context, const v1::FeedAccessRequest*,
                                          v1::FeedAccessReply*) override {
    return fail(context);
  }

 private:
  grpc::ServerUnaryReactor* fail(grpc::CallbackServerContext* context) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(answer);
    return reactor;
  }
};

enum class Lookup { token, list, feed_access };

LookupStatus lookup_answered(const grpc::Status& answer, Lookup lookup = Lookup::token) {
  FailingAuth service;
  service.answer = answer;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  AuthClient client(server->InProcessChannel(grpc::ChannelArguments()), "");
  std::promise<LookupStatus> answered;
  switch (lookup) {
    case Lookup::token:
      client.lookup_token("", "token", [&](TokenResult result) { answered.set_value(result.status); });
      break;
    case Lookup::list:
      client.check_list("", "7", 1, [&](LookupStatus status) { answered.set_value(status); });
      break;
    case Lookup::feed_access:
      client.feed_access("", FeedKind::live, [&](LookupStatus status, FeedAccess) { answered.set_value(status); });
      break;
  }
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

// The list and feed-access checks read failures as the token lookup does: a busy or
// stopping auth tier is 503 with Retry-After for them too. Before, both were failures: a
// restarting lone replica answered a list stream 401 and a public stream 500.
TEST(AuthClientToken, ListAndFeedAccessChecksAreBusyAsTheTokenLookupIs) {
  for (Lookup lookup : {Lookup::list, Lookup::feed_access}) {
    EXPECT_EQ(lookup_answered(grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(kAuthStoppingMessage)), lookup),
              LookupStatus::busy);
    EXPECT_EQ(lookup_answered(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "the auth service is busy"), lookup),
              LookupStatus::busy);
    EXPECT_EQ(lookup_answered(grpc::Status(grpc::StatusCode::UNAVAILABLE, "database query failed"), lookup),
              LookupStatus::error);
  }
  auto busy_list = list_refusal(LookupStatus::busy);
  ASSERT_TRUE(busy_list);
  EXPECT_EQ(busy_list->status, 503);
  EXPECT_EQ(busy_list->retry_after_seconds, kRetryAfterSeconds);
  auto failed_list = list_refusal(LookupStatus::error);
  ASSERT_TRUE(failed_list);
  EXPECT_EQ(failed_list->status, 401) << "the reference's answer to a failed list check";
  EXPECT_EQ(list_refusal(LookupStatus::not_found)->status, 401);
  EXPECT_FALSE(list_refusal(LookupStatus::ok));
  auto busy_feed = feed_access_refusal(LookupStatus::busy);
  ASSERT_TRUE(busy_feed);
  EXPECT_EQ(busy_feed->status, 503);
  EXPECT_EQ(feed_access_refusal(LookupStatus::error)->status, 500);
  EXPECT_FALSE(feed_access_refusal(LookupStatus::ok));
}

}  // namespace
}  // namespace sluice::gateway
