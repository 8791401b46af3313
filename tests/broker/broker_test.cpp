// The broker tier against a real redis-server, with gateways simulated by real
// gRPC Events streams over an in-process channel
// (docs/protocol.md#system-channels, docs/protocol.md#shared-redis-subscriptions, docs/protocol.md#redis).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker_tier.hpp"
#include "common/broker_set.hpp"
#include "common/metrics.hpp"
#include "tests/broker/gateway_client.hpp"
#include "tests/broker/in_process_broker.hpp"
#include "tests/support/servers.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::GatewayClient;
using testing::RedisServer;
using testing::eventually;

RedisServer& redis() {
  static RedisServer server;
  return server;
}

uint64_t counter(const std::string& name, const metrics::Labels& labels = {}) {
  return metrics::Registry::global().counter(name, "", labels).value();
}
int64_t gauge(const std::string& name, const metrics::Labels& labels = {}) {
  return metrics::Registry::global().gauge(name, "", labels).value();
}

long long ttl(RedisServer& server, const std::string& key) { return server.integer({"TTL", key}); }

// A broker tier registered on an in-process gRPC server, configured from variables
// (REDIS_URL defaults to the suite's Redis).
BrokerConfig broker_config(std::map<std::string, std::string> vars, const std::function<void(BrokerConfig&)>& adjust) {
  if (!vars.count("REDIS_URL") && !vars.count("REDIS_SENTINELS")) vars["REDIS_URL"] = redis().url();
  BrokerConfig config = BrokerConfig::from_env(Env::from_map(vars));
  if (adjust) adjust(config);
  return config;
}

class Broker : public testing::InProcessBroker {
 public:
  explicit Broker(std::map<std::string, std::string> vars, std::function<void(BrokerConfig&)> adjust = {})
      : InProcessBroker(broker_config(std::move(vars), adjust)) {}
  Broker() : Broker(std::map<std::string, std::string>{}) {}
};

std::string unique_channel(const std::string& base) {
  static std::atomic<int> counter{0};
  return base + ":" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

TEST(Broker, FirstSubscribeSubscribesRedisOnce) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:hashtag:once");
  auto a = broker.gateway("a");
  auto b = broker.gateway("b");
  long long before = redis().command_calls("subscribe");

  ASSERT_TRUE(a->subscribe({channel}));
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  // One channel and the two system-channel patterns.
  EXPECT_TRUE(eventually([] { return gauge("redis_subscriptions") == 3; }));

  ASSERT_TRUE(b->subscribe({channel}));
  // b's subscription is in place once an event reaches it; the broker handles the
  // Subscribe message asynchronously, so publish until one does.
  ASSERT_TRUE(eventually([&] {
    EXPECT_EQ(redis().publish(channel, R"({"event":"delete","payload":"1"})"), 1);
    return b->next_event(std::chrono::milliseconds(200)).has_value();
  }));
  EXPECT_EQ(redis().numsub(channel), 1);
  EXPECT_EQ(redis().command_calls("subscribe") - before, 1);
}

TEST(Broker, ReadyComesOnceAfterHello) {
  Broker broker;
  GatewayClient client(broker.channel());
  client.hello("first");
  ASSERT_TRUE(client.wait_ready());
  client.hello("again");
  std::string channel = unique_channel("timeline:public");
  client.subscribe({channel});
  ASSERT_TRUE(broker.wait_ready());
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  redis().publish(channel, R"({"event":"delete","payload":"7"})");
  auto message = client.next();
  ASSERT_TRUE(message.has_value());
  EXPECT_TRUE(message->has_event()) << "a second Ready was sent";
}

TEST(Broker, LastUnsubscribeUnsubscribesRedis) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:public:local");
  auto a = broker.gateway("a");
  auto b = broker.gateway("b");
  a->subscribe({channel});
  b->subscribe({channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));

  a->unsubscribe({channel});
  // Still subscribed for b: a message published after a left reaches b.
  std::string other = unique_channel("timeline:marker");
  a->subscribe({other});
  ASSERT_TRUE(eventually([&] { return redis().numsub(other) == 1; }));
  EXPECT_EQ(redis().numsub(channel), 1);
  ASSERT_EQ(redis().publish(channel, R"({"event":"delete","payload":"2"})"), 1);
  auto event = b->next_event();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->payload(), "2");

  b->unsubscribe({channel});
  EXPECT_TRUE(eventually([&] { return redis().numsub(channel) == 0; }));
  EXPECT_EQ(redis().numsub(other), 1);
}

