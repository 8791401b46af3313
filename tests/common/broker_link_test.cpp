// The gateway's stream to a broker (common/broker_link.hpp) while the broker ends it.
// Subscribes and touches are sent from worker threads, outside gRPC's reactions; a
// broker that goes away ends the call under them. The fault matrix caught a gateway
// dying in grpc::Channel::PerformOpsOnCall when a broker was killed: a send had
// started a write on a call gRPC had already freed. Built with ASan/UBSan in
// scripts/test.sh, so such a write fails this suite.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "common/broker_link.hpp"
#include "sluice/v1/broker.grpc.pb.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// A broker whose every Events stream is a `Stream` reactor, served on a loopback port;
// `open` opens the gateway's streams to it.
template <class Stream>
class ScriptedBroker final : public v1::Broker::CallbackService {
 public:
  ScriptedBroker() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    EXPECT_TRUE(server_) << "the scripted broker could not listen";
    open = grpc_broker_streams(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()), "");
  }
  ~ScriptedBroker() override {
    if (server_) server_->Shutdown();
  }
  grpc::ServerBidiReactor<v1::GatewayMessage, v1::BrokerMessage>* Events(grpc::CallbackServerContext*) override {
    return new Stream();
  }

  BrokerStreamOpener open;

 private:
  std::unique_ptr<grpc::Server> server_;
};

// Reads a stream's first message and then ends the stream, as a broker that is shutting
// down or restarting does.
class Leaving final : public grpc::ServerBidiReactor<v1::GatewayMessage, v1::BrokerMessage> {
 public:
  Leaving() { StartRead(&request_); }
  void OnReadDone(bool) override { Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "broker leaving")); }
  void OnDone() override { delete this; }

 private:
  v1::GatewayMessage request_;
};

// Answers a stream's first message with a message the gateway cannot parse (a string
// field that is not UTF-8), then keeps the call open, writing nothing more.
class Garbling final : public grpc::ServerBidiReactor<v1::GatewayMessage, v1::BrokerMessage> {
 public:
  Garbling() { StartRead(&request_); }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    if (wrote_) return StartRead(&request_);
    wrote_ = true;
    reply_.mutable_event()->set_channel("timeline:system:\xff");
    StartWrite(&reply_);
  }
  void OnWriteDone(bool) override { StartRead(&request_); }
  void OnCancel() override {}
  void OnDone() override { delete this; }

 private:
  v1::GatewayMessage request_;
  v1::BrokerMessage reply_;
  bool wrote_ = false;
};

// Counts what one stream reports; waits for its end.
class EndWatcher final : public BrokerStream::Receiver {
 public:
  void on_events(BrokerStream::Events) override {}
  void on_ready() override {}
  void on_resubscribed(const v1::Resubscribed&) override {}
  void on_done() override {
    std::lock_guard lock(mutex_);
    ++done_;
    changed_.notify_all();
  }
  bool wait_done(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return done_ > 0; });
  }
  int done_count() {
    std::lock_guard lock(mutex_);
    return done_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int done_ = 0;
};

v1::GatewayMessage hello() {
  v1::GatewayMessage message;
  message.mutable_hello()->set_gateway_id("broker-link-test");
  return message;
}

v1::GatewayMessage touch(int i) {
  v1::GatewayMessage message;
  message.mutable_touch()->add_channels("timeline:" + std::to_string(i));
  return message;
}

TEST(GrpcBrokerStream, SendsFromOtherThreadsWhileTheBrokerEndsTheStreamAreHarmless) {
  ScriptedBroker<Leaving> broker;

  // Each round: the broker ends the stream while two threads keep sending into it,
  // so some send meets the call in every state of its ending.
  constexpr int kRounds = 200;
  int ended = 0;
  for (int round = 0; round < kRounds; ++round) {
    EndWatcher watcher;
    auto stream = broker.open(watcher);
    ASSERT_TRUE(stream->start({hello()}));
    std::atomic<bool> sending{true};
    std::atomic<long> sent{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 2; ++t) {
      senders.emplace_back([&] {
        for (int i = 0; sending.load(std::memory_order_relaxed); ++i) {
          stream->send(touch(i));
          sent.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    bool done = watcher.wait_done(10s);
    // Keep sending a little after the end too: those sends must be dropped, not written.
    long at_end = sent.load();
    while (done && sent.load() < at_end + 100) std::this_thread::yield();
    sending = false;
    for (auto& sender : senders) sender.join();
    ASSERT_TRUE(done) << "round " << round << ": the stream never reported its end";
    stream.reset();  // gone: any second end came before this, from a send or the stream's own end
    EXPECT_EQ(watcher.done_count(), 1) << "round " << round;
    ended += watcher.done_count();
  }
  EXPECT_EQ(ended, kRounds);
}

// A message that fails to parse fails the read, and gRPC leaves the call open: unless
// the gateway ends it, the broker goes on writing into a call nobody reads (until its
// queue's bound cuts it) and the link never reopens.
TEST(GrpcBrokerStream, AMessageThatCannotBeParsedEndsTheStream) {
  ScriptedBroker<Garbling> broker;
  EndWatcher watcher;
  auto stream = broker.open(watcher);
  ASSERT_TRUE(stream->start({hello()}));
  EXPECT_TRUE(watcher.wait_done(20s)) << "the stream stayed open after a message it could not read";
  stream->cancel();
  ASSERT_TRUE(watcher.wait_done(20s));
  stream.reset();
}

}  // namespace
}  // namespace sluice
