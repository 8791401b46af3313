#include "gateway/worker.hpp"

#include <algorithm>
#include <random>

#include "common/log.hpp"
#include "gateway/websocket_protocol.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/http_responses.hpp"

namespace sluice::gateway {
namespace {

template <typename T>
void erase_value(std::vector<T>& items, const T& value) {
  auto it = std::find(items.begin(), items.end(), value);
  if (it == items.end()) return;
  *it = items.back();
  items.pop_back();
}

}  // namespace

// Frames built for one event on this worker: one SSE chunk per payload variant,
// one WebSocket frame per (stream echo, payload variant). Few distinct echoes
// exist per channel, so a short vector beats a map.
struct Worker::FrameCache {
  const GatewayEvent& event;
  Frame sse[2];
  std::vector<std::pair<std::pair<const std::string*, bool>, Frame>> websocket;
  // Keyword-filter results per filter set: accounts share one evaluation.
  std::vector<std::pair<const CompiledFilters*, std::string>> evaluations;

  const Frame& for_client(ClientKind kind, const std::string& echo, bool filtered_variant) {
    if (kind == ClientKind::eventsource) {
      Frame& frame = sse[filtered_variant];
      if (!frame) frame = make_shared_frame(filtered_variant ? event.sse_filtered : event.sse_plain);
      return frame;
    }
    for (auto& [key, frame] : websocket) {
      if (key.second == filtered_variant && (key.first == &echo || *key.first == echo)) return frame;
    }
    websocket.emplace_back(std::make_pair(&echo, filtered_variant),
                           make_shared_frame(websocket_event_frame(
                               echo, filtered_variant ? event.ws_tail_filtered : event.ws_tail_plain)));
    return websocket.back().second;
  }
};

Worker::Worker(GatewayContext& context, unsigned index)
    : context_(context),
      index_(index),
      heartbeat_buckets_(static_cast<size_t>(context.config.sse_heartbeat_seconds)),
      viewers_(*this, std::chrono::milliseconds(context.config.relations_max_staleness_ms)),
      thump_frame_(make_shared_frame(chunk(":thump\n\n"))),
      ping_frame_(make_shared_frame(encode_ping_frame())),
      read_buffer_(64 * 1024) {}

Worker::~Worker() { stop(); }

void Worker::start() {
  schedule_tick();
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        // A handler threw: log it and keep serving the other clients.
        log::error("worker handler failed", {{"worker", index_}, {"error", e.what()}});
      }
    }
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    ticker_.cancel();
    auto clients = clients_;
    for (auto& client : clients) client->close_now();
  });
  // Let the close handlers run, then stop.
  asio::post(io_, [this] { io_.stop(); });
  thread_.join();
}

void Worker::drain(std::chrono::milliseconds window, uint64_t seed) {
  draining_ = true;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> offset_ms(0, std::max<int64_t>(0, window.count()));
  auto now = context_.now();
  drain_order_.clear();
  drain_order_.reserve(clients_.size());
  for (const auto& client : clients_) {
    drain_order_.push_back({now + std::chrono::milliseconds(offset_ms(rng)), client});
  }
  std::sort(drain_order_.begin(), drain_order_.end(),
            [](const DrainEntry& a, const DrainEntry& b) { return a.at < b.at; });
  drain_next_ = 0;
  drain_due();
}

void Worker::drain_due() {
  auto now = context_.now();
  while (drain_next_ < drain_order_.size() && drain_order_[drain_next_].at <= now) {
    if (auto client = drain_order_[drain_next_].client.lock()) {
      context_.metrics.drained_clients[static_cast<int>(client->kind())]->inc();
      client->go_away();
    }
    ++drain_next_;
  }
  if (drain_next_ >= drain_order_.size()) {
    drain_order_.clear();
    return;
  }
  drain_timer_.expires_at(drain_order_[drain_next_].at);
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) drain_due();
  });
}

void Worker::schedule_tick() {
  ticker_.expires_after(std::chrono::seconds(1));
  ticker_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    tick();
    schedule_tick();
  });
}

void Worker::tick() {
  ++tick_;
  // Copies: a heartbeat can close a client, which edits these lists.
  auto due = heartbeat_buckets_[tick_ % heartbeat_buckets_.size()];
  for (Client* client : due) client->heartbeat();
  if (tick_ % static_cast<uint64_t>(context_.config.websocket_ping_seconds) == 0) {
    auto sockets = websockets_;
    for (Client* client : sockets) client->heartbeat();
  }
}

