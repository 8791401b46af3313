// Linked into every test suite. gRPC 1.51 (Debian 12) serves the callback API from
// one process-wide completion queue when its iomgr does not poll in the background,
// as on Linux. Channels and servers take a reference on it; when the count falls to
// zero gRPC shuts the queue down and deletes it, and that teardown races the queue's
// own polling threads: a double free in grpc_cq_internal_unref, no frame of ours in
// it, seen under ASan about once in 60 runs of a suite whose in-process servers come
// and go per test. One channel that has made a callback call, held for the whole
// process and never released, keeps the count above zero, so the teardown never runs.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>

#include "sluice/v1/auth.grpc.pb.h"

namespace {

class HoldCallbackQueue final : public ::testing::Environment {
 public:
  void SetUp() override {
    // Never destroyed (reachable from a static, so not a leak to LSan).
    static auto* channel = new std::shared_ptr<grpc::Channel>(
        grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
    auto stub = sluice::v1::Auth::NewStub(*channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    sluice::v1::TokenRequest request;
    sluice::v1::TokenReply reply;
    std::promise<void> done;
    // Nothing listens on port 1: the call fails at once; making it took the reference.
    stub->async()->LookupToken(&context, &request, &reply, [&](const grpc::Status&) { done.set_value(); });
    done.get_future().wait();
  }
};

const auto* const kRegistered = ::testing::AddGlobalTestEnvironment(new HoldCallbackQueue);

}  // namespace
