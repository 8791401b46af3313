#include "common/broker_link.hpp"

#include <atomic>
#include <deque>
#include <map>
#include <random>

#include "common/channel_key.hpp"
#include "common/grpc_auth.hpp"
#include "common/grpc_channel.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/thread_name.hpp"

namespace sluice {


namespace {

// Channels named in one message (a Subscribe or a Touch) add up to about this many
// bytes at most: a reopened stream names every channel it holds, and one message past
// the receiver's limit (common/grpc_channel.cpp) would be refused on every reopening,
// leaving every channel on that broker without events.
constexpr size_t kChannelBytesPerMessage = 1 << 20;

// The messages of one group (instance, heartbeat choice), each filled up to the bound.
struct ChannelMessages {
  std::vector<v1::GatewayMessage> messages;
  size_t bytes = 0;  // of the last message's channels

  template <class ChannelsOf>
  void add(std::string_view channel, ChannelsOf channels_of) {
    if (messages.empty() || (bytes > 0 && bytes + channel.size() > kChannelBytesPerMessage)) {
      messages.emplace_back();
      bytes = 0;
    }
    bytes += channel.size();
    channels_of(messages.back())->Add(std::string(channel));
  }
};

// One Events call over gRPC. Reads run continuously; writes go one at a time from a queue.
class GrpcBrokerStream final : public BrokerStream,
                               private grpc::ClientBidiReactor<v1::GatewayMessage, v1::BrokerMessage> {
 public:
  GrpcBrokerStream(v1::Broker::Stub& stub, const std::string& internal_token, Receiver& receiver)
      : receiver_(receiver) {
    attach_internal_token(context_, internal_token);
    stub.async()->Events(&context_, this);
  }

  bool start(std::vector<v1::GatewayMessage> initial) override {
    // send() starts writes from other threads, outside gRPC's reactions. Without a
    // hold, gRPC frees the call as soon as its last operation completes, before
    // OnDone, and a write started in that moment runs on freed memory (the fault
    // matrix's broker-kill found it; ClientBidiReactor::AddHold documents the rule).
    // The hold goes when the read fails, the one sign that the call is ending.
    AddHold();
    StartRead(&incoming_);
    std::lock_guard lock(write_mutex_);
    for (auto& message : initial) outgoing_.push_back(std::move(message));
    if (!outgoing_.empty()) {
      writing_ = true;
      StartWrite(&outgoing_.front());
    }
    StartCall();
    return true;
  }

  void send(v1::GatewayMessage message) override {
    std::lock_guard lock(write_mutex_);
    if (ending_) return;
    outgoing_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&outgoing_.front());
    }
  }

  void cancel() override {
    cancelled_ = true;
    context_.TryCancel();
  }

 private:
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(write_mutex_);
    outgoing_.pop_front();
    writing_ = false;
    if (!ok || ending_) return;
    if (!outgoing_.empty()) {
      writing_ = true;
      StartWrite(&outgoing_.front());
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The call is ending: no send may start a write from here on, and once the
      // hold is gone OnDone follows.
      {
        std::lock_guard lock(write_mutex_);
        ending_ = true;
      }
      // A message that fails to parse fails the read too, and gRPC leaves that call
      // open: the broker would go on writing into it, unread, until its queue's bound
      // cut it, and the link would not reopen before. After an end it is a no-op.
      read_failed_ = true;
      context_.TryCancel();
      RemoveHold();
      return;
    }
    if (incoming_.has_event()) {
      receiver_.on_events({std::make_shared<v1::ChannelEvent>(std::move(*incoming_.mutable_event()))});
    } else if (incoming_.has_events()) {
      Events events;
      events.reserve(incoming_.events().events_size());
      for (auto& event : *incoming_.mutable_events()->mutable_events()) {
        events.push_back(std::make_shared<v1::ChannelEvent>(std::move(event)));
      }
      receiver_.on_events(std::move(events));
    } else if (incoming_.has_ready()) {
      receiver_.on_ready();
    } else if (incoming_.has_resubscribed()) {
      receiver_.on_resubscribed(incoming_.resubscribed());
    }
    incoming_.Clear();
    StartRead(&incoming_);
  }

  void OnDone(const grpc::Status& status) override {
    if (status.error_code() == grpc::StatusCode::CANCELLED && read_failed_ && !cancelled_) {
      // Cancelled after a read failed on a call gRPC had not ended: most likely a message
      // that could not be parsed (what it carried, and what followed, is lost to this
      // stream); a cancel from the broker's side (a proxy resetting the stream) reads the
      // same here.
      log::warn("broker stream ended after a failed read (a message that could not be parsed, or a cancel "
                "from the broker's side)");
    } else if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      log::warn("broker stream ended", {{"grpc_status", static_cast<int>(status.error_code())},
                                        {"detail", status.error_message()}});
    }
    receiver_.on_done();
  }

  Receiver& receiver_;
  grpc::ClientContext context_;
  v1::BrokerMessage incoming_;
  std::mutex write_mutex_;
  std::deque<v1::GatewayMessage> outgoing_;
  bool writing_ = false;
  bool ending_ = false;  // the read failed: writes no longer start
  std::atomic<bool> cancelled_{false};  // cancel(): the link is stopping or moving on
  bool read_failed_ = false;            // set before TryCancel, read in OnDone, which follows it
};

}  // namespace

