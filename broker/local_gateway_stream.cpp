#include "broker/local_gateway_stream.hpp"

#include <boost/asio/post.hpp>
#include <mutex>

#include "broker/broker_service.hpp"
#include "broker/event_sink.hpp"
#include "broker/gateway_session.hpp"

namespace sluice::broker {

namespace {

// The broker's side: a gateway session whose sink hands events to the link directly.
// Shared by the link's handle, the registry and the handlers queued on the Redis
// thread, so it lives until the last of them lets go.
class LocalSession final : public EventSink, public std::enable_shared_from_this<LocalSession> {
 public:
  LocalSession(BrokerService& service, boost::asio::io_context& io, uint64_t id, BrokerStream::Receiver& receiver)
      : service_(service), io_(io), session_(service.tenants(), id, "in-process"), receiver_(receiver) {}

  uint64_t id() const { return session_.id(); }

  // The link's thread: each message is handled on the Redis thread, in order.
  void post(v1::GatewayMessage message) {
    boost::asio::post(io_, [self = shared_from_this(), message = std::move(message)] { self->handle(message); });
  }
  void post_end() {
    boost::asio::post(io_, [self = shared_from_this()] { self->end(); });
  }

  // The Redis thread.
  void deliver(const std::shared_ptr<const v1::BrokerMessage>& message) override {
    std::lock_guard lock(mutex_);
    if (ended_) return;
    if (message->has_event()) {
      // The gateway holds the broker's own event; `message` keeps it alive.
      pending_.emplace_back(message, &message->event());
      service_.events_sent().inc();
      if (pending_.size() >= kMaxBatchEvents) {
        hand_on_locked();
      } else if (pending_.size() == 1) {
        // After the rest of this Redis read has been delivered.
        boost::asio::post(io_, [self = shared_from_this()] { self->flush(); });
      }
    } else if (message->has_resubscribed()) {
      // In the stream's order: after the events delivered before it.
      hand_on_locked();
      receiver_.on_resubscribed(message->resubscribed());
    }
  }

  // Whether the stream counts as open: end() reports only an open one's end.
  void set_open(bool open) {
    std::lock_guard lock(mutex_);
    open_ = open;
  }

  // Ends an opened session once: its channels are given back, and the link hears of it last.
  void end() {
    {
      std::lock_guard lock(mutex_);
      if (ended_ || !open_) return;
      ended_ = true;
      pending_.clear();
    }
    session_.release();
    service_.stream_done(session_);
    receiver_.on_done();
  }

 private:
  // The same bound as a gRPC EventBatch's count.
  static constexpr size_t kMaxBatchEvents = 1024;

  void handle(const v1::GatewayMessage& message) {
    {
      std::lock_guard lock(mutex_);
      if (ended_) return;
    }
    session_.handle(message, shared_from_this(), [this] {
      std::lock_guard lock(mutex_);
      if (!ended_) receiver_.on_ready();
    });
  }

  void flush() {
    std::lock_guard lock(mutex_);
    if (!ended_) hand_on_locked();
  }

  void hand_on_locked() {
    if (pending_.empty()) return;
    BrokerStream::Events events;
    events.swap(pending_);
    receiver_.on_events(std::move(events));
  }

  BrokerService& service_;
  boost::asio::io_context& io_;
  GatewaySession session_;
  BrokerStream::Receiver& receiver_;

  // Guards what follows and every call into receiver_: once ended_ is set, the link
  // may be gone.
  std::mutex mutex_;
  bool open_ = false;
  bool ended_ = false;
  BrokerStream::Events pending_;
};

// The gateway's side: what its BrokerLink owns.
class LocalGatewayStream final : public BrokerStream {
 public:
  LocalGatewayStream(BrokerService& service, boost::asio::io_context& io, Receiver& receiver)
      : service_(service), session_(std::make_shared<LocalSession>(service, io, service.next_stream_id(), receiver)) {}

  bool start(std::vector<v1::GatewayMessage> initial) override {
    // Open before the broker can close it: a shutdown that closes it right after
    // add_stream must end it.
    session_->set_open(true);
    std::weak_ptr<LocalSession> weak = session_;
    bool accepted = service_.add_stream(session_->id(), [weak] {
      if (auto session = weak.lock()) session->end();
    });
    if (!accepted) {
      session_->set_open(false);
      return false;
    }
    for (auto& message : initial) session_->post(std::move(message));
    return true;
  }
  void send(v1::GatewayMessage message) override { session_->post(std::move(message)); }
  void cancel() override { session_->post_end(); }

 private:
  BrokerService& service_;
  std::shared_ptr<LocalSession> session_;
};

}  // namespace

BrokerStreamOpener local_gateway_streams(BrokerService& service, boost::asio::io_context& io) {
  return [&service, &io](BrokerStream::Receiver& receiver) {
    return std::make_unique<LocalGatewayStream>(service, io, receiver);
  };
}

}  // namespace sluice::broker
