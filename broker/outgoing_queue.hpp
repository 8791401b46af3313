#pragma once
// What waits, for one gateway stream, behind the write in flight
// (broker/gateway_stream.hpp), kept apart from gRPC so that its rules are tested on
// their own. Order is kept, and two things are merged on the way:
//  - the events at the front go out as one EventBatch to a gateway that reads batches:
//    a write per event (serialising, completion, a wake-up on each side) was the largest
//    cost left per Redis message (docs/benchmarks.md#the-headline-a-realistic-load-2026-12-03);
//  - consecutive Resubscribed markers of one tenant's channels are one message: after a
//    Redis reconnect every confirmed channel sends its own (broker/redis_subscriber.cpp),
//    and a gateway holding 100,000 channels would otherwise have as many queued, past
//    the bound, and be cut before the first event.
// Not thread-safe: the stream's mutex guards it.
#include <cstddef>
#include <deque>
#include <memory>

#include "sluice/v1/broker.pb.h"

namespace sluice::broker {

class OutgoingQueue {
 public:
  using Message = std::shared_ptr<const v1::BrokerMessage>;

  void push(Message message);
  // The next message to write (the queue must not be empty): the front, or, for a
  // gateway that reads batches, the events at the front as one EventBatch (at most
  // 1,024 events and 1 MiB).
  Message pop(bool batches);
  void clear();

  bool empty() const { return queue_.empty(); }
  // What the stream's bound counts: messages (merged markers as one), and their
  // serialized bytes (a merged marker as the sum of its parts, a little more than it is).
  size_t size() const { return queue_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Queued {
    Message message;
    size_t bytes;
    // Set for a marker this queue owns (a copy), which later markers are added to.
    std::shared_ptr<v1::BrokerMessage> extendable;
  };
  Message pop_front();

  std::deque<Queued> queue_;
  size_t bytes_ = 0;
};

}  // namespace sluice::broker