TEST(Broker, CancelledStreamsReleaseTheirChannels) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:list");
  auto a = broker.gateway("a");
  auto b = broker.gateway("b");
  a->subscribe({channel});
  b->subscribe({channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  int64_t streams = gauge("sluice_broker_gateway_streams");

  a->cancel();
  ASSERT_TRUE(eventually([&] { return gauge("sluice_broker_gateway_streams") == streams - 1; }));
  EXPECT_EQ(redis().numsub(channel), 1);
  redis().publish(channel, R"({"event":"delete","payload":"3"})");
  ASSERT_TRUE(b->next_event().has_value());

  b->cancel();
  EXPECT_TRUE(eventually([&] { return redis().numsub(channel) == 0; }));
  EXPECT_TRUE(eventually([&] { return gauge("sluice_broker_gateway_streams") == streams - 2; }));
}

TEST(Broker, ClosedStreamReleasesItsChannels) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:direct");
  auto a = broker.gateway("a");
  a->subscribe({channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  a->writes_done();
  auto status = a->status();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << status->error_message();
  EXPECT_TRUE(eventually([&] { return redis().numsub(channel) == 0; }));
}

TEST(Broker, EventsReachOnlyInterestedStreams) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string public_channel = unique_channel("timeline:public");
  std::string hashtag_channel = unique_channel("timeline:hashtag:cafe");
  auto a = broker.gateway("a");
  auto b = broker.gateway("b");
  auto c = broker.gateway("c");
  a->subscribe({public_channel});
  c->subscribe({public_channel});
  b->subscribe({hashtag_channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(public_channel) == 1 && redis().numsub(hashtag_channel) == 1; }));
  uint64_t sent = counter("sluice_broker_events_sent_total");

  // Rails escapes like this; clients get JSON.stringify's output and never
  // queued_at (docs/protocol.md#payload-serialisation).
  redis().publish(public_channel,
                  R"({"event":"update","payload":{"id":"1","content":"\u003cp\u003eHi\u003c/p\u003e","n":1.0},"queued_at":1})");
  redis().publish(hashtag_channel, R"({"event":"delete","payload":"99"})");

  for (auto* client : {a.get(), c.get()}) {
    auto event = client->next_event();
    ASSERT_TRUE(event.has_value());
    EXPECT_EQ(event->channel(), public_channel);
    EXPECT_EQ(event->event(), "update");
    EXPECT_EQ(event->payload(), R"({"id":"1","content":"<p>Hi</p>","n":1})");
    EXPECT_GT(event->received_at_us(), 0);
  }
  // b's first event is its own channel's: the public update never reached it.
  auto event = b->next_event();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->channel(), hashtag_channel);
  EXPECT_EQ(event->event(), "delete");
  EXPECT_EQ(event->payload(), "99");
  // And a did not get the hashtag event: its next one is the next public event.
  redis().publish(public_channel, R"({"event":"delete","payload":"100"})");
  auto next = a->next_event();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->payload(), "100");
  EXPECT_GE(counter("sluice_broker_events_sent_total") - sent, 4u);
}

TEST(Broker, SystemChannelEventsGoToEveryStreamWithoutSubscribing) {
  Broker broker;
  std::mutex mutex;
  std::vector<std::string> heard;
  broker.tier().add_system_listener({[&](const v1::ChannelEvent& event) {
    std::lock_guard lock(mutex);
    heard.push_back(event.channel() + " " + event.event());
  }});
  ASSERT_TRUE(broker.wait_ready());
  auto a = broker.gateway("a");
  auto b = broker.gateway("b");
  long long subscribes = redis().command_calls("subscribe");

  // Rails' kill carries no payload (docs/protocol.md#system-channels); a status-free payload is never forwarded.
  EXPECT_EQ(redis().publish("timeline:access_token:4242", R"({"event":"kill"})"), 1);
  redis().publish("timeline:system:77", R"({"event":"filters_changed","payload":"x"})");
  for (auto* client : {a.get(), b.get()}) {
    auto kill = client->next_event();
    ASSERT_TRUE(kill.has_value());
    EXPECT_EQ(kill->channel(), "timeline:access_token:4242");
    EXPECT_EQ(kill->event(), "kill");
    EXPECT_EQ(kill->payload(), "");
    auto filters = client->next_event();
    ASSERT_TRUE(filters.has_value());
    EXPECT_EQ(filters->channel(), "timeline:system:77");
    EXPECT_EQ(filters->event(), "filters_changed");
    EXPECT_EQ(filters->payload(), "");
  }
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return heard == std::vector<std::string>{"timeline:access_token:4242 kill", "timeline:system:77 filters_changed"};
  }));
  // No SUBSCRIBE per system channel.
  EXPECT_EQ(redis().command_calls("subscribe"), subscribes);
}

TEST(Broker, InvalidMessagesAreDroppedAndCounted) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:public");
  auto a = broker.gateway("a");
  a->subscribe({channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  uint64_t received = counter("redis_messages_received_total");
  uint64_t invalid_json = counter("sluice_redis_dropped_messages_total", {{"reason", "invalid_json"}});
  uint64_t not_object = counter("sluice_redis_dropped_messages_total", {{"reason", "not_an_object"}});
  uint64_t no_event = counter("sluice_redis_dropped_messages_total", {{"reason", "no_event"}});
  uint64_t no_payload = counter("sluice_redis_dropped_messages_total", {{"reason", "no_payload"}});
  uint64_t invalid_channel = counter("sluice_redis_dropped_messages_total", {{"reason", "invalid_channel"}});

  // Sent on to the gateway, a name that is not UTF-8 failed its stream's read.
  redis().publish("timeline:system:\xff", R"({"event":"kill"})");
  redis().publish(channel, "this is not json");
  redis().publish(channel, "[1,2,3]");
  redis().publish(channel, R"({"payload":"1"})");
  redis().publish(channel, R"({"event":"filters_changed"})");
  redis().publish("timeline:system:1", "{broken");
  redis().publish(channel, R"({"event":"delete","payload":"5"})");

  auto event = a->next_event();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->payload(), "5") << "an invalid message was forwarded";
  EXPECT_EQ(counter("redis_messages_received_total") - received, 7u);
  EXPECT_EQ(counter("sluice_redis_dropped_messages_total", {{"reason", "invalid_json"}}) - invalid_json, 2u);
  EXPECT_EQ(counter("sluice_redis_dropped_messages_total", {{"reason", "not_an_object"}}) - not_object, 1u);
  EXPECT_EQ(counter("sluice_redis_dropped_messages_total", {{"reason", "no_event"}}) - no_event, 1u);
  EXPECT_EQ(counter("sluice_redis_dropped_messages_total", {{"reason", "no_payload"}}) - no_payload, 1u);
  EXPECT_EQ(counter("sluice_redis_dropped_messages_total", {{"reason", "invalid_channel"}}) - invalid_channel, 1u);
}

