#include "gateway/gateway_event.hpp"

#include "common/channel_key.hpp"
#include "common/js_json.hpp"
#include "gateway/websocket_protocol.hpp"
#include "gateway/http_responses.hpp"

namespace sluice::gateway {

std::string payload_with_filtered(std::string_view payload_open, std::string_view filtered_json) {
  std::string out;
  out.reserve(payload_open.size() + filtered_json.size() + 14);
  out += payload_open;
  out += payload_open.size() > 1 ? ",\"filtered\":" : "\"filtered\":";
  out += filtered_json;
  out += '}';
  return out;
}

std::string websocket_tail(std::string_view event, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + payload.size() / 8 + event.size() + 32);
  out += ",\"event\":";
  append_js_string_literal(out, event);
  out += ",\"payload\":";
  append_js_string_literal(out, payload);
  out += '}';
  return out;
}

std::string websocket_event_frame(std::string_view echo_json, std::string_view tail) {
  std::string body;
  body.reserve(echo_json.size() + tail.size() + 12);
  body += "{\"stream\":";
  body += echo_json;
  body += tail;
  return encode_text_frame(body);
}

std::shared_ptr<const GatewayEvent> GatewayEvent::prepare(std::shared_ptr<const sluice::v1::ChannelEvent> source) {
  auto prepared = std::make_shared<GatewayEvent>();
  const auto& event = *source;
  // The broker classified the channel (docs/protocol.md#system-channels).
  prepared->is_system = event.system_channel() != sluice::v1::SYSTEM_CHANNEL_NONE;
  if (!prepared->is_system && !event.payload().empty()) {
    // The broker sends status facts only for channels of filtered streams (docs/protocol.md#status-fields-used).
    prepared->is_status = event.has_status();
    const std::string& payload = event.payload();
    if (prepared->is_status && !event.status().has_filtered() && payload.size() >= 2 && payload.back() == '}') {
      prepared->payload_open = std::string_view(payload).substr(0, payload.size() - 1);
    }
  }
  if (!event.tenant().empty()) prepared->qualified_key_ = sluice::channel_key(event.tenant(), event.channel());
  prepared->source = std::move(source);
  return prepared;
}

template <typename Piece>
const std::string& GatewayEvent::built(int slot, bool filtered, Piece piece) const {
  std::atomic<int>& state = state_[slot];
  for (;;) {
    int seen = state.load(std::memory_order_acquire);
    if (seen == kBuilt) return pieces_[slot];
    if (seen == kBuilding) {
      state.wait(kBuilding, std::memory_order_acquire);
      continue;
    }
    if (!state.compare_exchange_strong(seen, kBuilding, std::memory_order_acquire)) continue;
    try {
      if (!is_system && !source->payload().empty()) {
        if (!filtered) {
          pieces_[slot] = piece(source->event(), source->payload());
        } else if (!payload_open.empty()) {
          pieces_[slot] = piece(source->event(), payload_with_filtered(payload_open, "[]"));
        }
      }
    } catch (...) {
      // Out of memory: another worker (or this one, next time) tries again.
      state.store(kNotBuilt, std::memory_order_release);
      state.notify_all();
      throw;
    }
    state.store(kBuilt, std::memory_order_release);
    state.notify_all();
    return pieces_[slot];
  }
}

const std::string& GatewayEvent::sse(bool filtered) const {
  return built(filtered ? 1 : 0, filtered,
               [](std::string_view event, std::string_view payload) { return sse_event_chunk(event, payload); });
}

const std::string& GatewayEvent::ws_tail(bool filtered) const {
  return built(filtered ? 3 : 2, filtered,
               [](std::string_view event, std::string_view payload) { return websocket_tail(event, payload); });
}

}  // namespace sluice::gateway
