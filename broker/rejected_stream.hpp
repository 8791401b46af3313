#pragma once
// A gateway stream refused before it starts (wrong internal token, broker
// shutting down): finished at once with the given status.
#include <grpcpp/grpcpp.h>

#include "sluice/v1/broker.grpc.pb.h"

namespace sluice::broker {

class RejectedStream final : public grpc::ServerBidiReactor<v1::GatewayMessage, v1::BrokerMessage> {
 public:
  explicit RejectedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace sluice::broker
