#pragma once
// The broker's gRPC service: one GatewayStream per gateway Events stream.
// Checks the optional shared secret (SLUICE_INTERNAL_TOKEN) first. It also keeps the
// all-in-one's in-process streams (broker/local_gateway_stream.hpp) among the live
// ones, so that shutdown ends every gateway's stream, however carried.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "broker/broker_tenants.hpp"
#include "broker/gateway_session.hpp"
#include "common/metrics.hpp"
#include "sluice/v1/broker.grpc.pb.h"

namespace sluice::broker {

class BrokerService final : public v1::Broker::CallbackService {
 public:
  struct Options {
    std::string internal_token;
    size_t gateway_queue = 65536;
    size_t gateway_queue_bytes = 128u << 20;
    std::string broker_id;
  };

  BrokerService(BrokerTenants& tenants, Options options);

  grpc::ServerBidiReactor<v1::GatewayMessage, v1::BrokerMessage>* Events(
      grpc::CallbackServerContext* context) override;

  // Finishes every stream with UNAVAILABLE and refuses new ones (shutdown).
  void close_all();

  BrokerTenants& tenants() { return tenants_; }
  const Options& options() const { return options_; }
  metrics::Counter& events_sent() { return events_sent_; }
  metrics::Counter& overflows() { return overflows_; }

  uint64_t next_stream_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }
  // A stream opens, counted as live until stream_done; shutdown ends it with `close`.
  // False (and nothing kept or counted) once shutting down.
  bool add_stream(uint64_t id, std::function<void()> close);
  // A stream that add_stream accepted has ended, whatever carried it.
  void stream_done(const GatewaySession& session);

 private:
  BrokerTenants& tenants_;
  Options options_;

  std::mutex mutex_;
  std::unordered_map<uint64_t, std::function<void()>> live_;  // id → how to close it
  bool closing_ = false;
  std::atomic<uint64_t> next_id_{1};

  metrics::Counter& events_sent_;
  metrics::Counter& overflows_;
  metrics::Gauge& streams_gauge_;
};

}  // namespace sluice::broker
