#pragma once
// One gateway's long-lived Events stream (proto/sluice/v1/broker.proto): reads
// Hello/Subscribe/Unsubscribe, and writes the events of the channels it asked for
// plus every system-channel event. Exactly one write is in flight; the rest wait
// in a bounded queue (broker/outgoing_queue.hpp: events go out batched, reconnect
// markers merged). A gateway that falls behind past the bound is finished with
// RESOURCE_EXHAUSTED (it reconnects and re-subscribes) instead of growing memory.
//
// Thread-safety: deliver() runs on the Redis thread, reactions on gRPC threads.
// A per-stream mutex guards the queue and the Start*/Finish calls; it is
// recursive because gRPC may run OnWriteDone inline from StartWrite.
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/event_sink.hpp"
#include "broker/gateway_session.hpp"
#include "broker/outgoing_queue.hpp"
#include "sluice/v1/broker.grpc.pb.h"

namespace sluice::broker {

class BrokerService;

class GatewayStream final : public grpc::ServerBidiReactor<v1::GatewayMessage, v1::BrokerMessage>,
                            public EventSink,
                            public std::enable_shared_from_this<GatewayStream> {
 public:
  GatewayStream(BrokerService& service, uint64_t id, std::string peer);

  // Starts reading; the stream keeps itself alive until OnDone.
  void begin();
  void deliver(const std::shared_ptr<const v1::BrokerMessage>& message) override;
  // Finishes the stream once; later calls do nothing.
  void finish(const grpc::Status& status);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void handle(const v1::GatewayMessage& message);
  void start_write_locked(std::shared_ptr<const v1::BrokerMessage> message);

  BrokerService& service_;
  GatewaySession session_;
  v1::GatewayMessage request_;

  std::recursive_mutex mutex_;
  OutgoingQueue queue_;  // behind the write in flight
  std::shared_ptr<const v1::BrokerMessage> in_flight_;
  bool accepts_batches_ = false;  // from Hello: events may be sent as EventBatch
  bool finished_ = false;
  bool write_failed_ = false;

  std::shared_ptr<GatewayStream> self_;
};

}  // namespace sluice::broker
