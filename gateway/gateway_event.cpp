#include "gateway/gateway_event.hpp"

#include "common/js_json.hpp"
#include "common/websocket_protocol.hpp"
#include "gateway/http_responses.hpp"

namespace sluice::gateway {
namespace {

constexpr std::string_view kAccessTokenPrefix = "timeline:access_token:";
constexpr std::string_view kSystemPrefix = "timeline:system:";

int64_t parse_id(std::string_view text) {
  int64_t value = 0;
  if (text.empty() || text.size() > 18) return -1;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

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
  std::string_view channel = event.channel();
  if (channel.substr(0, kAccessTokenPrefix.size()) == kAccessTokenPrefix) {
    prepared->is_system = true;
    prepared->system_id = parse_id(channel.substr(kAccessTokenPrefix.size()));
  } else if (channel.substr(0, kSystemPrefix.size()) == kSystemPrefix) {
    prepared->is_system = true;
    prepared->system_id = parse_id(channel.substr(kSystemPrefix.size()));
  }
  if (!prepared->is_system && !event.payload().empty()) {
    prepared->is_status = event.has_status();
    prepared->sse_plain = sse_event_chunk(event.event(), event.payload());
    prepared->ws_tail_plain = websocket_tail(event.event(), event.payload());
    const std::string& payload = event.payload();
    if (prepared->is_status && !event.status().has_filtered() && payload.size() >= 2 && payload.back() == '}') {
      prepared->payload_open = payload.substr(0, payload.size() - 1);
      std::string with_filtered = prepared->payload_open;
      with_filtered += payload.size() == 2 ? "\"filtered\":[]}" : ",\"filtered\":[]}";
      prepared->sse_filtered = sse_event_chunk(event.event(), with_filtered);
      prepared->ws_tail_filtered = websocket_tail(event.event(), with_filtered);
    }
  }
  prepared->source = std::move(source);
  return prepared;
}

}  // namespace sluice::gateway
