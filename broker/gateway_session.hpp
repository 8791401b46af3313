#pragma once
// What one gateway's Events stream asks of the broker, whatever carries the stream
// (gRPC's GatewayStream, or the all-in-one's LocalGatewayStream): its name from Hello,
// its place among the streams every instance's system channels reach, and its
// channels in each instance's registry (docs/protocol.md#shared-redis-subscriptions).
// Thread-safe; the carrier decides how Ready goes out and what `sink` receives.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "broker/event_sink.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice::broker {

class BrokerTenants;
class TenantBroker;

// The channel names a gateway's Subscribe, Unsubscribe or Touch asks for: empty
// names are dropped; any other bytes are a channel name Redis may be asked for.
std::vector<std::string> requested_channels(const google::protobuf::RepeatedPtrField<std::string>& channels);

class GatewaySession {
 public:
  GatewaySession(BrokerTenants& tenants, uint64_t id, std::string peer);

  // One message from the gateway. The first Hello records the gateway's name, runs
  // `send_ready` (the carrier's Ready, which so precedes any event) and joins every
  // instance's registry, which starts the system broadcasts to `sink`; a later Hello
  // only renames. Subscribe, Unsubscribe and Touch change the registries; a kind this
  // broker does not know is ignored.
  void handle(const v1::GatewayMessage& message, const std::shared_ptr<EventSink>& sink,
              const std::function<void()>& send_ready);
  // Gives back every channel the stream held; later messages change nothing.
  void release();

  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }
  std::string gateway_id() const;

 private:
  bool hello(const v1::Hello& hello);
  void join(const std::shared_ptr<EventSink>& sink);
  void apply(const v1::GatewayMessage& message, const std::shared_ptr<EventSink>& sink);
  // Under mutex_.
  void join_locked(const std::shared_ptr<EventSink>& sink);
  // A message named an instance this broker does not serve (yet): logged once per
  // stream and name.
  void note_unknown_locked(const std::string& name);

  BrokerTenants& tenants_;
  const uint64_t id_;
  const std::string peer_;

  mutable std::mutex mutex_;
  std::string gateway_id_;  // from Hello, for logs
  bool hello_seen_ = false;
  bool joined_ = false;
  bool released_ = false;
  std::set<std::string> unknown_tenants_logged_;
};

}  // namespace sluice::broker
