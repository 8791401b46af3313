// One broker serving several instances (docs/hosting.md#redis), against two real
// redis-servers: instances on one Redis under different namespaces share one connection
// pair, an instance on another Redis gets its own, every event reaches only the streams
// that asked for that instance's channel, and a reload adds and removes instances.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <thread>

#include "broker/broker_tier.hpp"
#include "broker/redis_link.hpp"
#include "broker/redis_subscriber.hpp"
#include "common/broker_set.hpp"
#include "common/channel_key.hpp"
#include "common/config_error.hpp"
#include "tests/broker/gateway_client.hpp"
#include "tests/broker/in_process_broker.hpp"
#include "tests/support/servers.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::GatewayClient;
using testing::RedisServer;
using testing::eventually;

RedisServer& redis_a() {
  static RedisServer server;
  return server;
}
RedisServer& redis_b() {
  static RedisServer server;
  return server;
}

// Connections Redis has open, less the one asking.
long long clients(RedisServer& server) {
  std::string list = server.command({"CLIENT", "LIST"});
  return std::count(list.begin(), list.end(), '\n') + (list.empty() || list.back() == '\n' ? 0 : 1) - 1;
}

std::string tenant_json(const std::string& name, const std::string& url, const std::string& ns = "") {
  std::string env = "\"REDIS_URL\": \"" + url + "\"";
  if (!ns.empty()) env += ", \"REDIS_NAMESPACE\": \"" + ns + "\"";
  return "\"" + name + "\": {\"hosts\": [\"" + name + ".example\"], \"env\": {" + env + "}}";
}

std::shared_ptr<const Tenants> tenants(const std::vector<std::string>& entries) {
  std::string json = "{\"tenants\": {";
  for (size_t i = 0; i < entries.size(); ++i) json += (i ? ", " : "") + entries[i];
  return std::make_shared<const Tenants>(Tenants::parse(json + "}}", Env::from_map({})));
}

class TenantsBroker : public testing::InProcessBroker {
 public:
  explicit TenantsBroker(std::shared_ptr<const Tenants> file)
      : InProcessBroker(BrokerConfig::from_env(Env::from_map({})), std::move(file)) {}
};

bool subscribe(GatewayClient& gateway, const std::string& tenant, const std::string& channel, bool heartbeat = false) {
  v1::GatewayMessage message;
  message.mutable_subscribe()->add_channels(channel);
  message.mutable_subscribe()->set_heartbeat(heartbeat);
  message.mutable_subscribe()->set_tenant(tenant);
  return gateway.write(message);
}

std::string message(const std::string& payload) { return R"({"event":"delete","payload":")" + payload + R"("})"; }

// Publishes once the broker holds the Redis channel, then reads the next event.
std::optional<v1::ChannelEvent> publish_and_read(GatewayClient& gateway, RedisServer& redis,
                                                 const std::string& redis_channel, const std::string& payload) {
  EXPECT_TRUE(eventually([&] { return redis.numsub(redis_channel) == 1; })) << redis_channel;
  EXPECT_EQ(redis.publish(redis_channel, message(payload)), 1) << redis_channel;
  return gateway.next_event();
}

TEST(BrokerTenants, EachInstanceGetsItsOwnChannelsAndOneConnectionPairServesEachRedis) {
  const std::string a = redis_a().url(), b = redis_b().url();
  const long long a_before = clients(redis_a()), b_before = clients(redis_b());
  TenantsBroker broker(tenants({tenant_json("one", a, "one"), tenant_json("two", a, "two"), tenant_json("plain", a),
                                tenant_json("other", b)}));
  auto gateway = broker.gateway();
  // The same channel name for every instance: four different channels.
  for (const char* tenant : {"one", "two", "plain", "other"}) ASSERT_TRUE(subscribe(*gateway, tenant, "timeline:public"));

  struct Case {
    RedisServer& redis;
    const char* redis_channel;
    const char* tenant;
  };
  const Case cases[] = {{redis_a(), "one:timeline:public", "one"},
                        {redis_a(), "two:timeline:public", "two"},
                        {redis_a(), "timeline:public", "plain"},
                        {redis_b(), "timeline:public", "other"},
                        {redis_a(), "two:timeline:public", "two"}};
  int n = 0;
  for (const Case& c : cases) {
    const std::string payload = "p" + std::to_string(++n);
    auto event = publish_and_read(*gateway, c.redis, c.redis_channel, payload);
    ASSERT_TRUE(event) << c.redis_channel;
    EXPECT_EQ(event->tenant(), c.tenant) << c.redis_channel;
    EXPECT_EQ(event->channel(), "timeline:public") << c.redis_channel;
    EXPECT_EQ(event->payload(), payload) << "an event of another instance came first: " << c.redis_channel;
  }
  // Three instances on redis_a, one on redis_b: a subscriber and a command connection each.
  EXPECT_TRUE(eventually([&] { return clients(redis_a()) - a_before == 2; })) << clients(redis_a()) - a_before;
  EXPECT_TRUE(eventually([&] { return clients(redis_b()) - b_before == 2; })) << clients(redis_b()) - b_before;
}