TEST(Broker, HeartbeatKeysAreSetWithTtlAndRefreshedOnSubscribe) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string quiet = unique_channel("timeline:public");
  std::string home = unique_channel("timeline");
  auto a = broker.gateway("a");
  a->subscribe({quiet}, /*heartbeat=*/false);
  a->subscribe({home}, /*heartbeat=*/true);
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + home}) == 1; }));
  long long first = ttl(redis(), "subscribed:" + home);
  EXPECT_GT(first, 1070);
  EXPECT_LE(first, 1080);
  EXPECT_EQ(redis().command({"GET", "subscribed:" + home}), "1");
  // SETs run in order, so the quiet channel's key would exist by now.
  EXPECT_EQ(redis().integer({"EXISTS", "subscribed:" + quiet}), 0);

  // A second Subscribe naming the channel (another client of the same gateway) SETs it again.
  redis().command({"EXPIRE", "subscribed:" + home, "100"});
  ASSERT_LE(ttl(redis(), "subscribed:" + home), 100);
  auto b = broker.gateway("b");
  b->subscribe({home}, true);
  EXPECT_TRUE(eventually([&] { return ttl(redis(), "subscribed:" + home) > 1070; }));
  redis().command({"EXPIRE", "subscribed:" + home, "100"});
  a->subscribe({home}, true);
  EXPECT_TRUE(eventually([&] { return ttl(redis(), "subscribed:" + home) > 1070; }));

  // Leaving never deletes the key (docs/protocol.md#subscription-heartbeat-keys).
  a->unsubscribe({home});
  b->unsubscribe({home});
  ASSERT_TRUE(eventually([&] { return redis().numsub(home) == 0; }));
  EXPECT_EQ(redis().integer({"EXISTS", "subscribed:" + home}), 1);
}

// A Touch re-SETs keys of channels the gateway holds with a heartbeat, and only those:
// a gateway cannot make the broker write keys for channels nobody listens to.
TEST(Broker, TouchSetsOnlyHeldHeartbeatKeys) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string home = unique_channel("timeline");
  std::string quiet = unique_channel("timeline:public");
  std::string foreign = unique_channel("timeline");
  auto a = broker.gateway("a");
  auto b = broker.gateway("b");
  a->subscribe({home}, /*heartbeat=*/true);
  a->subscribe({quiet}, /*heartbeat=*/false);
  b->subscribe({foreign}, /*heartbeat=*/true);
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + foreign}) == 1; }));
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + home}) == 1; }));
  redis().command({"DEL", "subscribed:" + home, "subscribed:" + foreign});
  // One Touch names all three; the held heartbeat channel's SET comes in the same
  // batch as the others would, so once it is there the others would be too.
  a->touch({foreign, quiet, home});
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + home}) == 1; }));
  EXPECT_GT(ttl(redis(), "subscribed:" + home), 1070);
  EXPECT_EQ(redis().integer({"EXISTS", "subscribed:" + quiet}), 0);
  EXPECT_EQ(redis().integer({"EXISTS", "subscribed:" + foreign}), 0);
}

// docs/protocol.md#subscription-heartbeat-keys: the key is SET again every interval
// while any gateway wants the channel, and no longer once the last one has left.
TEST(Broker, HeartbeatKeysAreRefreshedPeriodicallyWhileWanted) {
  Broker broker({}, [](BrokerConfig& config) { config.heartbeat_interval = 200ms; });
  ASSERT_TRUE(broker.wait_ready());
  std::string home = unique_channel("timeline");
  auto a = broker.gateway("a");
  a->subscribe({home}, /*heartbeat=*/true);
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + home}) == 1; }));
  redis().command({"EXPIRE", "subscribed:" + home, "100"});
  EXPECT_TRUE(eventually([&] { return ttl(redis(), "subscribed:" + home) > 1070; }, 3s));
  a->unsubscribe({home});
  ASSERT_TRUE(eventually([&] { return redis().numsub(home) == 0; }));
  redis().command({"EXPIRE", "subscribed:" + home, "100"});
  // Marker: a channel still wanted is refreshed by a later periodic run; once it has
  // been, that run would have refreshed `home` too had it still been wanted.
  std::string marker = unique_channel("timeline");
  a->subscribe({marker}, /*heartbeat=*/true);
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + marker}) == 1; }));
  redis().command({"EXPIRE", "subscribed:" + marker, "100"});
  ASSERT_TRUE(eventually([&] { return ttl(redis(), "subscribed:" + marker) > 1070; }, 3s));
  EXPECT_LE(ttl(redis(), "subscribed:" + home), 100);
}

