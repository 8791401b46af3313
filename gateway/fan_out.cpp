#include "gateway/fan_out.hpp"

#include <optional>

#include "gateway/channel_table.hpp"
#include "gateway/client.hpp"
#include "gateway/client_registry.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/http_responses.hpp"
#include "gateway/websocket_protocol.hpp"

namespace sluice::gateway {

// Frames built for one event on this worker: one SSE chunk per payload variant,
// one WebSocket frame per (stream echo, payload variant). Few distinct echoes
// exist per channel, so a short vector beats a map.
struct FanOut::FrameCache {
  const GatewayEvent& event;
  // False for the one client of a status that waited for its viewer's data: its frame is
  // that client's own bytes, and counts against its own queue bound
  // (docs/protocol.md#slow-clients), not as a frame many clients share.
  bool for_many_clients = true;
  Frame sse[2] = {};
  std::vector<std::pair<std::pair<const std::string*, bool>, Frame>> websocket = {};
  // The status's text, prepared on the first evaluation for every viewer after it.
  std::optional<FilterSubject> filter_subject = {};

  Frame frame_of(std::string bytes) const {
    return for_many_clients ? make_shared_frame(std::move(bytes)) : make_frame(std::move(bytes));
  }

  const Frame& for_client(ClientKind kind, const std::string& echo, bool filtered_variant) {
    if (kind == ClientKind::eventsource) {
      Frame& frame = sse[filtered_variant];
      if (!frame) frame = frame_of(event.sse(filtered_variant));
      return frame;
    }
    for (auto& [key, frame] : websocket) {
      if (key.second == filtered_variant && (key.first == &echo || *key.first == echo)) return frame;
    }
    websocket.emplace_back(std::make_pair(&echo, filtered_variant),
                           frame_of(websocket_event_frame(echo, event.ws_tail(filtered_variant))));
    return websocket.back().second;
  }
};

// docs/protocol.md#feed-access-check and docs/protocol.md#language-check for
// update/status.update on public and hashtag streams.
bool FanOut::passes_feed_and_language(const Subscription& subscription, const FeedFacts& status) {
  switch (check_feed_and_language(status, subscription.rules)) {
    case FeedCheck::pass: return true;
    case FeedCheck::malformed: context_.metrics.malformed_statuses->inc(); return false;
    case FeedCheck::drop: return false;
  }
  return false;
}

namespace {

// Asks for every cache line of `object`, without waiting for them. GCC 12 deletes
// __builtin_prefetch as dead code in a loop like deliver()'s (its result is never
// used), so on x86-64 the instruction is written out.
template <typename T>
void prefetch_object(const T* object) {
  const char* bytes = reinterpret_cast<const char*>(object);
  for (size_t offset = 0; offset < sizeof(T); offset += 64) {
#if defined(__x86_64__)
    asm volatile("prefetcht0 %0" : : "m"(bytes[offset]));
#else
    __builtin_prefetch(bytes + offset);
#endif
  }
}

// Each client's write is a system call whose kernel work (TCP, and the loopback
// receive it runs on this CPU) evicts what the loop touched before it, so every
// listener's Subscription and Client would be a cache miss on arrival: most of the
// gap between this loop and a bare one over file descriptors (docs/benchmarks.md,
// "Where the time goes"). Asked for a client or two ahead, they arrive during a write;
// so does the viewer entry of a filtered subscription. Going further down the viewer's
// chain (its sets, then their ids) moved the misses into the loop instead of removing
// them (docs/benchmarks.md#many-viewers-against-one-2026-12-03-7e64ca0).
void prefetch_ahead(const std::vector<ChannelTable::Listener>& list, size_t i) {
  if (i + 2 < list.size()) prefetch_object(list[i + 2].subscription);
  if (i + 1 < list.size()) {
    const Subscription& next = *list[i + 1].subscription;
    prefetch_object(next.client);
    if (next.viewer) prefetch_object(next.viewer);
  }
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool FanOut::send_status(Client& client, const std::string& echo_json, const StatusDecision& decision,
                         FrameCache& frames) {
  switch (decision.verdict) {
    case StatusVerdict::drop:
      return false;
    case StatusVerdict::unchanged:
      client.send(frames.for_client(client.kind(), echo_json, false));
      return true;
    case StatusVerdict::no_filter_match:
      client.send(frames.for_client(client.kind(), echo_json, true));
      return true;
    case StatusVerdict::filter_matches: {
      // Only a client whose filters match pays for its own payload (design).
      const GatewayEvent& event = frames.event;
      std::string payload = payload_with_filtered(event.payload_open, decision.filtered_json);
      client.send(make_frame(client.kind() == ClientKind::eventsource
                                 ? sse_event_chunk(event.source->event(), payload)
                                 : websocket_event_frame(echo_json, websocket_tail(event.source->event(), payload))));
      return true;
    }
  }
  return false;
}

void FanOut::deliver_decided(Client& client, const std::string& echo_json, const GatewayEvent& event,
                             const ViewerCache::Viewer& viewer) {
  if (!client.open()) return;
  FrameCache frames{event, /*for_many_clients=*/false};
  std::string evaluated;
  const auto& status = event.source->status();
  auto decision = decide_status(status, RelationsDigest::of(status), viewer.for_decision(),
                                [&](const StatusViewer& data) -> const std::string& {
                                  evaluated = evaluate_filters(data, FilterSubject(status.filter_text()), unix_ms_now());
                                  return evaluated;
                                });
  if (send_status(client, echo_json, decision, frames)) context_.metrics.count_sent(client.kind(), client.tenant_metrics, 1);
}

void FanOut::deliver(const std::shared_ptr<const GatewayEvent>& shared_event) {
  const GatewayEvent& event = *shared_event;
  if (event.is_system) return deliver_system(event);
  if (event.source->payload().empty()) return;  // docs/protocol.md#messages-from-rails: no payload, nothing to forward
  const auto* listeners = channels_.listeners(event.channel_key());
  if (!listeners) return;
  FrameCache frames{event};
  uint64_t sent[2] = {0, 0};
  // A channel key names one instance: every listener here is of the event's.
  TenantMetrics* tenant_series = nullptr;
  auto now = context_.now();
  int64_t now_ms = 0;
  // Each viewer's filters are evaluated once per event: the viewer's connections on
  // this worker share the result, kept in the viewer under this event's number.
  const uint64_t event_number = ++events_delivered_;
  // What the feed and language checks read of the status, once for every listener.
  std::optional<FeedFacts> feed_facts;
  std::optional<RelationsDigest> status_keys;  // what the relations check reads of the status, once too
  const ViewerCache::Viewer* viewer = nullptr;
  const EvaluateFilters evaluate_once = [&](const StatusViewer& data) -> const std::string& {
    if (viewer->evaluated_event != event_number) {
      if (!now_ms) now_ms = unix_ms_now();
      if (!frames.filter_subject) frames.filter_subject.emplace(event.source->status().filter_text());
      viewer->evaluated_filtered = evaluate_filters(data, *frames.filter_subject, now_ms);
      viewer->evaluated_event = event_number;
    }
    return viewer->evaluated_filtered;
  };
  const std::vector<ChannelTable::Listener>& list = *listeners;
  for (size_t i = 0; i < list.size(); ++i) {
    prefetch_ahead(list, i);
    Subscription& subscription = *list[i].subscription;
    Client& client = *subscription.client;
    if (!client.open()) continue;
    tenant_series = client.tenant_metrics;
    if (!subscription.plan.filtered || !event.is_status) {
      client.send(frames.for_client(client.kind(), subscription.plan.echo_json, false));
      ++sent[static_cast<int>(client.kind())];
      continue;
    }
    if (!feed_facts) feed_facts = FeedFacts::of(event.source->status());
    if (!passes_feed_and_language(subscription, *feed_facts)) continue;
    if (!viewers_.ready(*subscription.viewer, now)) {
      viewers_.defer(*subscription.viewer->id, client.shared_from_this(), subscription.plan.echo_json, shared_event,
                     now);
      continue;
    }
    viewer = subscription.viewer;
    if (!status_keys) status_keys = RelationsDigest::of(event.source->status());
    auto decision = decide_status(event.source->status(), *status_keys, viewer->for_decision(), evaluate_once);
    if (!send_status(client, subscription.plan.echo_json, decision, frames)) continue;
    ++sent[static_cast<int>(client.kind())];
  }
  if (sent[0]) context_.metrics.count_sent(ClientKind::eventsource, tenant_series, sent[0]);
  if (sent[1]) context_.metrics.count_sent(ClientKind::websocket, tenant_series, sent[1]);
}

// docs/protocol.md#system-channels: kill closes, filters_changed clears filter caches, the rest is ignored.
void FanOut::deliver_system(const GatewayEvent& event) {
  const auto& name = event.source->event();
  bool kill = name == "kill";
  if (!kill && name != "filters_changed") return;
  if (!event.source->system_id_valid()) return;
  const bool by_token = event.source->system_channel() == sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN;
  auto clients = by_token ? clients_.with_access_token(event.source->system_id())
                          : clients_.of_account(event.source->system_id());
  // Ids repeat across instances: a system event concerns its own instance's clients only
  // (docs/hosting.md#tenants).
  std::erase_if(clients, [&](const Client* client) { return client->auth().tenant != event.source->tenant(); });
  if (!kill) {
    // Filter caches are kept per account on this worker: one refresh serves every
    // connection of the account (a token channel names one account too).
    if (!clients.empty()) viewers_.filters_changed(ViewerId::of(clients.front()->auth()));
    return;
  }
  for (Client* client : clients) client->end_gracefully();
}

}  // namespace sluice::gateway
