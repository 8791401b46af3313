// What a broker reads from a gateway: GatewayMessages with any channel names,
// from several streams, in any order. The registry must stay consistent: a
// channel is reported toggled exactly when it starts or stops being wanted, a
// Touch refreshes only channels that stream holds with a heartbeat, and once
// every stream is gone nothing is wanted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "broker/gateway_session.hpp"
#include "broker/subscription_registry.hpp"

using namespace sluice::broker;

namespace {
void apply_toggles(std::set<std::string>& wanted, const SubscriptionRegistry::Change& change) {
  for (const auto& channel : change.toggled) {
    if (!wanted.erase(channel)) wanted.insert(channel);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SubscriptionRegistry registry;
  std::set<std::string> wanted;  // what the broker has told Redis
  constexpr uint64_t kStreams = 3;
  for (uint64_t id = 0; id < kStreams; ++id) registry.add_stream(id, nullptr);

  // Layout: records of [stream id byte][length byte][serialized GatewayMessage].
  size_t pos = 0;
  while (pos + 2 <= size) {
    uint64_t stream = data[pos] % kStreams;
    size_t length = std::min<size_t>(data[pos + 1], size - pos - 2);
    sluice::v1::GatewayMessage message;
    bool parsed = message.ParseFromArray(data + pos + 2, static_cast<int>(length));
    pos += 2 + length;
    if (!parsed) continue;
    switch (message.kind_case()) {
      case sluice::v1::GatewayMessage::kSubscribe:
        apply_toggles(wanted, registry.subscribe(stream, requested_channels(message.subscribe().channels()),
                                                 message.subscribe().heartbeat()));
        break;
      case sluice::v1::GatewayMessage::kUnsubscribe:
        apply_toggles(wanted, registry.unsubscribe(stream, requested_channels(message.unsubscribe().channels())));
        break;
      case sluice::v1::GatewayMessage::kTouch: {
        auto heartbeat = registry.heartbeat_channels();
        for (const auto& channel : registry.held_with_heartbeat(stream, requested_channels(message.touch().channels()))) {
          if (std::find(heartbeat.begin(), heartbeat.end(), channel) == heartbeat.end()) std::abort();
        }
        break;
      }
      default:
        break;
    }
    for (const auto& channel : wanted) {
      if (!registry.wanted(channel)) std::abort();
    }
    if (registry.wanted_channels().size() != wanted.size()) std::abort();
  }
  for (uint64_t id = 0; id < kStreams; ++id) apply_toggles(wanted, registry.remove_stream(id));
  if (!wanted.empty() || !registry.wanted_channels().empty() || !registry.heartbeat_channels().empty()) std::abort();
  return 0;
}