// This process's TCP sockets connected to `port` on loopback, with their keepalive
// settings: {SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT}.
std::vector<std::array<int, 5>> keepalive_of_sockets_to(int port) {
  std::vector<std::array<int, 5>> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = std::stoi(entry.path().filename().string());
    sockaddr_in peer{};
    socklen_t length = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0 || peer.sin_family != AF_INET ||
        ntohs(peer.sin_port) != port) {
      continue;
    }
    std::array<int, 5> values{};
    const std::array<std::pair<int, int>, 5> options = {{{SOL_SOCKET, SO_KEEPALIVE},
                                                          {IPPROTO_TCP, TCP_KEEPIDLE},
                                                          {IPPROTO_TCP, TCP_KEEPINTVL},
                                                          {IPPROTO_TCP, TCP_KEEPCNT},
                                                          {IPPROTO_TCP, TCP_USER_TIMEOUT}}};
    for (size_t i = 0; i < options.size(); ++i) {
      socklen_t size = sizeof values[i];
      ::getsockopt(fd, options[i].first, options[i].second, &values[i], &size);
    }
    found.push_back(values);
  }
  return found;
}

// docs/protocol.md#redis-configuration: a Redis gone without a reset is noticed by TCP
// keepalive on both connections (the subscriber and the command connection); a dropped
// connection is then reconnected as after any other loss.
TEST(Broker, BothRedisConnectionsProbeASilentPeer) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  // The command connection opens with the first command it has to send.
  auto a = broker.gateway("a");
  std::string home = unique_channel("timeline");
  a->subscribe({home}, /*heartbeat=*/true);
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + home}) == 1; }));
  // The suite's own command connection (tests/support) is among them, without keepalive.
  size_t probing = 0;
  for (const auto& values : keepalive_of_sockets_to(redis().port())) {
    if (!values[0]) continue;
    ++probing;
    EXPECT_EQ(values[1], 10) << "seconds idle before the first probe";
    EXPECT_EQ(values[2], 5) << "seconds between probes";
    EXPECT_EQ(values[3], 4) << "unanswered probes before the connection is dropped";
    EXPECT_EQ(values[4], 30000) << "milliseconds a write may go unacknowledged";
  }
  EXPECT_EQ(probing, 2u) << "the subscriber and the command connection";
}

TEST(Broker, NamespacePrefixesChannelsAndKeysAndIsStrippedFromEvents) {
  Broker broker({{"REDIS_URL", redis().url()}, {"REDIS_NAMESPACE", "ns1"}});
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline");
  auto a = broker.gateway("a");
  a->subscribe({channel}, true);
  ASSERT_TRUE(eventually([&] { return redis().numsub("ns1:" + channel) == 1; }));
  // A stream's requests are handled in order: once a later one is in Redis, a SUBSCRIBE
  // of the unprefixed name would be too.
  std::string later = unique_channel("timeline");
  a->subscribe({later}, true);
  ASSERT_TRUE(eventually([&] { return redis().numsub("ns1:" + later) == 1; }));
  EXPECT_EQ(redis().numsub(channel), 0);
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "ns1:subscribed:" + channel}) == 1; }));
  EXPECT_EQ(redis().integer({"EXISTS", "subscribed:" + channel}), 0);

  redis().publish(channel, R"({"event":"delete","payload":"no namespace"})");
  redis().publish("ns1:" + channel, R"({"event":"delete","payload":"8"})");
  auto event = a->next_event();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->channel(), channel);
  EXPECT_EQ(event->payload(), "8");

  EXPECT_EQ(redis().publish("timeline:access_token:1", R"({"event":"kill"})"), 0);
  EXPECT_EQ(redis().publish("ns1:timeline:access_token:1", R"({"event":"kill"})"), 1);
  auto kill = a->next_event();
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->channel(), "timeline:access_token:1");
  EXPECT_EQ(kill->event(), "kill");
}

TEST(Broker, RefusesStreamsWithoutTheInternalToken) {
  Broker broker({{"REDIS_URL", redis().url()}, {"SLUICE_INTERNAL_TOKEN", "s3cret"}});
  GatewayClient anonymous(broker.channel());
  anonymous.hello();
  auto status = anonymous.status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAUTHENTICATED);

  GatewayClient wrong(broker.channel(), "wrong");
  wrong.hello();
  status = wrong.status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAUTHENTICATED);

  GatewayClient trusted(broker.channel(), "s3cret");
  trusted.hello();
  EXPECT_TRUE(trusted.wait_ready());
}