TEST(BrokerTenants, HeartbeatKeysAndSystemChannelsStayWithinTheirInstance) {
  TenantsBroker broker(tenants({tenant_json("one", redis_a().url(), "one"), tenant_json("plain", redis_a().url())}));
  std::mutex mutex;
  std::vector<std::string> heard;
  broker.tier().add_system_listener({[&](const v1::ChannelEvent& event) {
    std::lock_guard lock(mutex);
    heard.push_back(event.tenant() + " " + event.event() + " " + std::to_string(event.system_id()));
  }});
  auto gateway = broker.gateway();
  ASSERT_TRUE(subscribe(*gateway, "one", "timeline:4242", /*heartbeat=*/true));
  EXPECT_TRUE(eventually([] { return redis_a().integer({"EXISTS", "one:subscribed:timeline:4242"}) == 1; }));
  EXPECT_EQ(redis_a().integer({"EXISTS", "subscribed:timeline:4242"}), 0) << "plain never asked for it";

  // Each instance PSUBSCRIBEs its patterns when the connection comes up, before this
  // later SUBSCRIBE on the same connection: once it is in, so are they.
  ASSERT_TRUE(eventually([] { return redis_a().numsub("one:timeline:4242") == 1; }));
  EXPECT_EQ(redis_a().publish("one:timeline:access_token:7", R"({"event":"kill"})"), 1);
  auto kill = gateway->next_event();
  ASSERT_TRUE(kill);
  EXPECT_EQ(kill->tenant(), "one");
  EXPECT_EQ(kill->system_channel(), v1::SYSTEM_CHANNEL_ACCESS_TOKEN);
  EXPECT_EQ(kill->system_id(), 7);
  EXPECT_EQ(redis_a().publish("timeline:system:8", R"({"event":"kill"})"), 1);
  auto second = gateway->next_event();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->tenant(), "plain");
  EXPECT_EQ(second->system_id(), 8);
  std::lock_guard lock(mutex);
  EXPECT_EQ(heard, (std::vector<std::string>{"one kill 7", "plain kill 8"}));
}

TEST(BrokerTenants, AReloadServesNewInstancesIncludingWhatGatewaysAskedForFirstAndLetsRemovedOnesGo) {
  const std::string a = redis_a().url();
  TenantsBroker broker(tenants({tenant_json("keep", a, "keep"), tenant_json("gone", a, "gone")}));
  auto gateway = broker.gateway();
  ASSERT_TRUE(subscribe(*gateway, "gone", "timeline:hashtag:x"));
  ASSERT_TRUE(eventually([] { return redis_a().numsub("gone:timeline:hashtag:x") == 1; }));
  // A gateway that reloaded first asks for an instance the broker does not know yet.
  ASSERT_TRUE(subscribe(*gateway, "new", "timeline:hashtag:x"));
  ASSERT_TRUE(subscribe(*gateway, "keep", "timeline:hashtag:x"));
  ASSERT_TRUE(publish_and_read(*gateway, redis_a(), "keep:timeline:hashtag:x", "before"));

  broker.tier().update_tenants(tenants({tenant_json("keep", a, "keep"), tenant_json("new", redis_b().url(), "new")}));
  EXPECT_TRUE(eventually([] { return redis_a().numsub("gone:timeline:hashtag:x") == 0; }));
  auto event = publish_and_read(*gateway, redis_b(), "new:timeline:hashtag:x", "after");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->tenant(), "new");
  EXPECT_EQ(event->payload(), "after");
  event = publish_and_read(*gateway, redis_a(), "keep:timeline:hashtag:x", "kept");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->tenant(), "keep") << "an instance the reload did not touch keeps its subscriptions";

  // A typo in keep's settings: refused, keep goes on as it was. The same reload drops
  // "new", whose channel going away shows the reload was applied.
  broker.tier().update_tenants(tenants({"\"keep\": {\"hosts\": [\"keep.example\"], \"env\": {\"REDIS_URL\": "
                                        "\"redis://127.0.0.1:notaport\", \"REDIS_NAMESPACE\": \"keep\"}}"}));
  EXPECT_TRUE(eventually([] { return redis_b().numsub("new:timeline:hashtag:x") == 0; }));
  event = publish_and_read(*gateway, redis_a(), "keep:timeline:hashtag:x", "still");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->payload(), "still") << "a refused reload must not take a served instance away";
}

