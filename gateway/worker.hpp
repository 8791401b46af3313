#pragma once
// One thread, one io_context, and the clients it owns. Each worker keeps its own
// channel → subscriptions table, so fan-out of an event runs on every core in
// parallel with no lock shared between threads.
#include <array>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gateway/client.hpp"
#include "gateway/gateway_event.hpp"
#include "gateway/socket.hpp"
#include "gateway/status_decision.hpp"
#include "gateway/viewer_cache.hpp"

namespace sluice::gateway {

class GatewayContext;

class Worker {
 public:
  Worker(GatewayContext& context, unsigned index);
  ~Worker();

  asio::io_context& io() { return io_; }
  GatewayContext& context() { return context_; }
  unsigned index() const { return index_; }

  void start();
  // Closes every client and stops the thread.
  void stop();

  // All below run on this worker's thread.
  void add_client(std::shared_ptr<Client> client);
  void remove_client(Client& client);
  void attach(Subscription& subscription);
  void detach(Subscription& subscription);
  void deliver(const std::shared_ptr<const GatewayEvent>& event);
  // A status on a filtered stream whose viewer data arrived after it (docs/protocol.md#relations on).
  void deliver_decided(Client& client, const std::string& echo_json, const GatewayEvent& event,
                       const ViewerCache::Viewer& viewer);

  // Frames every client of this worker shares.
  const Frame& thump_frame() const { return thump_frame_; }
  const Frame& ping_frame() const { return ping_frame_; }
  // Scratch space for socket reads: idle clients hold no read buffer.
  std::vector<char>& read_buffer() { return read_buffer_; }

  // Readable from any thread (for draining and metrics).
  size_t client_count_relaxed() const { return client_count_.load(std::memory_order_relaxed); }
  // Shutdown (docs/drain.md): every client is told to go away at a random moment
  // within `window` (at once when zero), so reconnects reach the other gateways
  // spread out rather than as a storm. Clients added meanwhile go at once.
  void drain(std::chrono::milliseconds window, uint64_t seed);

 private:
  struct ChannelListener {
    Subscription* subscription;
    uint32_t channel_index;
  };
  struct FrameCache;

  void tick();
  void schedule_tick();
  void drain_due();
  void deliver_system(const GatewayEvent& event);
  // docs/protocol.md#feed-access-check and docs/protocol.md#language-check, decided
  // from the subscription and the token alone.
  bool passes_feed_and_language(const Subscription& subscription, const GatewayEvent& event);
  // Sends what decide_status chose: a shared frame, or one of the client's own.
  // False when the status is dropped.
  bool send_status(Client& client, const std::string& echo_json, const StatusDecision& decision, FrameCache& frames);

  GatewayContext& context_;
  unsigned index_;
  asio::io_context io_{1};
  std::thread thread_;
  asio::steady_timer ticker_{io_};
  uint64_t tick_ = 0;

  std::vector<std::shared_ptr<Client>> clients_;
  std::atomic<size_t> client_count_{0};
  std::unordered_map<std::string, std::vector<ChannelListener>> listeners_;
  std::unordered_map<int64_t, std::vector<Client*>> by_access_token_;
  std::unordered_map<int64_t, std::vector<Client*>> by_account_;
  // SSE clients spread over one bucket per second of the heartbeat period, so
  // each gets `:thump` about every 15 s after it opened (docs/protocol.md#sse-heartbeat) from one timer.
  std::vector<std::vector<Client*>> heartbeat_buckets_;
  std::vector<Client*> websockets_;

  struct DrainEntry {
    std::chrono::steady_clock::time_point at;
    std::weak_ptr<Client> client;
  };
  bool draining_ = false;
  std::vector<DrainEntry> drain_order_;
  size_t drain_next_ = 0;
  asio::steady_timer drain_timer_{io_};

  ViewerCache viewers_;
  Frame thump_frame_;
  Frame ping_frame_;
  std::vector<char> read_buffer_;
};

}  // namespace sluice::gateway
