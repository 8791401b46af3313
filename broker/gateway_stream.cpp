#include "broker/gateway_stream.hpp"

#include <vector>

#include "broker/broker_service.hpp"
#include "common/log.hpp"

namespace sluice::broker {

std::vector<std::string> requested_channels(const google::protobuf::RepeatedPtrField<std::string>& channels) {
  std::vector<std::string> out;
  out.reserve(channels.size());
  for (const auto& channel : channels) {
    if (!channel.empty()) out.push_back(channel);
  }
  return out;
}

GatewayStream::GatewayStream(BrokerService& service, uint64_t id, std::string peer)
    : service_(service), id_(id), peer_(std::move(peer)) {}

void GatewayStream::begin() {
  self_ = shared_from_this();
  service_.streams_gauge().inc();
  std::lock_guard lock(mutex_);
  StartRead(&request_);
}

void GatewayStream::join_locked() {
  if (joined_ || released_) return;
  joined_ = true;
  service_.tenants().add_stream(id_, shared_from_this());
}

void GatewayStream::release() {
  {
    std::lock_guard lock(mutex_);
    if (released_) return;
    released_ = true;
    if (!joined_) return;
  }
  service_.tenants().remove_stream(id_);
}

// The instance a message names; null for one this broker does not serve (yet), which
// is logged once per stream and name.
std::shared_ptr<TenantBroker> GatewayStream::tenant_locked(const std::string& name) {
  auto tenant = service_.tenants().find(name);
  if (!tenant && unknown_tenants_logged_.insert(name).second) {
    log::warn("Gateway stream names a tenant this broker does not serve",
              {{"gateway", gateway_id_}, {"peer", peer_}, {"tenant", name}});
  }
  return tenant;
}

void GatewayStream::handle(const v1::GatewayMessage& message) {
  SubscriptionRegistry::Change change;
  std::shared_ptr<TenantBroker> tenant;
  switch (message.kind_case()) {
    case v1::GatewayMessage::kHello: {
      log::info("Gateway stream opened", {{"gateway", message.hello().gateway_id()}, {"peer", peer_}});
      std::lock_guard lock(mutex_);
      gateway_id_ = message.hello().gateway_id();
      if (hello_seen_) return;
      accepts_batches_ = message.hello().accepts_event_batches();
      hello_seen_ = true;
      // Ready first, so that it precedes any event on the stream.
      auto ready = std::make_shared<v1::BrokerMessage>();
      ready->mutable_ready()->set_broker_id(service_.options().broker_id);
      if (!finished_ && !write_failed_) {
        if (in_flight_) {
          queue_.push_back(std::move(ready));
        } else {
          start_write_locked(std::move(ready));
        }
      }
      join_locked();
      return;
    }
    case v1::GatewayMessage::kSubscribe: {
      const auto& subscribe = message.subscribe();
      std::lock_guard lock(mutex_);
      if (released_) return;
      join_locked();
      tenant = tenant_locked(subscribe.tenant());
      // Kept until the broker's own tenants file names it (docs/hosting.md#reloading),
      // unless a reload just did.
      if (!tenant) {
        tenant = service_.tenants().hold_for_unknown(subscribe.tenant(), id_, requested_channels(subscribe.channels()),
                                                     subscribe.heartbeat());
      }
      if (!tenant) return;
      change = tenant->registry().subscribe(id_, requested_channels(subscribe.channels()), subscribe.heartbeat());
      break;
    }
    case v1::GatewayMessage::kUnsubscribe: {
      const auto& unsubscribe = message.unsubscribe();
      std::lock_guard lock(mutex_);
      if (released_) return;
      tenant = tenant_locked(unsubscribe.tenant());
      if (!tenant) {
        tenant = service_.tenants().release_for_unknown(unsubscribe.tenant(), id_,
                                                        requested_channels(unsubscribe.channels()));
      }
      if (!tenant) return;
      change = tenant->registry().unsubscribe(id_, requested_channels(unsubscribe.channels()));
      break;
    }
    case v1::GatewayMessage::kTouch: {
      std::lock_guard lock(mutex_);
      if (released_) return;
      tenant = tenant_locked(message.touch().tenant());
      if (!tenant) return;
      tenant->heartbeat().touch_coalesced(
          tenant->registry().held_with_heartbeat(id_, requested_channels(message.touch().channels())));
      return;
    }
    case v1::GatewayMessage::KIND_NOT_SET:
      return;  // a newer gateway's message kind: ignored
  }
  tenant->subscriber().channels_changed(std::move(change.toggled));
  tenant->heartbeat().touch(std::move(change.heartbeat));
}

void GatewayStream::OnReadDone(bool ok) {
  if (!ok) {
    // The gateway closed its side (or the stream broke): nothing more will come.
    release();
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
  auto front = std::move(queue_.front());
  queue_.pop_front();
  if (!accepts_batches_ || !front->has_event() || queue_.empty() || !queue_.front()->has_event()) return front;
  auto batch = std::make_shared<v1::BrokerMessage>();
  auto* events = batch->mutable_events()->mutable_events();
  size_t bytes = front->event().ByteSizeLong();
  *events->Add() = front->event();
  while (!queue_.empty() && queue_.front()->has_event() && events->size() < kMaxBatchEvents) {
    bytes += queue_.front()->event().ByteSizeLong();
    if (bytes > kMaxBatchBytes) break;
    *events->Add() = queue_.front()->event();
    queue_.pop_front();
  }
  return batch;
}

void GatewayStream::deliver(const std::shared_ptr<const v1::BrokerMessage>& message) {
  size_t queued = 0;
  std::string gateway;
  {
    std::lock_guard lock(mutex_);
    if (finished_ || write_failed_) return;
    if (!in_flight_) {
      start_write_locked(message);
      return;
    }
    if (queue_.size() < service_.options().gateway_queue) {
      queue_.push_back(message);
      return;
    }
    queued = queue_.size();
    gateway = gateway_id_;
  }
  service_.overflows().inc();
  log::warn("Gateway stream fell behind; closing it",
            {{"gateway", gateway}, {"peer", peer_}, {"queued", queued}});
  release();
  finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "gateway stream fell behind: more than " + std::to_string(service_.options().gateway_queue) +
                          " messages queued"));
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
  start_write_locked(next_write_locked());
}

void GatewayStream::finish(const grpc::Status& status) {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  queue_.clear();
  Finish(status);
}

void GatewayStream::OnCancel() {
  release();
  finish(grpc::Status::CANCELLED);
}

void GatewayStream::OnDone() {
  release();
  service_.streams_gauge().dec();
  {
    std::lock_guard lock(mutex_);
    log::info("Gateway stream closed", {{"gateway", gateway_id_}, {"peer", peer_}});
    queue_.clear();
    in_flight_.reset();
  }
  service_.stream_done(id_);
  // gRPC is done with the reactor; the Redis thread may still hold a reference.
  auto last = std::move(self_);
}

}  // namespace sluice::broker
