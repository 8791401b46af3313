#pragma once
// One thread, one io_context, and the clients it owns: the event loop of a gateway
// core. Each worker keeps its own channel table, so the fan-out of an event runs on
// every core in parallel with no lock shared between threads. The parts:
//   ClientRegistry  the clients, by access token and account (gateway/client_registry.hpp)
//   ChannelTable    who hears which channel; broker acquire/release (gateway/channel_table.hpp)
//   HeartbeatWheel  SSE `:thump` and WebSocket ping schedule (gateway/heartbeat_wheel.hpp)
//   ViewerCache     relations and filters of filtered viewers (gateway/viewer_cache.hpp)
//   FanOut          an event to its listeners (gateway/fan_out.hpp)
//   WriteBatch      the socket writes of one step in one system call (gateway/write_batch.hpp)
// and here: the thread, the one-second tick, and the drain at shutdown.
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include "gateway/channel_table.hpp"
#include "gateway/client.hpp"
#include "gateway/client_registry.hpp"
#include "gateway/fan_out.hpp"
#include "gateway/gateway_event.hpp"
#include "gateway/heartbeat_wheel.hpp"
#include "gateway/socket.hpp"
#include "gateway/viewer_cache.hpp"
#include "gateway/write_batch.hpp"

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
  // Events the gateway handed over in one post, in order, their writes batched.
  void deliver(const std::vector<std::shared_ptr<const GatewayEvent>>& events);
  WriteBatch& write_batch() { return write_batch_; }
  const WriteBatch& write_batch() const { return write_batch_; }

  // Frames every client of this worker shares.
  const Frame& thump_frame() const { return thump_frame_; }
  const Frame& ping_frame() const { return ping_frame_; }
  // Scratch space for socket reads: idle clients hold no read buffer.
  std::vector<char>& read_buffer() { return read_buffer_; }

  // Readable from any thread (for draining and metrics).
  size_t client_count_relaxed() const { return clients_.size_relaxed(); }
  // Shutdown (docs/drain.md): every client is told to go away at a random moment
  // within `window` (at once when zero), so reconnects reach the other gateways
  // spread out rather than as a storm. Clients added meanwhile go at once.
  void drain(std::chrono::milliseconds window, uint64_t seed);
  // docs/hosting.md#routing: clients of instances the tenants file no longer lists are
  // told to go away as on a drain (worker thread).
  void end_unserved_tenants();

 private:
  void schedule_tick();
  // Runs `body` as one step of the write batch: its clients' writes go out together at
  // the end, also when it throws.
  template <class Body>
  void run_step(Body&& body);
  void drain_due();

  GatewayContext& context_;
  unsigned index_;
  asio::io_context io_{1};
  std::thread thread_;
  asio::steady_timer ticker_{io_};

  ClientRegistry clients_;
  ChannelTable channels_;
  HeartbeatWheel<Client> heartbeats_;
  ViewerCache viewers_;
  FanOut fan_out_;
  WriteBatch write_batch_;

  struct DrainEntry {
    std::chrono::steady_clock::time_point at;
    std::weak_ptr<Client> client;
  };
  bool draining_ = false;
  std::vector<DrainEntry> drain_order_;
  size_t drain_next_ = 0;
  asio::steady_timer drain_timer_{io_};

  Frame thump_frame_;
  Frame ping_frame_;
  std::vector<char> read_buffer_;
};

}  // namespace sluice::gateway
