// The all-in-one's in-process Events stream (broker/local_gateway_stream.hpp) against a
// real redis-server: the same contract as the gRPC stream (Ready first, only the
// channels asked for plus system broadcasts, Resubscribed in order, channels given
// back at the end), carrying the broker's own parsed events.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker_tier.hpp"
#include "common/broker_link.hpp"
#include "common/metrics.hpp"
#include "tests/support/servers.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RedisServer;

RedisServer& redis() {
  static RedisServer server;
  return server;
}

std::string unique_channel(const std::string& base) {
  static std::atomic<int> counter{0};
  return base + ":" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

int64_t gauge(const std::string& name) { return metrics::Registry::global().gauge(name, "").value(); }

v1::GatewayMessage hello(const std::string& id) {
  v1::GatewayMessage message;
  message.mutable_hello()->set_gateway_id(id);
  return message;
}
v1::GatewayMessage subscribe(const std::string& channel, bool heartbeat = false) {
  v1::GatewayMessage message;
  message.mutable_subscribe()->add_channels(channel);
  message.mutable_subscribe()->set_heartbeat(heartbeat);
  return message;
}
v1::GatewayMessage unsubscribe(const std::string& channel) {
  v1::GatewayMessage message;
  message.mutable_unsubscribe()->add_channels(channel);
  return message;
}

// A gateway as the in-process stream sees it: what a BrokerLink would be told, recorded.
class LocalGateway final : public BrokerStream::Receiver {
 public:
  explicit LocalGateway(BrokerTier& tier) : stream_(tier.local_streams()(*this)) {}
  ~LocalGateway() override {
    if (started_ && !done()) stream_->cancel();
    // The receiver must outlive the stream's last report.
    EXPECT_TRUE(wait_done()) << "the stream never reported its end";
  }

  bool start(const std::string& id, std::vector<v1::GatewayMessage> more = {}) {
    std::vector<v1::GatewayMessage> initial{hello(id)};
    for (auto& message : more) initial.push_back(std::move(message));
    started_ = stream_->start(std::move(initial));
    return started_;
  }
  void send(v1::GatewayMessage message) { stream_->send(std::move(message)); }
  void cancel() { stream_->cancel(); }

  // The next report (an event, Ready or Resubscribed), or nullopt after `timeout`.
  std::optional<v1::BrokerMessage> next(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [this] { return !received_.empty(); })) return std::nullopt;
    v1::BrokerMessage message = std::move(received_.front());
    received_.pop_front();
    return message;
  }
  std::optional<v1::ChannelEvent> next_event(std::chrono::milliseconds timeout = 10s) {
    for (auto message = next(timeout); message; message = next(timeout)) {
      if (message->has_event()) return message->event();
    }
    return std::nullopt;
  }
  bool wait_done(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return done_count_ > 0 || !started_; });
  }
  bool done() {
    std::lock_guard lock(mutex_);
    return done_count_ > 0;
  }
  int done_count() {
    std::lock_guard lock(mutex_);
    return done_count_;
  }
  // Every event object handed on so far, as handed on.
  std::vector<std::shared_ptr<const v1::ChannelEvent>> handed_on() {
    std::lock_guard lock(mutex_);
    return handed_on_;
  }

 private:
  void on_events(BrokerStream::Events events) override {
    std::lock_guard lock(mutex_);
    EXPECT_EQ(done_count_, 0) << "events after the end";
    for (auto& event : events) {
      v1::BrokerMessage message;
      *message.mutable_event() = *event;
      received_.push_back(std::move(message));
      handed_on_.push_back(std::move(event));
    }
    cv_.notify_all();
  }
  void on_ready() override { record([](v1::BrokerMessage& message) { message.mutable_ready(); }); }
  void on_resubscribed(const v1::Resubscribed& resubscribed) override {
    record([&](v1::BrokerMessage& message) { *message.mutable_resubscribed() = resubscribed; });
  }
  void on_done() override {
    std::lock_guard lock(mutex_);
    ++done_count_;
    cv_.notify_all();
  }
  template <typename Fill>
  void record(Fill fill) {
    std::lock_guard lock(mutex_);
    EXPECT_EQ(done_count_, 0) << "a report after the end";
    v1::BrokerMessage message;
    fill(message);
    received_.push_back(std::move(message));
    cv_.notify_all();
  }

  std::unique_ptr<BrokerStream> stream_;
  bool started_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<v1::BrokerMessage> received_;
  std::vector<std::shared_ptr<const v1::ChannelEvent>> handed_on_;
  int done_count_ = 0;
};