TEST(Broker, SlowGatewayIsFinishedWithResourceExhausted) {
  Broker broker({{"REDIS_URL", redis().url()}, {"SLUICE_BROKER_GATEWAY_QUEUE", "4"}});
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:public");
  GatewayClient slow(broker.channel(), {}, /*start_reading=*/false);
  auto fast = broker.gateway("fast");
  slow.hello("slow");
  slow.subscribe({channel});
  fast->subscribe({channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  uint64_t overflows = counter("sluice_broker_gateway_overflows_total");

  int published = 0;
  EXPECT_TRUE(eventually([&] {
    redis().publish(channel, R"({"event":"delete","payload":")" + std::to_string(++published) + "\"}");
    return counter("sluice_broker_gateway_overflows_total") > overflows;
  }));
  EXPECT_LT(published, 1000) << "the queue bound did not apply";
  slow.start_reading();
  auto status = slow.status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status->error_message();
  EXPECT_EQ(counter("sluice_broker_gateway_overflows_total") - overflows, 1u);
  // The reading gateway keeps its stream and its channel.
  for (int i = 1; i <= published; ++i) {
    auto event = fast->next_event();
    ASSERT_TRUE(event.has_value());
    EXPECT_EQ(event->payload(), std::to_string(i));
  }
  EXPECT_EQ(redis().numsub(channel), 1);
}

// The count alone would let a gateway that stopped reading pin 65,536 large statuses
// (hundreds of MB); their bytes are bounded too.
TEST(Broker, SlowGatewayIsFinishedWhenItsQueueHoldsTooManyBytes) {
  Broker broker({{"REDIS_URL", redis().url()}, {"SLUICE_BROKER_GATEWAY_QUEUE_BYTES", "262144"}});
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:public");
  GatewayClient slow(broker.channel(), {}, /*start_reading=*/false);
  slow.hello("slow");
  slow.subscribe({channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  uint64_t overflows = counter("sluice_broker_gateway_overflows_total");

  // 400 events of 16 KiB (6.4 MB) against 256 KiB: far below the 65,536 the count
  // allows, so only the byte bound can end the stream.
  const std::string large(16 * 1024, 'x');
  for (int i = 0; i < 400; ++i) redis().publish(channel, R"({"event":"delete","payload":")" + large + "\"}");
  ASSERT_TRUE(eventually([&] { return counter("sluice_broker_gateway_overflows_total") > overflows; }))
      << "the byte bound did not apply";
  slow.start_reading();
  auto status = slow.status();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status->error_message();
  // "gateway stream fell behind: N messages of B bytes queued": 256 KiB hold 16 of them.
  const std::string& why = status->error_message();
  ASSERT_EQ(why.rfind("gateway stream fell behind: ", 0), 0u) << why;
  EXPECT_LE(std::stoi(why.substr(std::string("gateway stream fell behind: ").size())), 20) << why;
}

// Events that queue up behind a write (here: while the gateways do not read) go out as
// one EventBatch to a gateway whose Hello says it reads them, in the channel's order;
// an older gateway gets the same events one per message.
TEST(Broker, EventsQueuedBehindAWriteGoAsBatchesOnlyToGatewaysThatReadThem) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  const std::string batching_channel = unique_channel("timeline:hashtag:batching");
  const std::string older_channel = unique_channel("timeline:hashtag:older");
  GatewayClient batching(broker.channel(), {}, /*start_reading=*/false);
  GatewayClient older(broker.channel(), {}, /*start_reading=*/false);
  batching.hello("batching", /*accepts_event_batches=*/true);
  older.hello("older");
  batching.subscribe({batching_channel});
  older.subscribe({older_channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(batching_channel) == 1 && redis().numsub(older_channel) == 1; }));
  const uint64_t sent_before = counter("sluice_broker_events_sent_total");
  constexpr int kEvents = 300;
  const std::string padding(8000, 'x');
  for (int i = 1; i <= kEvents; ++i) {
    const std::string message = R"({"event":"delete","payload":")" + std::to_string(i) + "-" + padding + R"("})";
    ASSERT_EQ(redis().publish(batching_channel, message), 1);
    ASSERT_EQ(redis().publish(older_channel, message), 1);
  }
  batching.start_reading();
  older.start_reading();

  // Every event once, in order, whatever messages carry them.
  auto read_all = [&](GatewayClient& gateway, int& messages, int& batches) {
    int expected = 1;
    while (expected <= kEvents) {
      auto message = gateway.next();
      ASSERT_TRUE(message.has_value()) << "event " << expected << " never came";
      if (message->has_ready()) continue;
      ++messages;
      std::vector<v1::ChannelEvent> events;
      if (message->has_event()) events.push_back(message->event());
      if (message->has_events()) {
        ++batches;
        events.assign(message->events().events().begin(), message->events().events().end());
      }
      for (const auto& event : events) {
        ASSERT_EQ(event.payload(), std::to_string(expected) + "-" + padding) << "out of order";
        ++expected;
      }
    }
  };
  int batching_messages = 0, batching_batches = 0, older_messages = 0, older_batches = 0;
  read_all(batching, batching_messages, batching_batches);
  read_all(older, older_messages, older_batches);
  EXPECT_GT(batching_batches, 0);
  EXPECT_LT(batching_messages, kEvents) << "the events that queued went in fewer messages";
  EXPECT_EQ(older_batches, 0);
  EXPECT_EQ(older_messages, kEvents);
  EXPECT_EQ(counter("sluice_broker_events_sent_total") - sent_before, 2u * kEvents) << "counted per event";
}