BrokerStreamOpener grpc_broker_streams(std::shared_ptr<grpc::Channel> channel, std::string internal_token) {
  std::shared_ptr<v1::Broker::Stub> stub = v1::Broker::NewStub(std::move(channel));
  return [stub, internal_token = std::move(internal_token)](BrokerStream::Receiver& receiver) {
    return std::make_unique<GrpcBrokerStream>(*stub, internal_token, receiver);
  };
}

BrokerLink::BrokerLink(BrokerStreamOpener open_stream, std::string gateway_id, Callbacks callbacks)
    : open_stream_(std::move(open_stream)), gateway_id_(std::move(gateway_id)), callbacks_(std::move(callbacks)) {}

BrokerLink::~BrokerLink() { stop(); }

void BrokerLink::start() {
  supervisor_ = std::thread([this] {
    name_this_thread("broker-link");
    supervise();
  });
}

void BrokerLink::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !supervisor_.joinable()) return;
    stopping_ = true;
    if (stream_) stream_->cancel();
  }
  wake_.notify_all();
  if (supervisor_.joinable()) supervisor_.join();
}

// Owns the stream's lifecycle: open, wait for it to end, back off, open again.
void BrokerLink::supervise() {
  static auto& reconnects = metrics::Registry::global().counter(
      "sluice_broker_link_reconnects_total", "Times this process reopened its stream to the broker");
  std::mt19937 rng{std::random_device{}()};
  auto backoff = std::chrono::milliseconds(100);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    stream_done_ = false;
    if (callbacks_.on_opening) {
      std::vector<std::string> channels;
      channels.reserve(channels_.size());
      for (const auto& [key, wanted] : channels_) channels.push_back(key);
      callbacks_.on_opening(channels);
    }
    stream_ = open_stream_(*this);
    auto opened_at = std::chrono::steady_clock::now();
    if (!stream_->start(opening_messages_locked())) stream_done_ = true;
    serve_stream(lock);
    if (!stream_done_) {
      stream_->cancel();
      wake_.wait(lock, [&] { return stream_done_; });
    }
    stream_.reset();
    touches_owed_.clear();  // the next stream's Subscribe SETs every key again
    connected_.store(false, std::memory_order_release);
    if (stopping_) break;
    reconnects.inc();
    // A stream that lived a while was healthy: start the backoff again.
    if (std::chrono::steady_clock::now() - opened_at > std::chrono::seconds(10)) backoff = std::chrono::milliseconds(100);
    auto jitter = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, static_cast<int>(backoff.count() / 2))(rng));
    wake_.wait_for(lock, backoff + jitter, [&] { return stopping_; });
    // An attempt to a closed port costs nothing worth saving (common/grpc_channel.hpp).
    backoff = std::min(backoff * 2, kBrokerRetryMax);
  }
}