class LocalBroker {
 public:
  LocalBroker() : tier_(config()) { tier_.start(); }
  static BrokerConfig config() {
    return BrokerConfig::from_env(Env::from_map({{"REDIS_URL", redis().url()}}));
  }
  BrokerTier& tier() { return tier_; }
  bool wait_ready() { return eventually([this] { return tier_.ready(); }, 20s); }

 private:
  BrokerTier tier_;
};

TEST(LocalGatewayStream, ReadyFirstThenOnlyTheChannelsAskedForAsTheBrokersOwnEvents) {
  LocalBroker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string wanted = unique_channel("timeline:public");
  std::string other = unique_channel("timeline:public");
  LocalGateway a(broker.tier());
  LocalGateway b(broker.tier());
  ASSERT_TRUE(a.start("a", {subscribe(wanted)}));
  ASSERT_TRUE(b.start("b", {subscribe(wanted), subscribe(other)}));
  for (LocalGateway* gateway : {&a, &b}) {
    auto first = gateway->next();
    ASSERT_TRUE(first.has_value());
    EXPECT_TRUE(first->has_ready()) << "Ready must come first: " << first->DebugString();
  }
  ASSERT_TRUE(eventually([&] { return redis().numsub(wanted) == 1 && redis().numsub(other) == 1; }));

  redis().publish(other, R"({"event":"delete","payload":"not for a"})");
  redis().publish(wanted, R"({"event":"delete","payload":"for both"})");
  auto at_b = b.next_event();
  ASSERT_TRUE(at_b.has_value());
  EXPECT_EQ(at_b->payload(), "not for a");
  at_b = b.next_event();
  ASSERT_TRUE(at_b.has_value());
  EXPECT_EQ(at_b->payload(), "for both");
  auto at_a = a.next_event();
  ASSERT_TRUE(at_a.has_value());
  EXPECT_EQ(at_a->payload(), "for both") << "a got a channel it never asked for";
  EXPECT_EQ(at_a->channel(), wanted);

  // Nothing was copied on the way: both gateways hold the one event the broker parsed.
  ASSERT_EQ(a.handed_on().size(), 1u);
  ASSERT_EQ(b.handed_on().size(), 2u);
  EXPECT_EQ(a.handed_on()[0].get(), b.handed_on()[1].get());
}

TEST(LocalGatewayStream, SystemChannelsReachEveryStreamWithoutAsking) {
  LocalBroker broker;
  ASSERT_TRUE(broker.wait_ready());
  LocalGateway gateway(broker.tier());
  ASSERT_TRUE(gateway.start("g"));
  ASSERT_TRUE(gateway.next().value_or(v1::BrokerMessage{}).has_ready());
  // The broker joins the stream to the system broadcasts right after Ready; publish
  // until one arrives.
  std::optional<v1::ChannelEvent> event;
  ASSERT_TRUE(eventually([&] {
    redis().publish("timeline:access_token:42", R"({"event":"kill"})");
    event = gateway.next_event(200ms);
    return event.has_value();
  }));
  EXPECT_EQ(event->event(), "kill");
  EXPECT_EQ(event->system_channel(), v1::SYSTEM_CHANNEL_ACCESS_TOKEN);
  EXPECT_EQ(event->system_id(), 42);
}

TEST(LocalGatewayStream, ManyEventsArriveOnceEachInOrder) {
  LocalBroker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:hashtag:order");
  LocalGateway gateway(broker.tier());
  ASSERT_TRUE(gateway.start("g", {subscribe(channel)}));
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  constexpr int kEvents = 3000;
  // One pipelined write, so that many arrive in each of the broker's reads.
  std::vector<std::vector<std::string>> publishes;
  for (int i = 0; i < kEvents; ++i) {
    publishes.push_back({"PUBLISH", channel, R"({"event":"delete","payload":")" + std::to_string(i) + R"("})"});
  }
  redis().pipeline(publishes);
  for (int i = 0; i < kEvents; ++i) {
    auto event = gateway.next_event();
    ASSERT_TRUE(event.has_value()) << "event " << i << " never came";
    ASSERT_EQ(event->payload(), std::to_string(i));
  }
  redis().publish(channel, R"({"event":"delete","payload":"marker"})");
  auto marker = gateway.next_event();
  ASSERT_TRUE(marker.has_value());
  EXPECT_EQ(marker->payload(), "marker") << "an event came twice";
}

