#pragma once
// Where the broker hands parsed Redis messages: one per gateway stream. The same
// immutable message object goes to every interested stream (no copy per gateway).
#include <memory>

#include "sluice/v1/broker.pb.h"

namespace sluice::broker {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Called on the Redis thread; must not block.
  virtual void deliver(const std::shared_ptr<const v1::BrokerMessage>& message) = 0;
};

}  // namespace sluice::broker
