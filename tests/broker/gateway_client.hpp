#pragma once
// A gateway as the broker sees it: one Events stream over a real gRPC channel
// (in-process in these tests), with a reader thread collecting what arrives.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/grpc_auth.hpp"
#include "sluice/v1/broker.grpc.pb.h"

namespace sluice::testing {

class GatewayClient {
 public:
  // With `start_reading` false nothing is read until start_reading() is called
  // (a gateway that falls behind).
  explicit GatewayClient(const std::shared_ptr<grpc::Channel>& channel, const std::string& token = {},
                         bool start_reading = true)
      : stub_(v1::Broker::NewStub(channel)) {
    attach_internal_token(context_, token);
    stream_ = stub_->Events(&context_);
    if (start_reading) this->start_reading();
  }

  ~GatewayClient() {
    context_.TryCancel();
    start_reading();
    reader_.join();
  }

  void start_reading() {
    std::lock_guard lock(mutex_);
    if (reading_) return;
    reading_ = true;
    reader_ = std::thread([this] {
      v1::BrokerMessage message;
      while (stream_->Read(&message)) {
        std::lock_guard lock(mutex_);
        received_.push_back(message);
        cv_.notify_all();
      }
      grpc::Status status = stream_->Finish();
      std::lock_guard lock(mutex_);
      status_ = status;
      cv_.notify_all();
    });
  }

  bool write(const v1::GatewayMessage& message) {
    std::lock_guard lock(write_mutex_);
    return stream_->Write(message);
  }
  // Like an older gateway unless `accepts_event_batches`.
  bool hello(const std::string& gateway_id = "test-gateway", bool accepts_event_batches = false) {
    v1::GatewayMessage message;
    message.mutable_hello()->set_gateway_id(gateway_id);
    message.mutable_hello()->set_accepts_event_batches(accepts_event_batches);
    return write(message);
  }
  bool subscribe(const std::vector<std::string>& channels, bool heartbeat = false) {
    v1::GatewayMessage message;
    for (const auto& channel : channels) message.mutable_subscribe()->add_channels(channel);
    message.mutable_subscribe()->set_heartbeat(heartbeat);
    return write(message);
  }
  bool touch(const std::vector<std::string>& channels) {
    v1::GatewayMessage message;
    for (const auto& channel : channels) message.mutable_touch()->add_channels(channel);
    return write(message);
  }
  bool unsubscribe(const std::vector<std::string>& channels) {
    v1::GatewayMessage message;
    for (const auto& channel : channels) message.mutable_unsubscribe()->add_channels(channel);
    return write(message);
  }
  // The gateway closes its side of the stream.
  void writes_done() {
    std::lock_guard lock(write_mutex_);
    stream_->WritesDone();
  }
  // The gateway goes away (its stream breaks).
  void cancel() { context_.TryCancel(); }

  // The next message, or nullopt after `timeout`.
  std::optional<v1::BrokerMessage> next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [this] { return !received_.empty() || status_.has_value(); })) {
      return std::nullopt;
    }
    if (received_.empty()) return std::nullopt;
    v1::BrokerMessage message = std::move(received_.front());
    received_.pop_front();
    return message;
  }
  // The next ChannelEvent, skipping Ready.
  std::optional<v1::ChannelEvent> next_event(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto message = next(left);
      if (!message) return std::nullopt;
      if (message->has_event()) return message->event();
    }
  }
  // Waits for Ready (the first message after Hello).
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto message = next(timeout);
    return message && message->has_ready();
  }
  // The stream's final status, once it has ended.
  std::optional<grpc::Status> status(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [this] { return status_.has_value(); });
    return status_;
  }
  size_t pending() {
    std::lock_guard lock(mutex_);
    return received_.size();
  }

 private:
  std::unique_ptr<v1::Broker::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::GatewayMessage, v1::BrokerMessage>> stream_;
  std::mutex write_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<v1::BrokerMessage> received_;
  std::optional<grpc::Status> status_;
  bool reading_ = false;
  std::thread reader_;
};

}  // namespace sluice::testing