// Messages on a Redis shared by instances go by namespace; one of an instance no longer
// attached (in flight while it was removed) reaches nobody.
TEST(BrokerTenants, ASharedRedisRoutesByNamespaceAndNeverByElimination) {
  boost::asio::io_context io;
  RedisConfig left_config = redis_config_from_env(Env::from_map({{"REDIS_NAMESPACE", "left"}}));
  RedisConfig plain_config = redis_config_from_env(Env::from_map({}));
  broker::SubscriptionRegistry registry;
  broker::RedisLink shared(io, left_config, /*shared=*/true);
  broker::RedisSubscriber left(io, left_config, "left", registry, shared);
  shared.attach(left);
  EXPECT_EQ(shared.route("left:timeline:1"), &left);
  EXPECT_EQ(shared.route("gone:timeline:1"), nullptr);
  EXPECT_EQ(shared.route("timeline:1"), nullptr);
  broker::RedisSubscriber plain(io, plain_config, "plain", registry, shared);
  shared.attach(plain);
  EXPECT_EQ(shared.route("timeline:1"), &plain);
  EXPECT_EQ(shared.route("left:timeline:hashtag:x"), &left);
  shared.detach(plain);
  shared.detach(left);

  // Without a tenants file, the one instance's namespace is cut blindly, as the reference does.
  broker::RedisLink single(io, left_config, /*shared=*/false);
  broker::RedisSubscriber only(io, left_config, "", registry, single);
  single.attach(only);
  EXPECT_EQ(single.route("anything:timeline:1"), &only);
  single.detach(only);
}

// What a gateway process holds: a BrokerSet of channel keys (common/channel_key.hpp)
// over the broker's Events stream, with the tenant in every message it sends.
TEST(BrokerTenants, AGatewaysBrokerSetHoldsChannelKeysOfSeveralInstances) {
  TenantsBroker broker(tenants({tenant_json("one", redis_a().url(), "one"), tenant_json("two", redis_a().url(), "two")}));
  std::mutex mutex;
  std::vector<std::string> received;
  BrokerSetOptions options;
  options.addresses = "in-process";
  BrokerSet set(
      options, [&broker](const BrokerTarget&) { return grpc_broker_streams(broker.channel(), ""); }, "gw",
      [&](BrokerLink::Events events) {
        std::lock_guard lock(mutex);
        for (const auto& event : events) {
          received.push_back(channel_key(event->tenant(), event->channel()) + " " + event->payload());
        }
      });
  set.start();
  ASSERT_TRUE(eventually([&] { return set.connected(); }));
  set.acquire(channel_key("one", "timeline:1"), /*heartbeat=*/true);
  set.acquire(channel_key("two", "timeline:1"), /*heartbeat=*/true);
  ASSERT_TRUE(eventually([] { return redis_a().numsub("one:timeline:1") == 1 && redis_a().numsub("two:timeline:1") == 1; }));
  EXPECT_TRUE(eventually([] {
    return redis_a().integer({"EXISTS", "one:subscribed:timeline:1"}) == 1 &&
           redis_a().integer({"EXISTS", "two:subscribed:timeline:1"}) == 1;
  }));
  // The same message on both instances' channel: two deliveries, each with its instance.
  EXPECT_EQ(redis_a().publish("one:timeline:1", message("same")), 1);
  EXPECT_EQ(redis_a().publish("two:timeline:1", message("same")), 1);
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return received.size() >= 2;
  }));
  set.release(channel_key("one", "timeline:1"));
  EXPECT_TRUE(eventually([] { return redis_a().numsub("one:timeline:1") == 0; }));
  EXPECT_EQ(redis_a().numsub("two:timeline:1"), 1) << "releasing one instance's channel leaves the other's";
  set.stop();
  std::lock_guard lock(mutex);
  EXPECT_EQ(received, (std::vector<std::string>{channel_key("one", "timeline:1") + " same",
                                                channel_key("two", "timeline:1") + " same"}));
}