TEST(Broker, ReconnectsAndResubscribesAfterRedisRestart) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline");
  auto a = broker.gateway("a");
  a->subscribe({channel}, true);
  std::string other = unique_channel("timeline");
  auto b = broker.gateway("b");
  b->subscribe({other});
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1 && redis().numsub(other) == 1; }));
  ASSERT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + channel}) == 1; }));
  uint64_t reconnects = counter("sluice_redis_reconnects_total", {{"connection", "subscriber"}});

  redis().stop();
  ASSERT_TRUE(eventually([&] { return !broker.tier().ready(); }));
  EXPECT_EQ(gauge("sluice_redis_connected", {{"connection", "subscriber"}}), 0);
  redis().start();

  ASSERT_TRUE(broker.wait_ready(20s));
  EXPECT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  EXPECT_GT(counter("sluice_redis_reconnects_total", {{"connection", "subscriber"}}), reconnects);
  EXPECT_EQ(gauge("sluice_redis_connected", {{"connection", "subscriber"}}), 1);
  // The restarted Redis lost its keys: the wanted channel's key is SET again on reconnect.
  EXPECT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + channel}) == 1; }));
  // Each stream is told, for its own channels only, where the restarted subscription
  // begins (docs/scale-out.md#brokers), before anything that subscription carries.
  for (const auto& [stream, want] :
       std::vector<std::pair<GatewayClient*, std::string>>{{a.get(), channel}, {b.get(), other}}) {
    std::optional<v1::BrokerMessage> message;
    while ((message = stream->next()) &&
           !(message->has_resubscribed() && !message->resubscribed().system_channels())) {
    }
    ASSERT_TRUE(message.has_value()) << "no Resubscribed after the Redis restart";
    EXPECT_EQ(std::vector<std::string>(message->resubscribed().channels().begin(), message->resubscribed().channels().end()),
              std::vector<std::string>{want});
  }
  redis().publish(channel, R"({"event":"delete","payload":"after restart"})");
  auto event = a->next();
  ASSERT_TRUE(event.has_value());
  ASSERT_TRUE(event->has_event()) << event->DebugString();
  EXPECT_EQ(event->event().payload(), "after restart");
}

// docs/protocol.md#system-channels: kills published while the broker's subscriber
// connection was down (Redis itself still up, so Rails could publish) were missed. Once
// the system patterns are subscribed again, in-process listeners (the all-in-one's auth
// caches) and every stream (the split auth tier's) are told, once; the first connection
// tells nobody.
TEST(Broker, SystemEventsMissedWhileTheSubscriberWasAwayAreReported) {
  Broker broker;
  std::atomic<int> missed{0};
  broker.tier().add_system_listener({[](const v1::ChannelEvent&) {}, [&] { ++missed; }});
  ASSERT_TRUE(broker.wait_ready());
  auto a = broker.gateway("a");
  std::string channel = unique_channel("timeline");
  a->subscribe({channel});
  ASSERT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));

  redis().command({"CLIENT", "KILL", "TYPE", "pubsub"});
  std::optional<v1::BrokerMessage> message;
  while ((message = a->next(20s)) && !(message->has_resubscribed() && message->resubscribed().system_channels())) {
  }
  ASSERT_TRUE(message.has_value()) << "no system Resubscribed after the subscriber reconnected";
  EXPECT_TRUE(message->resubscribed().channels().empty());
  EXPECT_EQ(message->resubscribed().tenant(), "");
  EXPECT_TRUE(eventually([&] { return missed.load() >= 1; }));
  // The channel's own marker follows; by then any second report would have been made.
  while ((message = a->next()) && !(message->has_resubscribed() && !message->resubscribed().system_channels())) {
  }
  ASSERT_TRUE(message.has_value()) << "no Resubscribed for the channel";
  EXPECT_EQ(missed.load(), 1) << "reported at the first connection, or twice";
}

// The same through a BrokerSet, as the split auth tier holds one (auth/main.cpp): its
// callback runs when the stream is confirmed, and again when the broker's subscriber
// comes back, though the stream itself never closed.
TEST(Broker, ABrokerSetHearsOfMissedSystemEventsOnAStreamThatStayedOpen) {
  Broker broker;
  ASSERT_TRUE(broker.wait_ready());
  std::atomic<int> missed{0};
  BrokerSetOptions options;
  options.addresses = "in-process";
  BrokerSet set(options, [&broker](const BrokerTarget&) { return broker.tier().local_streams(); }, "auth-like",
                [](BrokerLink::Events) {}, [&] { ++missed; });
  set.start();
  ASSERT_TRUE(eventually([&] { return missed.load() == 1; })) << "not told when the stream was confirmed";
  redis().command({"CLIENT", "KILL", "TYPE", "pubsub"});
  EXPECT_TRUE(eventually([&] { return missed.load() == 2; }, 20s)) << "not told of the subscriber's reconnect";
  set.stop();
}

