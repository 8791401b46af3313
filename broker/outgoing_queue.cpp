#include "broker/outgoing_queue.hpp"

#include <utility>

namespace sluice::broker {

namespace {

// A marker for channels (not the system channels' one, which stands alone).
bool is_channel_marker(const v1::BrokerMessage& message) {
  return message.has_resubscribed() && !message.resubscribed().system_channels();
}

}  // namespace

void OutgoingQueue::push(Message message) {
  // Sized once here: the bound, the batch limit and the pop all read this.
  const size_t bytes = message->ByteSizeLong();
  bytes_ += bytes;
  if (!is_channel_marker(*message)) {
    queue_.push_back({std::move(message), bytes, nullptr});
    return;
  }
  if (!queue_.empty() && queue_.back().extendable &&
      queue_.back().extendable->resubscribed().tenant() == message->resubscribed().tenant()) {
    queue_.back().extendable->mutable_resubscribed()->mutable_channels()->MergeFrom(message->resubscribed().channels());
    queue_.back().bytes += bytes;
    return;
  }
  // A copy: the marker itself is shared with every other stream of its channel.
  auto owned = std::make_shared<v1::BrokerMessage>(*message);
  queue_.push_back({owned, bytes, owned});
}

OutgoingQueue::Message OutgoingQueue::pop(bool batches) {
  // Far below gRPC's 4 MiB default for a received message.
  constexpr size_t kMaxBatchBytes = 1 << 20;
  constexpr int kMaxBatchEvents = 1024;
  size_t bytes = queue_.front().bytes;
  Message front = pop_front();
  auto next_is_event = [&] { return !queue_.empty() && queue_.front().message->has_event(); };
  if (!batches || !front->has_event() || !next_is_event()) return front;
  auto batch = std::make_shared<v1::BrokerMessage>();
  auto* events = batch->mutable_events()->mutable_events();
  *events->Add() = front->event();
  while (next_is_event() && events->size() < kMaxBatchEvents) {
    bytes += queue_.front().bytes;
    if (bytes > kMaxBatchBytes) break;
    *events->Add() = pop_front()->event();
  }
  return batch;
}

OutgoingQueue::Message OutgoingQueue::pop_front() {
  Queued front = std::move(queue_.front());
  queue_.pop_front();
  bytes_ -= front.bytes;
  return std::move(front.message);
}

void OutgoingQueue::clear() {
  queue_.clear();
  bytes_ = 0;
}

}  // namespace sluice::broker
