// OutgoingQueue (broker/outgoing_queue.hpp): what waits for one gateway stream behind
// the write in flight, in order, with events batched and reconnect markers merged.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/outgoing_queue.hpp"

namespace sluice::broker {
namespace {

OutgoingQueue::Message event(const std::string& payload) {
  auto message = std::make_shared<v1::BrokerMessage>();
  message->mutable_event()->set_channel("timeline:public");
  message->mutable_event()->set_payload(payload);
  return message;
}

OutgoingQueue::Message marker(const std::string& channel, const std::string& tenant = "") {
  auto message = std::make_shared<v1::BrokerMessage>();
  message->mutable_resubscribed()->add_channels(channel);
  message->mutable_resubscribed()->set_tenant(tenant);
  return message;
}

OutgoingQueue::Message system_marker() {
  auto message = std::make_shared<v1::BrokerMessage>();
  message->mutable_resubscribed()->set_system_channels(true);
  return message;
}

std::vector<std::string> channels_of(const v1::BrokerMessage& message) {
  return {message.resubscribed().channels().begin(), message.resubscribed().channels().end()};
}

// After a Redis reconnect every confirmed channel sends its own marker: queued behind a
// write, consecutive ones of one tenant count and go as one message, in order, so a
// gateway with many channels is not cut for falling behind before the first event.
TEST(OutgoingQueue, ConsecutiveChannelMarkersOfOneTenantAreOneMessage) {
  OutgoingQueue queue;
  for (int i = 0; i < 1000; ++i) queue.push(marker("timeline:" + std::to_string(i)));
  EXPECT_EQ(queue.size(), 1u) << "1,000 markers counted against the stream's bound one by one";
  auto merged = queue.pop(/*batches=*/true);
  ASSERT_TRUE(merged->has_resubscribed());
  auto channels = channels_of(*merged);
  ASSERT_EQ(channels.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(channels[i], "timeline:" + std::to_string(i));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
}

TEST(OutgoingQueue, MarkersMergeOnlyAcrossNothingElseAndWithinOneTenant) {
  OutgoingQueue queue;
  queue.push(event("1"));
  queue.push(marker("a"));
  queue.push(marker("b"));
  queue.push(event("2"));  // an event between: a's and b's marker must precede it, c's follow
  queue.push(marker("c"));
  queue.push(marker("d", "other.example"));
  queue.push(system_marker());
  queue.push(marker("e"));
  EXPECT_EQ(queue.size(), 7u);

  auto first = queue.pop(true);
  ASSERT_TRUE(first->has_event());
  EXPECT_EQ(first->event().payload(), "1");
  auto ab = queue.pop(true);
  EXPECT_EQ(channels_of(*ab), (std::vector<std::string>{"a", "b"}));
  auto second = queue.pop(true);
  ASSERT_TRUE(second->has_event());
  EXPECT_EQ(second->event().payload(), "2");
  auto c = queue.pop(true);
  EXPECT_EQ(channels_of(*c), std::vector<std::string>{"c"});
  auto d = queue.pop(true);
  EXPECT_EQ(channels_of(*d), std::vector<std::string>{"d"});
  EXPECT_EQ(d->resubscribed().tenant(), "other.example");
  auto system = queue.pop(true);
  EXPECT_TRUE(system->resubscribed().system_channels());
  EXPECT_TRUE(system->resubscribed().channels().empty());
  auto e = queue.pop(true);
  EXPECT_EQ(channels_of(*e), std::vector<std::string>{"e"});
  EXPECT_TRUE(queue.empty());
}

// A marker is shared by every stream of its channel: merging must not change it.
TEST(OutgoingQueue, AMergeLeavesTheSharedMarkerAsItWas) {
  OutgoingQueue queue;
  auto shared = marker("a");
  queue.push(shared);
  queue.push(marker("b"));
  EXPECT_EQ(channels_of(*shared), std::vector<std::string>{"a"});
  EXPECT_EQ(channels_of(*queue.pop(true)), (std::vector<std::string>{"a", "b"}));
}

TEST(OutgoingQueue, EventsAtTheFrontGoAsOneBatchOnlyToAGatewayThatReadsThem) {
  OutgoingQueue queue;
  for (int i = 1; i <= 3; ++i) queue.push(event(std::to_string(i)));
  queue.push(marker("a"));
  queue.push(event("4"));
  const size_t bytes = queue.bytes();
  EXPECT_GT(bytes, 0u);

  auto batch = queue.pop(true);
  ASSERT_TRUE(batch->has_events());
  ASSERT_EQ(batch->events().events_size(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(batch->events().events(i).payload(), std::to_string(i + 1));
  EXPECT_TRUE(queue.pop(true)->has_resubscribed());
  EXPECT_TRUE(queue.pop(true)->has_event()) << "a lone event goes as itself";

  OutgoingQueue older;
  older.push(event("1"));
  older.push(event("2"));
  EXPECT_EQ(older.pop(false)->event().payload(), "1");
  EXPECT_EQ(older.pop(false)->event().payload(), "2");
}

TEST(OutgoingQueue, ABatchStopsAt1024EventsAndTheRestFollows) {
  OutgoingQueue queue;
  for (int i = 0; i < 1500; ++i) queue.push(event(std::to_string(i)));
  EXPECT_EQ(queue.pop(true)->events().events_size(), 1024);
  auto rest = queue.pop(true);
  EXPECT_EQ(rest->events().events_size(), 476);
  EXPECT_EQ(rest->events().events(0).payload(), "1024");
  EXPECT_TRUE(queue.empty());
}

}  // namespace
}  // namespace sluice::broker