// Redis 7's ACLs can leave a user without the channels (`resetchannels`, the default
// of `acl-pubsub-default`): Redis answers such a SUBSCRIBE with an error. It is logged
// and counted, as the reference logs a failed subscribe, and the channels the user may
// read keep working.
TEST(Broker, ASubscriptionRedisRefusesIsCountedAndTheOthersWork) {
  RedisServer acl_redis;
  ASSERT_EQ(acl_redis.command({"ACL", "SETUSER", "streaming", "on", ">secret", "~*", "+@all", "resetchannels",
                               "&timeline:allowed:*", "&timeline:access_token:*", "&timeline:system:*"}),
            "OK");
  Broker broker({{"REDIS_URL", "redis://streaming:secret@127.0.0.1:" + std::to_string(acl_redis.port())}});
  ASSERT_TRUE(broker.wait_ready());
  auto& refused = metrics::Registry::global().counter("sluice_redis_subscriptions_refused_total", "");
  const uint64_t refused_before = refused.value();
  auto a = broker.gateway("a");
  // Asked for together, as after a reconnect: Redis refuses a whole command for one
  // channel, so the allowed one must not share the refused one's command.
  const std::string allowed = unique_channel("timeline:allowed:x");
  ASSERT_TRUE(a->subscribe({"timeline:refused:" + std::to_string(::getpid()), allowed}));
  ASSERT_TRUE(eventually([&] { return refused.value() == refused_before + 1; })) << "the refusal went unnoticed";
  ASSERT_TRUE(eventually([&] { return acl_redis.numsub(allowed) == 1; })) << "the allowed channel was refused too";
  acl_redis.publish(allowed, R"({"event":"delete","payload":"allowed"})");
  auto event = a->next_event();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->payload(), "allowed");
  EXPECT_EQ(refused.value(), refused_before + 1);
  EXPECT_TRUE(broker.tier().ready());
}

TEST(Broker, BecomesReadyWhenRedisAppearsAfterStart) {
  RedisServer late;
  late.stop();
  Broker broker({{"REDIS_URL", late.url()}});
  std::atomic<int> became_ready{0};
  broker.tier().set_readiness_callback([&](bool ready) {
    if (ready) ++became_ready;
  });
  std::string channel = unique_channel("timeline");
  auto a = broker.gateway("a");  // the gRPC side serves while Redis is down
  a->subscribe({channel}, true);
  // Marker: the broker has tried Redis again and failed (a later attempt than its first).
  auto& retries = metrics::Registry::global().counter(
      "sluice_redis_reconnects_total", "Connection attempts to Redis after a failed or lost connection",
      {{"connection", "subscriber"}});
  const uint64_t retries_before = retries.value();
  ASSERT_TRUE(eventually([&] { return retries.value() >= retries_before + 2; }));
  EXPECT_FALSE(broker.tier().ready());

  late.start();
  ASSERT_TRUE(broker.wait_ready(20s));
  EXPECT_EQ(became_ready.load(), 1);
  EXPECT_TRUE(eventually([&] { return late.numsub(channel) == 1; }));
  // The heartbeat asked for while Redis was down is done on connect.
  EXPECT_TRUE(eventually([&] { return late.integer({"EXISTS", "subscribed:" + channel}) == 1; }));
  late.publish(channel, R"({"event":"delete","payload":"late"})");
  auto event = a->next_event();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->payload(), "late");
}

TEST(Broker, UnixSocketAndDatabaseSelection) {
  testing::TempDir dir;
  std::string socket = dir.path() + "/redis.sock";
  int port = testing::free_port();
  testing::Process server({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--unixsocket",
                           socket, "--save", "", "--appendonly", "no", "--dir", dir.path()});
  ASSERT_TRUE(testing::wait_for_port(port, 20s));
  Broker broker({{"REDIS_URL", "unix://" + socket + "?db=3"}});
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline");
  auto a = broker.gateway("a");
  a->subscribe({channel}, true);
  // The key lands in database 3, not 0.
  auto redis_cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"redis-cli", "-s", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    testing::run_command(argv, &output);
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    return output;
  };
  EXPECT_TRUE(eventually([&] { return redis_cli({"-n", "3", "EXISTS", "subscribed:" + channel}) == "1"; }));
  EXPECT_EQ(redis_cli({"-n", "0", "EXISTS", "subscribed:" + channel}), "0");
  redis_cli({"PUBLISH", channel, R"({"event":"delete","payload":"unix"})"});
  auto event = a->next_event();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->payload(), "unix");
}

// The all-in-one's auth cache trusts cached tokens only while kills can arrive: while
// the instance's Redis subscriber connection is up.
TEST(Broker, SystemEventsAreLiveWhileTheSubscriberIsConnected) {
  Broker down({{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(testing::free_port())}});
  EXPECT_FALSE(down.tier().system_events_live(""));
  Broker up;
  ASSERT_TRUE(up.wait_ready());
  // Once the system patterns are confirmed, a little after the connection is ready.
  EXPECT_TRUE(eventually([&] { return up.tier().system_events_live(""); }));
}

TEST(Broker, PasswordIsSentWithAuth) {
  testing::TempDir dir;
  int port = testing::free_port();
  testing::Process server({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--requirepass",
                           "pw", "--save", "", "--appendonly", "no", "--dir", dir.path()});
  ASSERT_TRUE(testing::wait_for_port(port, 20s));
  {
    auto& retries = metrics::Registry::global().counter(
        "sluice_redis_reconnects_total", "Connection attempts to Redis after a failed or lost connection",
        {{"connection", "subscriber"}});
    const uint64_t retries_before = retries.value();
    Broker wrong({{"REDIS_URL", "redis://:nope@127.0.0.1:" + std::to_string(port)}});
    // Marker: refused and tried again, so the refusal has been seen.
    ASSERT_TRUE(eventually([&] { return retries.value() >= retries_before + 1; }));
    EXPECT_FALSE(wrong.tier().ready());
  }
  Broker broker({{"REDIS_URL", "redis://:pw@127.0.0.1:" + std::to_string(port) + "/2"}});
  EXPECT_TRUE(broker.wait_ready());
}