void Worker::add_client(std::shared_ptr<Client> client) {
  Client& c = *client;
  c.worker_slot = static_cast<uint32_t>(clients_.size());
  clients_.push_back(std::move(client));
  client_count_.store(clients_.size(), std::memory_order_relaxed);
  by_access_token_[c.auth().access_token_id].push_back(&c);
  by_account_[c.auth().account_id].push_back(&c);
  if (c.kind() == ClientKind::eventsource) {
    c.heartbeat_bucket = static_cast<uint32_t>(tick_ % heartbeat_buckets_.size());
    auto& bucket = heartbeat_buckets_[c.heartbeat_bucket];
    c.heartbeat_slot = static_cast<uint32_t>(bucket.size());
    bucket.push_back(&c);
  } else {
    c.heartbeat_slot = static_cast<uint32_t>(websockets_.size());
    websockets_.push_back(&c);
  }
  context_.metrics.clients(c.kind()).inc();
  // docs/protocol.md#metrics: each connection counts two system channels.
  context_.metrics.channels(c.kind(), "system").add(2);
  // A request admitted while the gateway drains (its lookup was in flight): it goes
  // as soon as it has started, never after the drain window.
  if (draining_) {
    asio::post(io_, [weak = std::weak_ptr<Client>(clients_.back())] {
      if (auto client = weak.lock()) client->go_away();
    });
  }
}

void Worker::remove_client(Client& c) {
  auto remove_slot = [](std::vector<Client*>& list, uint32_t slot, auto set_slot) {
    if (slot >= list.size()) return;
    list[slot] = list.back();
    set_slot(*list[slot], slot);
    list.pop_back();
  };
  if (c.kind() == ClientKind::eventsource) {
    remove_slot(heartbeat_buckets_[c.heartbeat_bucket], c.heartbeat_slot,
                [](Client& moved, uint32_t slot) { moved.heartbeat_slot = slot; });
  } else {
    remove_slot(websockets_, c.heartbeat_slot, [](Client& moved, uint32_t slot) { moved.heartbeat_slot = slot; });
  }
  for (auto* index : {&by_access_token_, &by_account_}) {
    int64_t key = index == &by_access_token_ ? c.auth().access_token_id : c.auth().account_id;
    auto it = index->find(key);
    if (it == index->end()) continue;
    erase_value(it->second, &c);
    if (it->second.empty()) index->erase(it);
  }
  context_.metrics.clients(c.kind()).dec();
  context_.metrics.channels(c.kind(), "system").add(-2);
  // Last: this may drop the final reference to the client.
  uint32_t slot = c.worker_slot;
  if (slot < clients_.size() && clients_[slot].get() == &c) {
    auto keep_alive = std::move(clients_[slot]);
    if (slot + 1 != clients_.size()) {
      clients_[slot] = std::move(clients_.back());
      clients_[slot]->worker_slot = slot;
    }
    clients_.pop_back();
    client_count_.store(clients_.size(), std::memory_order_relaxed);
    asio::post(io_, [keep_alive = std::move(keep_alive)] {});
  }
}

void Worker::attach(Subscription& subscription) {
  const auto& channels = subscription.plan.channels;
  subscription.slots.resize(channels.size());
  for (size_t i = 0; i < channels.size(); ++i) {
    auto& list = listeners_[channels[i]];
    subscription.slots[i] = static_cast<uint32_t>(list.size());
    list.push_back(ChannelListener{&subscription, static_cast<uint32_t>(i)});
    if (list.size() == 1) {
      context_.broker.acquire(channels[i], /*heartbeat=*/true);
    } else {
      context_.broker.touch(channels[i]);  // docs/protocol.md#subscription-heartbeat-keys
    }
  }
  if (subscription.plan.filtered) viewers_.retain(subscription.client->auth().account_id);
  context_.metrics.channels(subscription.client->kind(), subscription.plan.name).inc();
}

void Worker::detach(Subscription& subscription) {
  const auto& channels = subscription.plan.channels;
  for (size_t i = 0; i < channels.size() && i < subscription.slots.size(); ++i) {
    auto it = listeners_.find(channels[i]);
    if (it == listeners_.end()) continue;
    auto& list = it->second;
    uint32_t slot = subscription.slots[i];
    if (slot >= list.size() || list[slot].subscription != &subscription) continue;
    list[slot] = list.back();
    list[slot].subscription->slots[list[slot].channel_index] = slot;
    list.pop_back();
    if (list.empty()) {
      listeners_.erase(it);
      context_.broker.release(channels[i]);
    }
  }
  subscription.slots.clear();
  if (subscription.plan.filtered) viewers_.release(subscription.client->auth().account_id);
  context_.metrics.channels(subscription.client->kind(), subscription.plan.name).dec();
}

