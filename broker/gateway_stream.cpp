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
      queue_.push(std::move(ready));
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
    if (queue_.size() < options.gateway_queue && queue_.bytes() < options.gateway_queue_bytes) {
      queue_.push(message);
      return;
    }
    queued = queue_.size();
    queued_bytes = queue_.bytes();
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
    queue_.clear();
    return;
  }
  if (finished_ || queue_.empty()) return;
  start_write_locked(queue_.pop(accepts_batches_));
}

void GatewayStream::finish(const grpc::Status& status) {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  queue_.clear();
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
    queue_.clear();
    in_flight_.reset();
  }
  service_.stream_done(session_);
  // gRPC is done with the reactor; the Redis thread may still hold a reference.
  auto last = std::move(self_);
}

}  // namespace sluice::broker
