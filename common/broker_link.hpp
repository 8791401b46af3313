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

// One opened Events stream as a BrokerLink sees it, whatever carries it: a gRPC call
// to a broker (grpc_broker_streams below), or the all-in-one's hand-off inside one
// process (broker/local_gateway_stream.hpp), which skips serialising every event.
class BrokerStream {
 public:
  using Events = std::vector<std::shared_ptr<const sluice::v1::ChannelEvent>>;

  // What a stream reports, in the stream's order. Never called while the link's
  // own lock is held by the thread calling into the stream.
  class Receiver {
   public:
    virtual ~Receiver() = default;
    virtual void on_events(Events events) = 0;
    virtual void on_ready() = 0;
    virtual void on_resubscribed(const sluice::v1::Resubscribed& resubscribed) = 0;
    // The stream has ended: nothing more is reported after it. Once per started stream.
    virtual void on_done() = 0;
  };

  virtual ~BrokerStream() = default;
  // Sends `initial` (Hello, then the subscriptions) first and starts. False: the stream
  // could not be opened; it has ended, and on_done does not follow.
  virtual bool start(std::vector<sluice::v1::GatewayMessage> initial) = 0;
  virtual void send(sluice::v1::GatewayMessage message) = 0;
  // Ends the stream; on_done follows, from another thread.
  virtual void cancel() = 0;
};

// Opens one stream to one broker, reporting to `receiver` (which outlives its on_done).
using BrokerStreamOpener = std::function<std::unique_ptr<BrokerStream>(BrokerStream::Receiver& receiver)>;

// Streams over gRPC on `channel`, carrying SLUICE_INTERNAL_TOKEN when set.
BrokerStreamOpener grpc_broker_streams(std::shared_ptr<grpc::Channel> channel, std::string internal_token);

class BrokerLink : private BrokerStream::Receiver {
 public:
  // The events of one message from the broker (one, or an EventBatch), in the stream's
  // order: handed on together so that the gateway wakes each worker once for them.
  using Events = BrokerStream::Events;
  using EventHandler = std::function<void(Events)>;

  struct Callbacks {
    EventHandler on_event;
    // Kills and filters_changed published meanwhile were missed: runs each time the
    // broker confirms a (re)opened stream (events published while the stream was down
    // are lost, as with Redis itself), and when the broker's subscription of the system
    // channels restarted (its Redis connection came back). Optional.
    std::function<void()> on_system_events_missed;
    // Runs just before each stream is opened, before any of its subscriptions is
    // sent: everything it will carry is published after that moment. `channels`: the
    // channel keys it will subscribe (besides the system channels every stream
    // carries). Optional.
    std::function<void(const std::vector<std::string>& channels)> on_opening;
    // The broker's Redis subscription of this channel restarted (its Redis connection
    // came back): the stream skips what was published meanwhile. Optional.
    std::function<void(const std::string& channel)> on_resubscribed;
  };

  BrokerLink(BrokerStreamOpener open_stream, std::string gateway_id, Callbacks callbacks);
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
  struct Wanted {
    int count = 0;
    bool heartbeat = false;
  };

  void supervise();
  // With mutex_ held: waits until the stream ends or stop, sending owed touches.
  void serve_stream(std::unique_lock<std::mutex>& lock);
  void owe_touch_locked(const std::string& channel);
  // Hello, then the Subscribes of each instance and heartbeat choice (about 1 MiB of
  // channel names each): what a new stream starts with.
  std::vector<sluice::v1::GatewayMessage> opening_messages_locked() const;

  // BrokerStream::Receiver
  void on_events(Events events) override;
  void on_ready() override;
  void on_resubscribed(const sluice::v1::Resubscribed& resubscribed) override;
  void on_done() override;

  BrokerStreamOpener open_stream_;
  std::string gateway_id_;
  Callbacks callbacks_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::unordered_map<std::string, Wanted> channels_;
  std::unordered_set<std::string> touches_owed_;
  std::unique_ptr<BrokerStream> stream_;
  bool stream_done_ = false;
  bool stopping_ = false;
  std::thread supervisor_;
  std::atomic<bool> connected_{false};
};

}  // namespace sluice
