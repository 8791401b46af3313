#include "broker/gateway_stream.hpp"

#include <vector>

#include "broker/broker_service.hpp"
#include "common/log.hpp"

namespace sluice::broker {

GatewayStream::GatewayStream(BrokerService& service, uint64_t id, std::string peer)
    : service_(service), session_(service.tenants(), id, std::move(peer)) {}

void GatewayStream::begin() {
  self_ = shared_from_this();
  std::lock_guard lock(mutex_);
  StartRead(&request_);
}

void GatewayStream::handle(const v1::GatewayMessage& message) {
  session_.handle(message, shared_from_this(), [&] {
    std::lock_guard lock(mutex_);
    accepts_batches_ = message.hello().accepts_event_batches();
    auto ready = std::make_shared<v1::BrokerMessage>();
    ready->mutable_ready()->set_broker_id(service_.options().broker_id);
    if (finished_ || write_failed_) return;
    if (in_flight_) {
      enqueue_locked(std::move(ready));
    } else {
      start_write_locked(std::move(ready));
    }
  });
}

void GatewayStream::OnReadDone(bool ok) {
  if (!ok) {
    // The gateway closed its side (or the stream broke): nothing more will come.
    session_.release();
    finish(grpc::Status::OK);
    return;
  }
  handle(request_);
  std::lock_guard lock(mutex_);
  if (finished_) return;
  StartRead(&request_);
}

void GatewayStream::start_write_locked(std::shared_ptr<const v1::BrokerMessage> message) {
  in_flight_ = std::move(message);
  if (in_flight_->has_event()) service_.events_sent().inc();
  if (in_flight_->has_events()) service_.events_sent().inc(in_flight_->events().events_size());
  StartWrite(in_flight_.get());
}

// The front of the queue; for a gateway that reads batches, the events at the front that
// queued up behind the last write, as one message: a write per event (serialising,
// completion, a wake-up on each side) was the largest cost left per Redis message
// (docs/benchmarks.md#the-headline-a-realistic-load-2026-12-03). Order is kept: a
// batch is a run of events, ended by anything else in the queue.
std::shared_ptr<const v1::BrokerMessage> GatewayStream::next_write_locked() {
  // Far below gRPC's 4 MiB default for a received message.
  constexpr size_t kMaxBatchBytes = 1 << 20;
  constexpr int kMaxBatchEvents = 1024;
  size_t bytes = queue_.front().bytes;
  auto front = dequeue_locked();
  auto next_is_event = [&] { return !queue_.empty() && queue_.front().message->has_event(); };
  if (!accepts_batches_ || !front->has_event() || !next_is_event()) return front;
  auto batch = std::make_shared<v1::BrokerMessage>();
  auto* events = batch->mutable_events()->mutable_events();
  *events->Add() = front->event();
  while (next_is_event() && events->size() < kMaxBatchEvents) {
    bytes += queue_.front().bytes;
    if (bytes > kMaxBatchBytes) break;
    *events->Add() = dequeue_locked()->event();
  }
  return batch;
}

void GatewayStream::enqueue_locked(std::shared_ptr<const v1::BrokerMessage> message) {
  // Sized once here: the bound, the batch limit and the dequeue all read this.
  const size_t bytes = message->ByteSizeLong();
  queued_bytes_ += bytes;
  queue_.push_back({std::move(message), bytes});
}

std::shared_ptr<const v1::BrokerMessage> GatewayStream::dequeue_locked() {
  Queued front = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= front.bytes;
  return std::move(front.message);
}

void GatewayStream::clear_queue_locked() {
  queue_.clear();
  queued_bytes_ = 0;
}

void GatewayStream::deliver(const std::shared_ptr<const v1::BrokerMessage>& message) {
  size_t queued = 0;
  size_t queued_bytes = 0;
  {
    std::lock_guard lock(mutex_);
    if (finished_ || write_failed_) return;
    if (!in_flight_) {
      start_write_locked(message);
      return;
    }
    // A gateway that stopped reading holds what is queued for it (shared with the
    // streams that read, but kept alive by this one): bounded in number and in bytes,
    // so that it cannot take the broker's memory (docs/scale-out.md#brokers).
    const auto& options = service_.options();
    if (queue_.size() < options.gateway_queue && queued_bytes_ < options.gateway_queue_bytes) {
      enqueue_locked(message);
      return;
    }
    queued = queue_.size();
    queued_bytes = queued_bytes_;
  }
  service_.overflows().inc();
  log::warn("Gateway stream fell behind; closing it", {{"gateway", session_.gateway_id()},
                                                       {"peer", session_.peer()},
                                                       {"queued", queued},
                                                       {"queued_bytes", queued_bytes}});
  session_.release();
  finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "gateway stream fell behind: " + std::to_string(queued) + " messages of " +
                          std::to_string(queued_bytes) + " bytes queued"));
}

void GatewayStream::OnWriteDone(bool ok) {
  std::lock_guard lock(mutex_);
  in_flight_.reset();
  if (!ok) {
    // The stream is broken; OnDone follows.
    write_failed_ = true;
    clear_queue_locked();
    return;
  }
  if (finished_ || queue_.empty()) return;
  start_write_locked(next_write_locked());
}

void GatewayStream::finish(const grpc::Status& status) {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  clear_queue_locked();
  Finish(status);
}

void GatewayStream::OnCancel() {
  session_.release();
  finish(grpc::Status::CANCELLED);
}

void GatewayStream::OnDone() {
  session_.release();
  {
    std::lock_guard lock(mutex_);
    clear_queue_locked();
    in_flight_.reset();
  }
  service_.stream_done(session_);
  // gRPC is done with the reactor; the Redis thread may still hold a reference.
  auto last = std::move(self_);
}

}  // namespace sluice::broker
