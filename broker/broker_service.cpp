#include "broker/broker_service.hpp"

#include <vector>

#include "broker/gateway_stream.hpp"
#include "broker/rejected_stream.hpp"
#include "common/grpc_auth.hpp"
#include "common/log.hpp"

namespace sluice::broker {

BrokerService::BrokerService(BrokerTenants& tenants, Options options)
    : tenants_(tenants),
      options_(std::move(options)),
      events_sent_(metrics::Registry::global().counter("sluice_broker_events_sent_total",
                                                       "Channel events the broker wrote to gateway streams")),
      overflows_(metrics::Registry::global().counter(
          "sluice_broker_gateway_overflows_total",
          "Gateway streams finished with RESOURCE_EXHAUSTED because they fell behind")),
      streams_gauge_(metrics::Registry::global().gauge("sluice_broker_gateway_streams",
                                                       "Open gateway Events streams")) {}

grpc::ServerBidiReactor<v1::GatewayMessage, v1::BrokerMessage>* BrokerService::Events(
    grpc::CallbackServerContext* context) {
  if (!internal_token_ok(*context, options_.internal_token)) {
    log::warn("Gateway stream refused: wrong or missing internal token", {{"peer", context->peer()}});
    return new RejectedStream(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "internal token required"));
  }
  uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  auto stream = std::make_shared<GatewayStream>(*this, id, context->peer());
  {
    std::lock_guard lock(mutex_);
    if (closing_) {
      return new RejectedStream(grpc::Status(grpc::StatusCode::UNAVAILABLE, "broker shutting down"));
    }
    live_.emplace(id, stream);
  }
  stream->begin();
  return stream.get();
}

void BrokerService::stream_done(uint64_t id) {
  std::lock_guard lock(mutex_);
  live_.erase(id);
}

void BrokerService::close_all() {
  std::vector<std::shared_ptr<GatewayStream>> streams;
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    for (auto& [id, weak] : live_) {
      if (auto stream = weak.lock()) streams.push_back(std::move(stream));
    }
  }
  for (auto& stream : streams) stream->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "broker shutting down"));
}

}  // namespace sluice::broker
