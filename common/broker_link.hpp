#pragma once
// A process's ONE long-lived Events stream to the broker (design: "one stream
// per broker, not one per client"). It reference-counts the channels this
// process needs (gateways; the auth tier needs none and only follows the
// broadcast system channels), sends Subscribe on the first user and Unsubscribe after the last,
// and after any break reconnects with backoff and re-sends the whole set while
// clients stay connected.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "sluice/v1/broker.grpc.pb.h"

namespace sluice {

class BrokerLink {
 public:
  // The events of one message from the broker (one, or an EventBatch), in the stream's
  // order: handed on together so that the gateway wakes each worker once for them.
  using Events = std::vector<std::shared_ptr<const sluice::v1::ChannelEvent>>;
  using EventHandler = std::function<void(Events)>;

  struct Callbacks {
    EventHandler on_event;
    // Runs each time the broker confirms a (re)opened stream: events published while
    // the stream was down are lost, as with Redis itself. Optional.
    std::function<void()> on_ready;
    // Runs just before each stream is opened, before any of its subscriptions is
    // sent: everything it will carry is published after that moment. Optional.
    std::function<void()> on_opening;
    // The broker's Redis subscription of this channel restarted (its Redis connection
    // came back): the stream skips what was published meanwhile. Optional.
    std::function<void(const std::string& channel)> on_resubscribed;
  };

  BrokerLink(std::shared_ptr<grpc::Channel> channel, std::string internal_token, std::string gateway_id,
             Callbacks callbacks);
  ~BrokerLink();

  void start();
  void stop();

  void acquire(const std::string& channel, bool heartbeat);
  // Another client subscribed to a held heartbeat channel: the reference SETs its
  // `subscribed:` key on every subscription, so a vanished key comes back. Sent as
  // one Touch per kTouchWindow with every channel touched meanwhile.
  void touch(const std::string& channel);
  static constexpr std::chrono::milliseconds kTouchWindow{250};
  void release(const std::string& channel);

  // True while a stream is open and the broker has said Ready.
  bool connected() const { return connected_.load(std::memory_order_acquire); }

 private:
  class Stream;
  struct Wanted {
    int count = 0;
    bool heartbeat = false;
  };

  void supervise();
  // With mutex_ held: waits until the stream ends or stop, sending owed touches.
  void serve_stream(std::unique_lock<std::mutex>& lock);
  void owe_touch_locked(const std::string& channel);
  void on_stream_ready();
  void on_stream_done();

  std::unique_ptr<sluice::v1::Broker::Stub> stub_;
  std::string internal_token_;
  std::string gateway_id_;
  Callbacks callbacks_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::unordered_map<std::string, Wanted> channels_;
  std::unordered_set<std::string> touches_owed_;
  std::unique_ptr<Stream> stream_;
  bool stream_done_ = false;
  bool stopping_ = false;
  std::thread supervisor_;
  std::atomic<bool> connected_{false};
};

}  // namespace sluice