// docs/protocol.md#feed-access-check and docs/protocol.md#language-check for
// update/status.update on public and hashtag streams.
bool Worker::passes_feed_and_language(const Subscription& subscription, const GatewayEvent& event) {
  SubscriptionRules rules{subscription.filter_local, subscription.filter_remote,
                          &subscription.client->auth().chosen_languages};
  switch (check_feed_and_language(event.source->status(), rules)) {
    case FeedCheck::pass: return true;
    case FeedCheck::malformed: context_.metrics.malformed_statuses->inc(); return false;
    case FeedCheck::drop: return false;
  }
  return false;
}

namespace {
int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool Worker::send_status(Client& client, const std::string& echo_json, const StatusDecision& decision,
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

void Worker::deliver_decided(Client& client, const std::string& echo_json, const GatewayEvent& event,
                             const ViewerCache::Viewer& viewer) {
  if (!client.open()) return;
  FrameCache frames{event, {}, {}, {}};
  std::string evaluated;
  auto decision = decide_status(event.source->status(), client.auth().account_id, *viewer.relations, *viewer.filters,
                                [&](const CompiledFilters& filters) -> const std::string& {
                                  evaluated = filters.evaluate(event.source->status().filter_text(), unix_ms_now());
                                  return evaluated;
                                });
  if (send_status(client, echo_json, decision, frames)) context_.metrics.sent(client.kind()).inc();
}

void Worker::deliver(const std::shared_ptr<const GatewayEvent>& shared_event) {
  const GatewayEvent& event = *shared_event;
  if (event.is_system) return deliver_system(event);
  if (event.source->payload().empty()) return;  // docs/protocol.md#messages-from-rails: no payload, nothing to forward
  auto it = listeners_.find(event.source->channel());
  if (it == listeners_.end()) return;
  FrameCache frames{event, {}, {}, {}};
  uint64_t sent[2] = {0, 0};
  auto now = context_.now();
  int64_t now_ms = 0;
  // Each distinct filter set is evaluated once per event: accounts share results.
  auto evaluate_once = [&](const CompiledFilters& filters) -> const std::string& {
    for (const auto& [evaluated, json] : frames.evaluations) {
      if (evaluated == &filters) return json;
    }
    if (!now_ms) now_ms = unix_ms_now();
    frames.evaluations.emplace_back(&filters, filters.evaluate(event.source->status().filter_text(), now_ms));
    return frames.evaluations.back().second;
  };
  for (const ChannelListener& listener : it->second) {
    Subscription& subscription = *listener.subscription;
    Client& client = *subscription.client;
    if (!client.open()) continue;
    if (!subscription.plan.filtered || !event.is_status) {
      client.send(frames.for_client(client.kind(), subscription.plan.echo_json, false));
      ++sent[static_cast<int>(client.kind())];
      continue;
    }
    if (!passes_feed_and_language(subscription, event)) continue;
    const auto* viewer = viewers_.ready(client.auth().account_id, now);
    if (!viewer) {
      viewers_.defer(client.auth().account_id, client.shared_from_this(), subscription.plan.echo_json, shared_event,
                     now);
      continue;
    }
    auto decision = decide_status(event.source->status(), client.auth().account_id, *viewer->relations,
                                  *viewer->filters, evaluate_once);
    if (!send_status(client, subscription.plan.echo_json, decision, frames)) continue;
    ++sent[static_cast<int>(client.kind())];
  }
  if (sent[0]) context_.metrics.sent(ClientKind::eventsource).inc(sent[0]);
  if (sent[1]) context_.metrics.sent(ClientKind::websocket).inc(sent[1]);
}

// docs/protocol.md#system-channels: kill closes, filters_changed clears filter caches, the rest is ignored.
void Worker::deliver_system(const GatewayEvent& event) {
  const auto& name = event.source->event();
  bool kill = name == "kill";
  if (!kill && name != "filters_changed") return;
  if (!event.source->system_id_valid()) return;
  bool by_token = event.source->system_channel() == sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN;
  auto& index = by_token ? by_access_token_ : by_account_;
  auto it = index.find(event.source->system_id());
  if (it == index.end()) return;
  auto clients = it->second;  // ending a client edits the index
  if (!kill) {
    // Filter caches are kept per account on this worker: one refresh serves every
    // connection of the account (a token channel names one account too).
    if (!clients.empty()) viewers_.filters_changed(clients.front()->auth().account_id);
    return;
  }
  for (Client* client : clients) client->end_gracefully();
}

}  // namespace sluice::gateway