// docs/hosting.md#redis: an instance whose Redis settings change keeps its old ones until
// the broker restarts, so a newcomer the same reload puts on those old settings would
// read its channels: the newcomer is refused, and the kept instance goes on. Before,
// the newcomer took over the namespace's routing and the kept instance heard nothing.
TEST(BrokerTenants, ANewcomerOnTheSettingsAKeptInstanceStillUsesIsRefused) {
  const std::string a = redis_a().url();
  TenantsBroker broker(tenants({tenant_json("moving", a, "mv1")}));
  auto gateway = broker.gateway();
  ASSERT_TRUE(subscribe(*gateway, "moving", "timeline:hashtag:m"));
  ASSERT_TRUE(publish_and_read(*gateway, redis_a(), "mv1:timeline:hashtag:m", "before"));

  broker.tier().update_tenants(tenants({tenant_json("moving", a, "mv2"), tenant_json("squatter", a, "mv1"),
                                        tenant_json("marker", redis_b().url(), "mk")}));
  // The reload was applied once the marker instance serves its channel.
  ASSERT_TRUE(subscribe(*gateway, "marker", "timeline:hashtag:m"));
  auto marked = publish_and_read(*gateway, redis_b(), "mk:timeline:hashtag:m", "applied");
  ASSERT_TRUE(marked);
  EXPECT_EQ(marked->tenant(), "marker");
  ASSERT_TRUE(subscribe(*gateway, "squatter", "timeline:hashtag:m"));
  auto event = publish_and_read(*gateway, redis_a(), "mv1:timeline:hashtag:m", "after");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->tenant(), "moving") << "the newcomer took the kept instance's channels";
  EXPECT_EQ(event->payload(), "after");
}

// An instance removed by one reload and back in the next, before a gateway saw the
// first: the gateway's subscriptions for it are served again. Before, they were dropped
// with the instance and the gateway's clients stayed connected and heard nothing.
TEST(BrokerTenants, AnInstanceRemovedAndBackAgainServesWhatGatewaysStillHold) {
  const std::string a = redis_a().url();
  TenantsBroker broker(tenants({tenant_json("steady", a, "st"), tenant_json("flicker", a, "fl")}));
  auto gateway = broker.gateway();
  ASSERT_TRUE(subscribe(*gateway, "flicker", "timeline:hashtag:f", /*heartbeat=*/true));
  ASSERT_TRUE(publish_and_read(*gateway, redis_a(), "fl:timeline:hashtag:f", "before"));

  broker.tier().update_tenants(tenants({tenant_json("steady", a, "st")}));
  ASSERT_TRUE(eventually([] { return redis_a().numsub("fl:timeline:hashtag:f") == 0; }));
  broker.tier().update_tenants(tenants({tenant_json("steady", a, "st"), tenant_json("flicker", a, "fl")}));
  auto event = publish_and_read(*gateway, redis_a(), "fl:timeline:hashtag:f", "back");
  ASSERT_TRUE(event) << "the gateway's subscription was not restored";
  EXPECT_EQ(event->tenant(), "flicker");
  EXPECT_EQ(event->payload(), "back");
}

TEST(BrokerTenants, TwoInstancesOnOneRedisAndNamespaceAreRefused) {
  BrokerConfig config = BrokerConfig::from_env(Env::from_map({}));
  try {
    BrokerTier tier(config, tenants({tenant_json("first", redis_a().url(), "ns"), tenant_json("second", redis_a().url(), "ns")}));
    FAIL() << "two instances reading each other's channels were accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tenants first and second use the same Redis server"), std::string::npos)
        << e.what();
  }
  // Pub/Sub channels are the server's: another database of it is the same channels.
  try {
    BrokerTier tier(config, tenants({tenant_json("first", redis_a().url() + "/0", ""),
                                     tenant_json("second", redis_a().url() + "/1", "")}));
    FAIL() << "two instances on two databases of one Redis server were accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tenants first and second use the same Redis server"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(BrokerTier(config, tenants({"\"bad\": {\"hosts\": [\"bad.example\"], \"env\": {\"REDIS_PORT\": \"x\"}}"})),
               ConfigError);
}

}  // namespace
}  // namespace sluice
