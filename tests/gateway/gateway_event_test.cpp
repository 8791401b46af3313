// Event frames are built once per event from what the broker parsed
// (docs/protocol.md#event-frames, docs/protocol.md#sse-events, docs/protocol.md#filter-evaluation).
#include "gateway/gateway_event.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <thread>
#include <vector>

#include "gateway/websocket_protocol.hpp"
#include "gateway/http_responses.hpp"

namespace sluice::gateway {
namespace {

std::shared_ptr<const GatewayEvent> prepare(const std::string& channel, const std::string& event,
                                            const std::string& payload, bool status, bool has_filtered = false) {
  auto source = std::make_shared<sluice::v1::ChannelEvent>();
  source->set_channel(channel);
  source->set_event(event);
  source->set_payload(payload);
  // The broker's classification (tested in tests/broker/redis_message_test.cpp).
  if (channel.rfind("timeline:access_token:", 0) == 0) source->set_system_channel(sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN);
  if (channel.rfind("timeline:system:", 0) == 0) source->set_system_channel(sluice::v1::SYSTEM_CHANNEL_ACCOUNT);
  if (source->system_channel() != sluice::v1::SYSTEM_CHANNEL_NONE) {
    source->set_system_id(std::stoll(channel.substr(channel.rfind(':') + 1)));
    source->set_system_id_valid(true);
  }
  if (status) {
    source->mutable_status()->set_well_formed(true);
    source->mutable_status()->set_has_filtered(has_filtered);
  }
  return GatewayEvent::prepare(source);
}

std::string frame_text(const std::string& frame) {
  WebSocketFrameParser parser;
  // Server frames are unmasked; re-mask with a zero key so the client-side parser accepts them.
  std::string masked = frame;
  size_t header = (static_cast<unsigned char>(masked[1]) & 0x7F) == 126 ? 4 : 2;
  masked[1] = static_cast<char>(masked[1] | 0x80);
  masked.insert(header, std::string(4, '\0'));
  auto events = parser.feed(masked);
  EXPECT_EQ(events.size(), 1u);
  return events.empty() ? "" : events[0].data;
}

TEST(GatewayEvent, StringPayloadGoesOutRaw) {
  auto e = prepare("timeline:public", "delete", "109876543210", false);
  EXPECT_EQ(e->sse(false), "22\r\nevent: delete\ndata: 109876543210\n\n\r\n");
  EXPECT_EQ(frame_text(websocket_event_frame(R"(["public"])", e->ws_tail(false))),
            R"({"stream":["public"],"event":"delete","payload":"109876543210"})");
  EXPECT_TRUE(e->sse(true).empty());
}

TEST(GatewayEvent, ObjectPayloadIsAJsonStringInWebSocketFrames) {
  auto e = prepare("timeline:1", "notification", R"({"id":"1","content":"<p>\"hi\"</p>"})", false);
  EXPECT_EQ(frame_text(websocket_event_frame(R"(["user"])", e->ws_tail(false))),
            R"({"stream":["user"],"event":"notification","payload":"{\"id\":\"1\",\"content\":\"<p>\\\"hi\\\"</p>\"}"})");
}

TEST(GatewayEvent, StatusWithoutFilteredGetsEmptyFilteredLast) {
  auto e = prepare("timeline:public", "update", R"({"id":"110","language":"en"})", true);
  EXPECT_EQ(e->sse(true),
            sse_event_chunk("update", R"({"id":"110","language":"en","filtered":[]})"));
  EXPECT_EQ(e->payload_open, R"({"id":"110","language":"en")");
  auto empty = prepare("timeline:public", "update", "{}", true);
  EXPECT_EQ(empty->sse(true), sse_event_chunk("update", R"({"filtered":[]})"));
}

TEST(GatewayEvent, StatusThatHasFilteredIsLeftAlone) {
  auto e = prepare("timeline:public", "update", R"({"id":"1","filtered":[]})", true, /*has_filtered=*/true);
  EXPECT_TRUE(e->sse(true).empty());
}

TEST(GatewayEvent, SystemChannelsAreNotFramedForClients) {
  auto token = prepare("timeline:access_token:77", "kill", "", false);
  EXPECT_TRUE(token->is_system);
  EXPECT_EQ(token->source->system_id(), 77);
  auto account = prepare("timeline:system:910001", "filters_changed", "", false);
  EXPECT_TRUE(account->is_system);
  EXPECT_TRUE(account->sse(false).empty());
  auto normal = prepare("timeline:910001", "filters_changed", "", false);
  EXPECT_FALSE(normal->is_system);
  EXPECT_TRUE(normal->sse(false).empty());
}

// Every worker that fans an event out asks for its pieces at once: each piece is built
// by one of them, and every worker gets it whole, none waiting forever for a piece
// another is building. (Without ThreadSanitizer in this build, a wrong memory order
// would not reliably show here; what this pins is content and progress.)
TEST(GatewayEvent, WorkersAskingAtOnceAllGetEveryPieceWhole) {
  const std::string payload = R"({"id":"110","content":"<p>\"x\"</p>","language":"en"})";
  for (int round = 0; round < 50; ++round) {
    auto e = prepare("timeline:public", "update", payload, true);
    const std::string filtered_payload = payload_with_filtered(e->payload_open, "[]");
    constexpr int kWorkers = 4;
    // Per worker, what it read: ws filtered, sse filtered, ws plain, sse plain.
    std::array<std::array<std::string, 4>, kWorkers> seen;
    std::atomic<int> ready{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([&, w] {
        ++ready;
        while (ready.load() < kWorkers) {
        }
        // Half the workers ask for the filtered pieces first, half for the plain ones.
        if (w % 2 == 0) {
          seen[w] = {e->ws_tail(true), e->sse(true), e->ws_tail(false), e->sse(false)};
        } else {
          seen[w][2] = e->ws_tail(false);
          seen[w][3] = e->sse(false);
          seen[w][0] = e->ws_tail(true);
          seen[w][1] = e->sse(true);
        }
      });
    }
    for (auto& worker : workers) worker.join();
    for (int w = 0; w < kWorkers; ++w) {
      EXPECT_EQ(seen[w][0], websocket_tail("update", filtered_payload)) << w;
      EXPECT_EQ(seen[w][1], sse_event_chunk("update", filtered_payload)) << w;
      EXPECT_EQ(seen[w][2], websocket_tail("update", payload)) << w;
      EXPECT_EQ(seen[w][3], sse_event_chunk("update", payload)) << w;
    }
  }
}

}  // namespace
}  // namespace sluice::gateway
