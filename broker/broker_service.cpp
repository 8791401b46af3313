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
  uint64_t id = next_stream_id();
  auto stream = std::make_shared<GatewayStream>(*this, id, context->peer());
  std::weak_ptr<GatewayStream> weak = stream;
  bool open = add_stream(id, [weak] {
    if (auto stream = weak.lock()) stream->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "broker shutting down"));
  });
  if (!open) return new RejectedStream(grpc::Status(grpc::StatusCode::UNAVAILABLE, "broker shutting down"));
  stream->begin();
  return stream.get();
}

bool BrokerService::add_stream(uint64_t id, std::function<void()> close) {
  std::lock_guard lock(mutex_);
  if (closing_) return false;
  live_.emplace(id, std::move(close));
  streams_gauge_.inc();
  return true;
}

void BrokerService::stream_done(const GatewaySession& session) {
  log::info("Gateway stream closed", {{"gateway", session.gateway_id()}, {"peer", session.peer()}});
  std::lock_guard lock(mutex_);
  if (live_.erase(session.id())) streams_gauge_.dec();
}

void BrokerService::close_all() {
  std::vector<std::function<void()>> closes;
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    for (auto& [id, close] : live_) closes.push_back(close);
  }
  for (auto& close : closes) close();
}

}  // namespace sluice::broker
