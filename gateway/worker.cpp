#include "gateway/worker.hpp"

#include <algorithm>
#include <string>

#include "common/log.hpp"
#include "common/thread_name.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/http_responses.hpp"
#include "gateway/websocket_protocol.hpp"

namespace sluice::gateway {

Worker::Worker(GatewayContext& context, unsigned index)
    : context_(context),
      index_(index),
      channels_(context.broker, context.channel_workers, index),
      heartbeats_(static_cast<unsigned>(context.config.sse_heartbeat_seconds),
                  static_cast<unsigned>(context.config.websocket_ping_seconds), context.now()),
      viewers_(context, io_, std::chrono::milliseconds(context.config.relations_max_staleness_ms),
               [this](Client& client, const std::string& echo_json, const GatewayEvent& event,
                      const ViewerCache::Viewer& viewer) { fan_out_.deliver_decided(client, echo_json, event, viewer); },
               [this](const std::function<void()>& handler) { run_step(handler); }),
      fan_out_(context, channels_, clients_, viewers_),
      write_batch_(context.config.io_uring, context.metrics.batched_writes, context.metrics.write_submissions),
      thump_frame_(make_shared_frame(chunk(":thump\n\n"))),
      ping_frame_(make_shared_frame(encode_ping_frame())),
      read_buffer_(64 * 1024) {}

Worker::~Worker() { stop(); }

template <class Body>
void Worker::run_step(Body&& body) {
  write_batch_.open();
  try {
    body();
  } catch (...) {
    write_batch_.submit();
    throw;
  }
  write_batch_.submit();
}

void Worker::deliver(const std::vector<std::shared_ptr<const GatewayEvent>>& events) {
  // A step's writes wait for its end, and a client's own frames (a status with its
  // `filtered` matches) count against its queue bound meanwhile (docs/protocol.md#slow-clients):
  // a step takes at most one write's worth of events, so it adds no more than that.
  for (size_t first = 0; first < events.size(); first += WriteBatch::kMaxGather) {
    size_t end = std::min(events.size(), first + WriteBatch::kMaxGather);
    run_step([&] {
      for (size_t i = first; i < end; ++i) fan_out_.deliver(events[i]);
    });
  }
}

void Worker::start() {
  schedule_tick();
  thread_ = std::thread([this] {
    name_this_thread("gw-worker-" + std::to_string(index_));
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
    auto clients = clients_.all();
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
  drain_order_.reserve(clients_.all().size());
  for (const auto& client : clients_.all()) {
    drain_order_.push_back({now + std::chrono::milliseconds(offset_ms(rng)), client});
  }
  std::sort(drain_order_.begin(), drain_order_.end(),
            [](const DrainEntry& a, const DrainEntry& b) { return a.at < b.at; });
  drain_next_ = 0;
  drain_due();
}

void Worker::end_unserved_tenants() {
  auto clients = clients_.all();  // a copy: going away edits the registry
  for (auto& client : clients) {
    // Asked now, not when the reload was posted: an instance that came back in a later
    // reload keeps its clients.
    if (!context_.tenants.serves(client->auth().tenant)) client->go_away();
  }
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

// The timer only wakes the worker each second; what is due is the wheel's business,
// on the gateway's clock.
void Worker::schedule_tick() {
  ticker_.expires_after(HeartbeatWheel<Client>::kTick);
  ticker_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    // Re-armed first: a heartbeat that throws must not stop the ticks.
    schedule_tick();
    run_step([this] { heartbeats_.advance(context_.now(), [](Client& client) { client.heartbeat_due(); }); });
  });
}

void Worker::add_client(std::shared_ptr<Client> client) {
  Client& c = *client;
  clients_.add(std::move(client));
  if (c.kind() == ClientKind::eventsource) {
    heartbeats_.add_beating(c);
  } else {
    heartbeats_.add_pinged(c);
  }
  c.tenant_metrics = context_.metrics.tenant(c.auth().tenant);
  context_.metrics.count_client(c.kind(), c.tenant_metrics, 1);
  // docs/protocol.md#metrics: each connection counts two system channels.
  context_.metrics.channels(c.kind(), "system").add(2);
  // A request admitted while the gateway drains (its lookup was in flight), or for an
  // instance a reload removed meanwhile (docs/hosting.md#routing): it goes as soon as
  // it has started, never after the drain window.
  if (draining_ || !context_.tenants.serves(c.auth().tenant)) {
    asio::post(io_, [weak = c.weak_from_this()] {
      if (auto client = weak.lock()) client->go_away();
    });
  } else if (context_.recent_kills.killed_after(c.auth(), c.auth().kills_mark)) {
    // docs/protocol.md#system-channels: killed between its admission and now, when the
    // kill found no connection to end. It ends as a kill ends it, once started.
    asio::post(io_, [weak = c.weak_from_this()] {
      if (auto client = weak.lock()) client->end_gracefully();
    });
  }
}

void Worker::remove_client(Client& c) {
  if (c.kind() == ClientKind::eventsource) {
    heartbeats_.remove_beating(c);
  } else {
    heartbeats_.remove_pinged(c);
  }
  auto taken = clients_.remove(c);
  if (!taken) return;
  context_.metrics.count_client(c.kind(), c.tenant_metrics, -1);
  context_.metrics.channels(c.kind(), "system").add(-2);
  // This may hold the last reference to the client, which is inside one of its own
  // handlers now: it goes once that has returned.
  asio::post(io_, [taken = std::move(taken)] {});
}

void Worker::attach(Subscription& subscription) {
  // The viewer's entry first: the fan-out uses it for every listener the table holds.
  if (subscription.plan.filtered) subscription.viewer = viewers_.retain(ViewerId::of(subscription.client->auth()));
  channels_.attach(subscription);
  context_.metrics.channels(subscription.client->kind(), subscription.plan.name).inc();
}

void Worker::detach(Subscription& subscription) {
  channels_.detach(subscription);
  if (subscription.plan.filtered) {
    subscription.viewer = nullptr;
    viewers_.release(ViewerId::of(subscription.client->auth()));
  }
  context_.metrics.channels(subscription.client->kind(), subscription.plan.name).dec();
}

}  // namespace sluice::gateway
