// AuthClient::relations_batch (docs/protocol.md#relations): one GetRelationsBatch call
// for several viewers, its entries mapped back to the accounts asked, and the fallback
// to GetRelations per viewer against an auth tier that does not have the batch (an
// older one during a rolling upgrade). The auth service here is scripted: these tests
// are about the gateway's side of the contract; the real auth tier's answers are
// tested against PostgreSQL in tests/auth.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <vector>

#include "gateway/auth_client.hpp"
#include "sluice/v1/auth.grpc.pb.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
namespace v1 = sluice::v1;

// Account a blocks account a + 1000. With `batch`, GetRelationsBatch answers every
// entry but `failing` (ok = false) and `misnumbered` (the wrong account id);
// without it, GetRelationsBatch is UNIMPLEMENTED, as on an auth tier built before it.
class ScriptedAuth final : public v1::Auth::CallbackService {
 public:
  explicit ScriptedAuth(bool batch) : batch_(batch) {}
  int64_t failing = -1;
  int64_t misnumbered = -1;
  std::atomic<int> batch_calls{0};
  std::atomic<int> single_calls{0};
  std::atomic<int64_t> last_max_age_ms{-1};

  grpc::ServerUnaryReactor* GetRelations(grpc::CallbackServerContext* context, const v1::RelationsRequest* request,
                                         v1::RelationsReply* reply) override {
    ++single_calls;
    last_max_age_ms = request->max_age_ms();
    fill(request->account_id(), *reply);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetRelationsBatch(grpc::CallbackServerContext* context,
                                              const v1::RelationsBatchRequest* request,
                                              v1::RelationsBatchReply* reply) override {
    ++batch_calls;
    auto* reactor = context->DefaultReactor();
    if (!batch_) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not here"));
      return reactor;
    }
    last_max_age_ms = request->max_age_ms();
    for (int64_t account : request->account_ids()) {
      auto* entry = reply->add_entries();
      entry->set_account_id(account == misnumbered ? account + 1 : account);
      entry->set_ok(account != failing);
      if (account != failing) fill(account, *entry->mutable_relations());
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  static void fill(int64_t account, v1::RelationsReply& reply) { reply.add_blocking(account + 1000); }
  const bool batch_;
};

class Harness {
 public:
  explicit Harness(bool batch) : service(batch) {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service);
    server_ = builder.BuildAndStart();
    client = std::make_unique<AuthClient>(server_->InProcessChannel(grpc::ChannelArguments()), "");
  }
  ~Harness() {
    client->stop();
    server_->Shutdown(std::chrono::system_clock::now() + 5s);
    server_->Wait();
  }

  std::vector<RelationsResult> batch(std::vector<int64_t> accounts) {
    std::promise<std::vector<RelationsResult>> answered;
    client->relations_batch("", std::move(accounts), 2500ms,
                            [&](std::vector<RelationsResult> results) { answered.set_value(std::move(results)); });
    auto future = answered.get_future();
    EXPECT_EQ(future.wait_for(20s), std::future_status::ready);
    return future.get();
  }

  ScriptedAuth service;
  std::unique_ptr<AuthClient> client;

 private:
  std::unique_ptr<grpc::Server> server_;
};

void expect_blocks(const RelationsResult& result, int64_t account) {
  EXPECT_EQ(result.account_id, account);
  ASSERT_EQ(result.status, LookupStatus::ok) << account;
  ASSERT_NE(result.relations, nullptr);
  ASSERT_EQ(result.relations->blocking_size(), 1);
  EXPECT_EQ(result.relations->blocking(0), account + 1000);
}

TEST(AuthClientRelations, ABatchIsOneCallAndEveryAccountGetsItsOwnEntry) {
  Harness harness(true);
  auto results = harness.batch({7, 3, 7, 12});
  ASSERT_EQ(results.size(), 4u);
  expect_blocks(results[0], 7);
  expect_blocks(results[1], 3);
  expect_blocks(results[2], 7);
  expect_blocks(results[3], 12);
  EXPECT_EQ(harness.service.batch_calls.load(), 1);
  EXPECT_EQ(harness.service.single_calls.load(), 0);
  EXPECT_EQ(harness.service.last_max_age_ms.load(), 2500);
}

TEST(AuthClientRelations, AFailedOrMismatchedEntryIsAnErrorForThatAccountOnly) {
  Harness harness(true);
  harness.service.failing = 5;
  harness.service.misnumbered = 6;
  auto results = harness.batch({4, 5, 6, 8});
  ASSERT_EQ(results.size(), 4u);
  expect_blocks(results[0], 4);
  EXPECT_EQ(results[1].account_id, 5);
  EXPECT_EQ(results[1].status, LookupStatus::error);
  EXPECT_EQ(results[2].account_id, 6);
  EXPECT_EQ(results[2].status, LookupStatus::error) << "an entry for another account is not this one's answer";
  expect_blocks(results[3], 8);
}

TEST(AuthClientRelations, AnAuthTierWithoutTheBatchIsAskedPerViewerFromThenOn) {
  Harness harness(false);
  auto first = harness.batch({1, 2, 3});
  ASSERT_EQ(first.size(), 3u);
  for (int i = 0; i < 3; ++i) expect_blocks(first[i], i + 1);
  EXPECT_EQ(harness.service.batch_calls.load(), 1);
  EXPECT_EQ(harness.service.single_calls.load(), 3);
  EXPECT_EQ(harness.service.last_max_age_ms.load(), 2500);

  auto second = harness.batch({9, 10});
  ASSERT_EQ(second.size(), 2u);
  expect_blocks(second[0], 9);
  expect_blocks(second[1], 10);
  EXPECT_EQ(harness.service.batch_calls.load(), 1) << "the batch is not tried again";
  EXPECT_EQ(harness.service.single_calls.load(), 5);
}

TEST(AuthClientRelations, AfterStopEveryAccountIsAnErrorAtOnce) {
  Harness harness(true);
  harness.client->stop();
  auto results = harness.batch({1, 2});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status, LookupStatus::error);
  EXPECT_EQ(results[1].status, LookupStatus::error);
  EXPECT_EQ(harness.service.batch_calls.load(), 0);
}

}  // namespace
}  // namespace sluice::gateway
