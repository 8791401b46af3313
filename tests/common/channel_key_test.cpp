// Channel keys (common/channel_key.hpp): one instance's channel is its name; a tenant's
// carries the tenant, so the same channel of two instances is two keys.
#include <gtest/gtest.h>

#include "common/channel_key.hpp"
#include "common/event_deduplicator.hpp"

namespace sluice {
namespace {

TEST(ChannelKey, TheEnvironmentsInstanceKeepsPlainNamesAndTenantsSplitBack) {
  EXPECT_EQ(channel_key("", "timeline:public"), "timeline:public");
  EXPECT_EQ(split_channel_key("timeline:public").tenant, "");
  EXPECT_EQ(split_channel_key("timeline:public").channel, "timeline:public");

  const std::string key = channel_key("club", "timeline:hashtag:a\nb");
  EXPECT_NE(key, channel_key("social", "timeline:hashtag:a\nb"));
  EXPECT_NE(key, "timeline:hashtag:a\nb");
  EXPECT_EQ(split_channel_key(key).tenant, "club");
  EXPECT_EQ(split_channel_key(key).channel, "timeline:hashtag:a\nb") << "a newline in a channel stays in the channel";
}

TEST(ChannelKey, TheSameMessageOnTwoInstancesIsTwoDeliveries) {
  EventDeduplicator dedup(std::chrono::seconds(10));
  auto event = [](const std::string& tenant) {
    auto e = std::make_shared<v1::ChannelEvent>();
    e->set_tenant(tenant);
    e->set_channel("timeline:public");
    e->set_event("delete");
    e->set_payload("1");
    return EventDeduplicator::Event(e);
  };
  const auto now = EventDeduplicator::Clock::time_point{};
  // Two brokers relay both instances' channel. The same message on the other instance
  // is not a copy: it is delivered.
  EXPECT_EQ(dedup.offer(1, event("one"), now).size(), 1u);
  EXPECT_EQ(dedup.offer(2, event("two"), now).size(), 1u) << "taken for a copy of the other instance's message";
  // The other broker's copies are copies.
  EXPECT_EQ(dedup.offer(2, event("one"), now).size(), 0u);
  EXPECT_EQ(dedup.offer(1, event("two"), now).size(), 0u);
  EXPECT_EQ(dedup.dropped(), 2u);
  // The environment's instance (no tenant) is a third.
  EXPECT_EQ(dedup.offer(1, event(""), now).size(), 1u);
}

}  // namespace
}  // namespace sluice