TEST(LocalGatewayStream, UnsubscribeAndCancelGiveChannelsBackAndEndOnce) {
  LocalBroker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string dropped = unique_channel("timeline:public:local");
  std::string kept = unique_channel("timeline:public:local");
  int64_t streams = gauge("sluice_broker_gateway_streams");
  {
    LocalGateway gateway(broker.tier());
    ASSERT_TRUE(gateway.start("g", {subscribe(dropped), subscribe(kept, /*heartbeat=*/true)}));
    EXPECT_EQ(gauge("sluice_broker_gateway_streams"), streams + 1);
    ASSERT_TRUE(eventually([&] { return redis().numsub(dropped) == 1 && redis().numsub(kept) == 1; }));
    ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + kept}) == 1; }));
    gateway.send(unsubscribe(dropped));
    ASSERT_TRUE(eventually([&] { return redis().numsub(dropped) == 0; }));
    EXPECT_EQ(redis().numsub(kept), 1);

    gateway.cancel();
    gateway.cancel();
    ASSERT_TRUE(gateway.wait_done());
    gateway.cancel();  // the link's cancel after the end changes nothing
    EXPECT_TRUE(eventually([&] { return redis().numsub(kept) == 0; }));
    EXPECT_EQ(gauge("sluice_broker_gateway_streams"), streams);
    // All three cancels were handled (in order, on the Redis thread) once the broker
    // answers a later stream's Hello.
    LocalGateway later(broker.tier());
    ASSERT_TRUE(later.start("later"));
    ASSERT_TRUE(later.next().value_or(v1::BrokerMessage{}).has_ready());
    EXPECT_EQ(gateway.done_count(), 1);
  }
}

TEST(LocalGatewayStream, BrokerShutdownEndsTheStreamAndRefusesNewOnes) {
  auto broker = std::make_unique<LocalBroker>();
  ASSERT_TRUE(broker->wait_ready());
  std::string channel = unique_channel("timeline");
  LocalGateway gateway(broker->tier());
  ASSERT_TRUE(gateway.start("g", {subscribe(channel)}));
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  broker->tier().stop();
  ASSERT_TRUE(gateway.wait_done());
  EXPECT_EQ(gateway.done_count(), 1);
  LocalGateway refused(broker->tier());
  EXPECT_FALSE(refused.start("late")) << "a stopped broker opened a stream";
}

TEST(LocalGatewayStream, StoppingATierNeverStartedEndsItsStreams) {
  // Its Redis thread never ran, so nothing the stream sent was handled: only the stop
  // can end it, or a gateway stopping its link would wait for ever.
  BrokerTier tier(LocalBroker::config());
  LocalGateway gateway(tier);
  ASSERT_TRUE(gateway.start("g", {subscribe(unique_channel("timeline"))}));
  tier.stop();
  EXPECT_TRUE(gateway.wait_done());
  EXPECT_EQ(gateway.done_count(), 1);
}

TEST(LocalGatewayStream, ResubscribedComesInOrderAfterARedisRestart) {
  LocalBroker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline");
  LocalGateway gateway(broker.tier());
  ASSERT_TRUE(gateway.start("g", {subscribe(channel, true)}));
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  redis().publish(channel, R"({"event":"delete","payload":"before"})");
  ASSERT_EQ(gateway.next_event().value_or(v1::ChannelEvent{}).payload(), "before");

  redis().stop();
  ASSERT_TRUE(eventually([&] { return !broker.tier().ready(); }));
  redis().start();
  ASSERT_TRUE(broker.wait_ready());
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  redis().publish(channel, R"({"event":"delete","payload":"after"})");
  std::optional<v1::BrokerMessage> message;
  // The system channels' marker (no channels) may come first: skipped here.
  while ((message = gateway.next()) &&
         !(message->has_resubscribed() && !message->resubscribed().system_channels())) {
    EXPECT_FALSE(message->has_event()) << "an event before Resubscribed: " << message->DebugString();
  }
  ASSERT_TRUE(message.has_value()) << "no Resubscribed after the Redis restart";
  ASSERT_EQ(message->resubscribed().channels_size(), 1);
  EXPECT_EQ(message->resubscribed().channels(0), channel);
  EXPECT_EQ(gateway.next_event().value_or(v1::ChannelEvent{}).payload(), "after");
}

}  // namespace
}  // namespace sluice
