#pragma once
// One event to every listener on a worker (docs/protocol.md#event-processing): frames
// built once per payload variant and stream echo and shared by every client that gets
// them; on filtered streams the one status decision (gateway/status_decision.hpp), with
// statuses whose viewer data is still loading handed to the ViewerCache and decided
// here when it arrives; and the system channels' `kill` and `filters_changed`.
// Worker thread only.
#include <cstdint>
#include <memory>
#include <string>

#include "gateway/gateway_event.hpp"
#include "gateway/status_decision.hpp"
#include "gateway/viewer_cache.hpp"

namespace sluice::gateway {

class ChannelTable;
class Client;
class ClientRegistry;
class GatewayContext;
struct Subscription;

class FanOut {
 public:
  FanOut(GatewayContext& context, const ChannelTable& channels, const ClientRegistry& clients, ViewerCache& viewers)
      : context_(context), channels_(channels), clients_(clients), viewers_(viewers) {}

  void deliver(const std::shared_ptr<const GatewayEvent>& event);
  // A status on a filtered stream whose viewer data arrived after it (docs/protocol.md#relations).
  void deliver_decided(Client& client, const std::string& echo_json, const GatewayEvent& event,
                       const ViewerCache::Viewer& viewer);

 private:
  struct FrameCache;

  void deliver_system(const GatewayEvent& event);
  // docs/protocol.md#feed-access-check and docs/protocol.md#language-check, decided
  // from the subscription and the token alone.
  bool passes_feed_and_language(const Subscription& subscription, const FeedFacts& status);
  // Sends what decide_status chose: a shared frame, or one of the client's own.
  // False when the status is dropped.
  bool send_status(Client& client, const std::string& echo_json, const StatusDecision& decision, FrameCache& frames);

  GatewayContext& context_;
  const ChannelTable& channels_;
  const ClientRegistry& clients_;
  ViewerCache& viewers_;
  // Numbers the events this worker fans out, for the per-viewer evaluation cache
  // (ViewerCache::Viewer::evaluated_event); never 0.
  uint64_t events_delivered_ = 0;
};

}  // namespace sluice::gateway