void BrokerLink::serve_stream(std::unique_lock<std::mutex>& lock) {
  for (;;) {
    wake_.wait(lock, [&] { return stream_done_ || stopping_ || !touches_owed_.empty(); });
    if (stream_done_ || stopping_) return;
    // Gather the window's touches into one message.
    wake_.wait_for(lock, kTouchWindow, [&] { return stream_done_ || stopping_; });
    if (stream_done_ || stopping_) return;
    // One Touch per instance (or a few, for very many channels).
    std::map<std::string_view, ChannelMessages> touches;
    for (const auto& channel : touches_owed_) {
      // Only channels still held: a released one has no key to keep.
      if (!channels_.count(channel)) continue;
      ChannelKeyParts parts = split_channel_key(channel);
      touches[parts.tenant].add(parts.channel, [](v1::GatewayMessage& message) {
        return message.mutable_touch()->mutable_channels();
      });
    }
    for (auto& [tenant, batch] : touches) {
      for (auto& message : batch.messages) {
        message.mutable_touch()->set_tenant(std::string(tenant));
        stream_->send(std::move(message));
      }
    }
    touches_owed_.clear();
  }
}

std::vector<v1::GatewayMessage> BrokerLink::opening_messages_locked() const {
  std::vector<v1::GatewayMessage> messages(1);
  messages.front().mutable_hello()->set_gateway_id(gateway_id_);
  messages.front().mutable_hello()->set_accepts_event_batches(true);
  std::map<std::pair<std::string_view, bool>, ChannelMessages> subscribes;
  for (const auto& [key, wanted] : channels_) {
    ChannelKeyParts parts = split_channel_key(key);
    subscribes[{parts.tenant, wanted.heartbeat}].add(parts.channel, [](v1::GatewayMessage& message) {
      return message.mutable_subscribe()->mutable_channels();
    });
  }
  for (auto& [group, batch] : subscribes) {
    for (auto& message : batch.messages) {
      message.mutable_subscribe()->set_tenant(std::string(group.first));
      message.mutable_subscribe()->set_heartbeat(group.second);
      messages.push_back(std::move(message));
    }
  }
  return messages;
}

void BrokerLink::on_events(Events events) { callbacks_.on_event(std::move(events)); }

void BrokerLink::on_ready() {
  if (!connected_.exchange(true)) log::info("broker stream ready");
  if (callbacks_.on_system_events_missed) callbacks_.on_system_events_missed();
}

void BrokerLink::on_resubscribed(const v1::Resubscribed& resubscribed) {
  if (resubscribed.system_channels() && callbacks_.on_system_events_missed) callbacks_.on_system_events_missed();
  if (!callbacks_.on_resubscribed) return;
  for (const auto& channel : resubscribed.channels()) {
    callbacks_.on_resubscribed(channel_key(resubscribed.tenant(), channel));
  }
}

void BrokerLink::on_done() {
  // Notified under the lock: once the supervisor sees stream_done_, stop() may return
  // and the link (with wake_) be destroyed.
  std::lock_guard lock(mutex_);
  stream_done_ = true;
  wake_.notify_all();
}

void BrokerLink::acquire(const std::string& channel, bool heartbeat) {
  std::lock_guard lock(mutex_);
  auto& wanted = channels_[channel];
  wanted.heartbeat = wanted.heartbeat || heartbeat;
  if (++wanted.count > 1) {
    // Another worker's first client: a subscription like any other.
    if (heartbeat) owe_touch_locked(channel);
    return;
  }
  if (!stream_ || stream_done_) return;
  ChannelKeyParts parts = split_channel_key(channel);
  v1::GatewayMessage message;
  message.mutable_subscribe()->add_channels(std::string(parts.channel));
  message.mutable_subscribe()->set_heartbeat(heartbeat);
  message.mutable_subscribe()->set_tenant(std::string(parts.tenant));
  stream_->send(std::move(message));
}

void BrokerLink::touch(const std::string& channel) {
  std::lock_guard lock(mutex_);
  owe_touch_locked(channel);
}

void BrokerLink::owe_touch_locked(const std::string& channel) {
  if (!stream_ || stream_done_) return;
  bool first = touches_owed_.empty();
  touches_owed_.insert(channel);
  if (first) wake_.notify_all();
}

void BrokerLink::release(const std::string& channel) {
  std::lock_guard lock(mutex_);
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  if (--it->second.count > 0) return;
  channels_.erase(it);
  if (!stream_ || stream_done_) return;
  ChannelKeyParts parts = split_channel_key(channel);
  v1::GatewayMessage message;
  message.mutable_unsubscribe()->add_channels(std::string(parts.channel));
  message.mutable_unsubscribe()->set_tenant(std::string(parts.tenant));
  stream_->send(std::move(message));
}

}  // namespace sluice