// A Sentinel just after a failover, before it has heard: it names the old master, now a
// replica, for its first `stale` answers, then the new one. One question per connection,
// as the broker asks.
class ScriptedSentinel {
 public:
  ScriptedSentinel(int stale_port, int stale, int master_port)
      : stale_port_(stale_port), stale_(stale), master_port_(master_port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      ADD_FAILURE() << "the scripted sentinel could not listen";
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedSentinel() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int asked() const { return asked_.load(); }

 private:
  void serve() {
    for (;;) {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      std::string question;
      char buffer[512];
      while (question.find("mymaster\r\n") == std::string::npos) {
        ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        question.append(buffer, static_cast<size_t>(n));
      }
      if (question.find("get-master-addr-by-name") != std::string::npos) {
        const std::string port = std::to_string(asked_++ < stale_ ? stale_port_ : master_port_);
        const std::string answer = "*2\r\n$9\r\n127.0.0.1\r\n$" + std::to_string(port.size()) + "\r\n" + port + "\r\n";
        ::send(client, answer.data(), answer.size(), MSG_NOSIGNAL);
      }
      ::close(client);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  const int stale_port_, stale_, master_port_;
  std::atomic<int> asked_{0};
  std::thread thread_;
};

// A replica of the suite's Redis: what the old master becomes after a failover.
struct Replica {
  Replica()
      : process({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--replicaof", "127.0.0.1",
                 std::to_string(redis().port()), "--save", "", "--appendonly", "no", "--dir", dir.path()}) {}
  testing::TempDir dir;
  int port = testing::free_port();
  testing::Process process;
};

// docs/protocol.md#redis-configuration: the node a Sentinel names must be the master.
// On the replica, SUBSCRIBE works (PUBLISH replicates) but the `subscribed:` SET fails
// READONLY for as long as the connection lasts: without the ROLE check the key never
// appeared on the master.
TEST(Broker, AReplicaNamedBySentinelIsLeftForTheMaster) {
  Replica replica;
  ASSERT_TRUE(testing::wait_for_port(replica.port, 20s));
  // Both of the broker's connections (subscriber, commands) are first sent to the replica.
  ScriptedSentinel sentinel(replica.port, 2, redis().port());
  Broker broker({{"REDIS_SENTINELS", "127.0.0.1:" + std::to_string(sentinel.port())},
                 {"REDIS_SENTINEL_MASTER", "mymaster"}});
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline");
  auto a = broker.gateway("a");
  a->subscribe({channel}, /*heartbeat=*/true);
  EXPECT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + channel}) == 1; }))
      << "the heartbeat key never reached the master";
  EXPECT_GE(sentinel.asked(), 3);
}

// A Sentinel cut off from the others keeps naming the old master: after a replica, the
// next Sentinel is asked first (as ioredis does), not the same one for ever.
TEST(Broker, ASentinelThatNamedAReplicaIsNotAskedFirstAgain) {
  Replica replica;
  ASSERT_TRUE(testing::wait_for_port(replica.port, 20s));
  ScriptedSentinel stale(replica.port, 1000000, redis().port());
  ScriptedSentinel current(redis().port(), 0, redis().port());
  Broker broker({{"REDIS_SENTINELS", "127.0.0.1:" + std::to_string(stale.port()) + ",127.0.0.1:" +
                                         std::to_string(current.port())},
                 {"REDIS_SENTINEL_MASTER", "mymaster"}});
  ASSERT_TRUE(broker.wait_ready()) << "asked " << stale.asked() << " times the Sentinel that names a replica";
  std::string channel = unique_channel("timeline");
  auto a = broker.gateway("a");
  a->subscribe({channel}, /*heartbeat=*/true);
  EXPECT_TRUE(eventually([&] { return redis().integer({"EXISTS", "subscribed:" + channel}) == 1; }));
  EXPECT_GE(current.asked(), 2) << "each connection asks the current Sentinel";
}

TEST(Broker, AsksSentinelForTheMaster) {
  testing::TempDir dir;
  int sentinel_port = testing::free_port();
  int dead_port = testing::free_port();
  std::string conf = dir.path() + "/sentinel.conf";
  {
    std::ofstream out(conf);
    out << "port " << sentinel_port << "\nbind 127.0.0.1\ndir " << dir.path()
        << "\nsentinel monitor mymaster 127.0.0.1 " << redis().port() << " 1\n";
  }
  testing::Process sentinel({"redis-server", conf, "--sentinel"}, {}, dir.path() + "/sentinel.log");
  ASSERT_TRUE(testing::wait_for_port(sentinel_port, 20s));
  // The first sentinel is down: the broker asks the next one.
  Broker broker({{"REDIS_SENTINELS", "127.0.0.1:" + std::to_string(dead_port) + ",127.0.0.1"},
                 {"REDIS_SENTINEL_PORT", std::to_string(sentinel_port)},
                 {"REDIS_SENTINEL_MASTER", "mymaster"}});
  ASSERT_TRUE(broker.wait_ready());
  std::string channel = unique_channel("timeline:public");
  auto a = broker.gateway("a");
  a->subscribe({channel});
  EXPECT_TRUE(eventually([&] { return redis().numsub(channel) == 1; }));
  redis().publish(channel, R"({"event":"delete","payload":"via sentinel"})");
  auto event = a->next_event();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->payload(), "via sentinel");
}

}  // namespace
}  // namespace sluice
